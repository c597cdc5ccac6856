//! The JSON push format: `[{"name": .., "labels": {..}, "value": .., "timestamp": ..}]`.
//!
//! Sans-IO and strict, like [`parse_strict`](super::exposition::parse_strict): all samples
//! or the first error, so nothing of a bad body gets stored.
//!
//! * The body is one JSON array (`[]` is fine) of objects with exactly the fields `name`
//!   (required), `labels` (optional object of string values, `null` = none), `value`
//!   (required) and `timestamp` (optional, `null` = none); unknown or repeated fields are
//!   errors, and so is anything after the array.
//! * `name` matches `[a-zA-Z_:][a-zA-Z0-9_:]*` (colons allowed, as in the text format);
//!   label names `[a-zA-Z_][a-zA-Z0-9_]*`, not `__name__`, each at most once per object.
//!   Empty label values mean "no such label", as in the text format.
//! * `value` is a JSON number, or, since JSON has none of them and for parity with the text
//!   format, one of the strings `"NaN"`, `"Inf"`, `"+Inf"`, `"-Inf"` (exactly so spelled).
//!   A number too large for an `f64` is an error. Precision: serde_json is built without
//!   its `float_roundtrip` feature here, so a float with a long mantissa may come out a
//!   couple of ULPs off what an exact parse (like the text format's) gives; integers up to
//!   2^53 and short decimals are exact. Enabling that feature (≈ 2× slower float parsing)
//!   would make it exact.
//! * `timestamp` is an integer number of milliseconds since the Unix epoch fitting an
//!   `i64`. Floats are rejected, seconds-as-float included: `1700000000` and `1700000000.5`
//!   would differ by a factor of 1000 from what the sender likely meant, and guessing the
//!   unit by magnitude is a trap.
//! * Unlike the text format, one body may carry several samples of a series (a backlog),
//!   as long as their timestamps differ; the same (name, labels, timestamp) twice is an error.
//!
//! Errors ([`LineError`]): for a JSON syntax error, `line` is serde_json's line in the body
//! and the message starts with "invalid JSON"; for anything wrong with one array element
//! (a wrong type, an unknown field, a bad name, ...) `line` is the element's 1-based index
//! in the array and the message starts with "array element N".

use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::exposition::{LineError, ParsedSample, SeenSeries, is_label_name, is_metric_name};
use crate::series::Labels;

/// `[{"name": .., "labels": {..}, "value": .., "timestamp": ..}]`, strictly; see the module docs.
pub fn parse(body: &[u8]) -> Result<Vec<ParsedSample>, LineError> {
    let element = Cell::new(0);
    let mut de = serde_json::Deserializer::from_slice(body);
    let items = ItemsSeed(&element)
        .deserialize(&mut de)
        .and_then(|items| de.end().map(|()| items))
        .map_err(|e| json_error(&e, element.get()))?;
    let mut seen = SeenSeries::default();
    let mut out: Vec<ParsedSample> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let err = |message: String| LineError {
            line: n,
            message: format!("array element {n}: {message}"),
        };
        if !is_metric_name(&item.name) {
            return Err(err(format!(
                "invalid metric name {:?} (names match [a-zA-Z_:][a-zA-Z0-9_:]*)",
                item.name
            )));
        }
        let labels = item
            .labels
            .as_ref()
            .map_or(Ok(Labels::new()), |l| l.to_labels())
            .map_err(err)?;
        let first = seen.first_or_insert(&item.name, &labels, Some(item.timestamp), i, |j| {
            out[j].name == item.name && out[j].labels == labels && out[j].timestamp_ms == item.timestamp
        });
        if let Some(j) = first {
            return Err(err(format!(
                "duplicate sample of {}{} at the same timestamp as array element {}",
                item.name,
                labels,
                j + 1
            )));
        }
        out.push(ParsedSample {
            name: item.name.clone(),
            labels,
            value: item.value,
            timestamp_ms: item.timestamp,
        });
    }
    Ok(out)
}

/// A serde_json error as a [`LineError`], blamed on the array element being read, if any.
fn json_error(e: &serde_json::Error, element: usize) -> LineError {
    match e.classify() {
        serde_json::error::Category::Data if element > 0 => LineError {
            line: element,
            message: format!("array element {element}: {e}"),
        },
        serde_json::error::Category::Data => LineError {
            line: e.line().max(1),
            message: format!("invalid JSON push body (line {} of the text): {e}", e.line()),
        },
        _ => LineError {
            line: e.line().max(1),
            message: format!("invalid JSON (line {} of the text): {e}", e.line()),
        },
    }
}

