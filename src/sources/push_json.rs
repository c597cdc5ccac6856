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
//!   A number too large for an `f64` is an error.
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
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::exposition::{LineError, ParsedSample, is_label_name, is_metric_name};
use crate::series::Labels;

/// `[{"name": .., "labels": {..}, "value": .., "timestamp": ..}]`, strictly; see the module docs.
pub fn parse(body: &[u8]) -> Result<Vec<ParsedSample>, LineError> {
    let element = Cell::new(0);
    let mut de = serde_json::Deserializer::from_slice(body);
    let items = ItemsSeed(&element)
        .deserialize(&mut de)
        .and_then(|items| de.end().map(|()| items))
        .map_err(|e| json_error(&e, element.get()))?;
    let mut seen: HashMap<(&str, Labels, Option<i64>), usize> = HashMap::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len());
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
        match seen.entry((&item.name, labels.clone(), item.timestamp)) {
            std::collections::hash_map::Entry::Occupied(first) => {
                return Err(err(format!(
                    "duplicate sample of {}{} at the same timestamp as array element {}",
                    item.name,
                    labels,
                    first.get()
                )));
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(n);
            }
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
#[serde(deny_unknown_fields)]
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