/// One array element, as sent.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a sample object {\"name\", \"value\", \"labels\"?, \"timestamp\"?}"
)]
struct Item {
    name: String,
    #[serde(default)]
    labels: Option<LabelPairs>,
    #[serde(deserialize_with = "de_value")]
    value: f64,
    #[serde(default, deserialize_with = "de_timestamp")]
    timestamp: Option<i64>,
}

/// Reads the array, recording in `.0` the 1-based index of the element being read (0 when
/// not inside one), so errors can name it.
struct ItemsSeed<'c>(&'c Cell<usize>);

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Vec<Item>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Item>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Vec<Item>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of samples")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Item>, A::Error> {
        let mut items = Vec::new();
        loop {
            self.0.set(items.len() + 1);
            match seq.next_element::<Item>()? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        self.0.set(0);
        Ok(items)
    }
}

/// Label pairs in the order sent, so a name given twice can be reported.
struct LabelPairs(Vec<(String, String)>);

impl LabelPairs {
    fn to_labels(&self) -> Result<Labels, String> {
        let mut names: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("duplicate label name {:?}", w[0]));
        }
        let mut labels = Labels::new();
        for (k, v) in &self.0 {
            if !is_label_name(k) {
                return Err(format!(
                    "invalid label name {k:?} (label names match [a-zA-Z_][a-zA-Z0-9_]*)"
                ));
            }
            if k == "__name__" {
                return Err("label __name__ is not allowed: the metric name goes in \"name\"".to_string());
            }
            if !v.is_empty() {
                labels.set(k, v);
            }
        }
        Ok(labels)
    }
}

impl<'de> Deserialize<'de> for LabelPairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LabelPairs, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LabelPairs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string label values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LabelPairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(LabelPairs(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

/// A number, or one of the strings "NaN", "Inf", "+Inf", "-Inf".
fn de_value<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#"a number or one of the strings "NaN", "Inf", "+Inf", "-Inf""#)
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v {
                "NaN" => Ok(f64::NAN),
                "Inf" | "+Inf" => Ok(f64::INFINITY),
                "-Inf" => Ok(f64::NEG_INFINITY),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
    d.deserialize_any(V)
}

/// An optional integer number of milliseconds.
fn de_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer number of milliseconds since the Unix epoch")
        }

        fn visit_none<E: de::Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<i64>, E> {
            Ok(Some(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<i64>, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
    }
    d.deserialize_option(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Vec<ParsedSample> {
        parse(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    fn err(body: &str) -> LineError {
        parse(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn full_and_minimal_elements() {
        let got = ok(r#"[
            {"name": "disk:used_percent", "labels": {"mount": "/", "host": "a,b}\"c", "empty": ""}, "value": 93.5, "timestamp": 1700000000000},
            {"name": "up", "value": 1},
            {"name": "up2", "labels": null, "value": -2, "timestamp": null}
        ]"#);
        assert_eq!(
            got[0],
            ParsedSample {
                name: "disk:used_percent".into(),
                labels: Labels::from_pairs([("mount", "/"), ("host", "a,b}\"c")]),
                value: 93.5,
                timestamp_ms: Some(1_700_000_000_000),
            }
        );
        assert_eq!((got[1].labels.len(), got[1].value, got[1].timestamp_ms), (0, 1.0, None));
        assert_eq!(got[2].value, -2.0);
        assert_eq!(ok("[]"), vec![]);
        assert_eq!(ok(" \n[ ]\n "), vec![]);
    }

    #[test]
    fn non_finite_values_as_strings() {
        let got = ok(
            r#"[{"name":"a","value":"NaN"},{"name":"b","value":"+Inf"},{"name":"c","value":"-Inf"},{"name":"d","value":"Inf"}]"#,
        );
        assert!(got[0].value.is_nan() && !crate::series::is_stale_marker(got[0].value));
        assert_eq!(got[1].value, f64::INFINITY);
        assert_eq!(got[2].value, f64::NEG_INFINITY);
        assert_eq!(got[3].value, f64::INFINITY);
        let e = err(r#"[{"name":"a","value":1},{"name":"a","value":"nan"}]"#);
        assert_eq!(e.line, 2);
        assert!(
            e.message.starts_with("array element 2: invalid value: string \"nan\""),
            "{e}"
        );
        assert!(
            err(r#"[{"name":"a","value":"1"}]"#)
                .message
                .contains("expected a number or one of")
        );
        assert!(
            err(r#"[{"name":"a","value":null}]"#)
                .message
                .contains("invalid type: null")
        );
        assert!(
            err(r#"[{"name":"a","value":1e400}]"#)
                .message
                .contains("number out of range")
        );
    }

    #[test]
    fn timestamps_are_integer_milliseconds() {
        assert_eq!(
            ok(r#"[{"name":"a","value":1,"timestamp":-5}]"#)[0].timestamp_ms,
            Some(-5)
        );
        for bad in [
            "1700000000.5",
            "1.7e12",
            "\"1700000000000\"",
            "9223372036854775808",
            "true",
        ] {
            let e = err(&format!(r#"[{{"name":"a","value":1,"timestamp":{bad}}}]"#));
            assert_eq!(e.line, 1, "{bad}");
            assert!(
                e.message.contains("expected an integer number of milliseconds"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn semantic_errors_name_the_array_element() {
        let cases: &[(&str, &str)] = &[
            (r#"{"name":"a-b","value":1}"#, "invalid metric name \"a-b\""),
            (r#"{"name":"","value":1}"#, "invalid metric name \"\""),
            (
                r#"{"name":"a","labels":{"0x":"1"},"value":1}"#,
                "invalid label name \"0x\"",
            ),
            (
                r#"{"name":"a","labels":{"a:b":"1"},"value":1}"#,
                "invalid label name \"a:b\"",
            ),
            (
                r#"{"name":"a","labels":{"__name__":"x"},"value":1}"#,
                "label __name__ is not allowed",
            ),
            (
                r#"{"name":"a","labels":{"x":"1","x":""},"value":1}"#,
                "duplicate label name \"x\"",
            ),
            (
                r#"{"name":"a","labels":{"x":1},"value":1}"#,
                "invalid type: integer `1`, expected a string",
            ),
            (
                r#"{"name":"a","labels":["x"],"value":1}"#,
                "expected an object of string label values",
            ),
            (r#"{"name":"a","value":1,"extra":2}"#, "unknown field `extra`"),
            (r#"{"name":"a"}"#, "missing field `value`"),
            (r#"{"value":1}"#, "missing field `name`"),
            (r#"{"name":"a","value":1,"value":2}"#, "duplicate field `value`"),
            (
                r#"{"name":"ok","value":3}"#,
                "duplicate sample of ok{} at the same timestamp as array element 1",
            ),
            (r#"5"#, "invalid type: integer `5`"),
        ];
        for (bad, want) in cases {
            let body =
                format!("[{{\"name\":\"ok\",\"value\":1}},\n{{\"name\":\"ok\",\"value\":1,\"timestamp\":5}},\n{bad}]");
            let e = err(&body);
            assert_eq!(e.line, 3, "{bad}: {e}");
            assert!(e.message.starts_with("array element 3: "), "{bad}: {e}");
            assert!(e.message.contains(want), "{bad}: got {:?}, want {want:?}", e.message);
        }
        // Same series at different timestamps is a backlog, not a duplicate.
        assert_eq!(
            ok(r#"[{"name":"a","value":1,"timestamp":1},{"name":"a","value":2,"timestamp":2}]"#).len(),
            2
        );
        // Empty label values vanish, so these are the same sample.
        let e = err(r#"[{"name":"a","value":1},{"name":"a","labels":{"x":""},"value":2}]"#);
        assert_eq!(e.line, 2);
    }

    #[test]
    fn syntax_errors_name_the_text_line() {
        let e = err("[\n{\"name\":\"a\",\"value\":1},\n{\"name\":\"a\" \"value\":1}]");
        assert_eq!(e.line, 3);
        assert!(
            e.message
                .starts_with("invalid JSON (line 3 of the text): expected `,` or `}`"),
            "{e}"
        );
        let e = err("[{\"name\":\"a\",\"value\":1}]\n\n x");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("trailing characters"), "{e}");
        assert!(err("").message.starts_with("invalid JSON (line 1 of the text): EOF"));
        assert!(
            err("[{\"name\":\"a\",\"value\":1},]")
                .message
                .contains("trailing comma")
        );
        let e = err("\n{\"name\":\"a\",\"value\":1}");
        assert_eq!(e.line, 2);
        assert!(
            e.message.starts_with(
                "invalid JSON push body (line 2 of the text): invalid type: map, expected an array of samples"
            ),
            "{e}"
        );
        assert!(
            err("[1,2")
                .message
                .starts_with("array element 1: invalid type: integer `1`, expected a sample object")
        );
        assert!(parse(b"[\"\xff\"]").is_err());
    }
}
