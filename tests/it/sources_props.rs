//! Property tests of the exposition and JSON push parsers: round trips through a plain
//! renderer, and no input makes either parser panic.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;
use tocsin::series::Labels;
use tocsin::sources::{ParsedSample, exposition, push_json};

/// One generated sample, labels as a map (some values may be empty).
#[derive(Clone, Debug)]
struct Gen {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    timestamp: Option<i64>,
}

impl Gen {
    /// What a parser should return: empty-valued labels mean "no label".
    fn expected(&self) -> ParsedSample {
        ParsedSample {
            name: self.name.clone(),
            labels: Labels::from_pairs(self.labels.iter().filter(|(_, v)| !v.is_empty())),
            value: self.value,
            timestamp_ms: self.timestamp,
        }
    }
}

fn label_value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('"'),
            Just('\\'),
            Just('\n'),
            Just(','),
            Just('{'),
            Just('}'),
            Just('='),
            Just(' '),
            Just('#'),
            Just('é'),
            Just('😀'),
            proptest::char::range('a', 'z'),
            any::<char>(),
        ],
        0..8,
    )
    .prop_map(String::from_iter)
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>().prop_filter("finite", |v| v.is_finite()),
        2 => (-1000i32..1000).prop_map(f64::from),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
    ]
}

fn sample() -> impl Strategy<Value = Gen> {
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        prop::collection::btree_map(
            "[a-zA-Z_][a-zA-Z0-9_]{0,8}".prop_filter("not __name__", |n| n != "__name__"),
            label_value(),
            0..5,
        ),
        value(),
        prop::option::of(any::<i64>()),
    )
        .prop_map(|(name, labels, value, timestamp)| Gen {
            name,
            labels,
            value,
            timestamp,
        })
}

/// Samples whose (name, labels) are distinct, as one exposition body requires.
fn distinct(samples: Vec<Gen>) -> Vec<Gen> {
    let mut seen = HashSet::new();
    samples
        .into_iter()
        .filter(|s| {
            let e = s.expected();
            seen.insert((e.name, e.labels))
        })
        .collect()
}

/// Rendering choices that must not change the result.
#[derive(Clone, Debug)]
struct Style {
    blank: &'static str,
    trailing_comma: bool,
    crlf: bool,
    exp_notation: bool,
    help: bool,
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop_oneof![Just(" "), Just("\t"), Just("  \t ")],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(blank, trailing_comma, crlf, exp_notation, help)| Style {
            blank,
            trailing_comma,
            crlf,
            exp_notation,
            help,
        })
}

fn escape(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

fn render_value(v: f64, style: &Style) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        if style.trailing_comma { "+Inf" } else { "Inf" }.into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if style.exp_notation {
        format!("{v:e}")
    } else {
        format!("{v:?}")
    }
}

/// A straightforward exposition renderer.
fn render(samples: &[Gen], style: &Style) -> String {
    let eol = if style.crlf { "\r\n" } else { "\n" };
    let b = style.blank;
    let mut out = String::new();
    for s in samples {
        if style.help {
            out.push_str(&format!(
                "# HELP {} some help{eol}# TYPE {} untyped{eol}",
                s.name, s.name
            ));
        }
        out.push_str(&s.name);
        if !s.labels.is_empty() || style.trailing_comma {
            let pairs: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            out.push('{');
            out.push_str(&pairs.join(","));
            if style.trailing_comma && !pairs.is_empty() {
                out.push(',');
            }
            out.push('}');
        }
        out.push_str(b);
        out.push_str(&render_value(s.value, style));
        if let Some(t) = s.timestamp {
            out.push_str(&format!("{b}{t}"));
        }
        out.push_str(eol);
    }
    out
}

/// Equality with NaN equal to NaN and zeros told apart by sign.
fn same(got: &[ParsedSample], want: &[ParsedSample]) -> Result<(), TestCaseError> {
    same_within(got, want, 0)
}

/// Like [`same`], finite values allowed `ulps` units in the last place apart.
fn same_within(got: &[ParsedSample], want: &[ParsedSample], ulps: u64) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        prop_assert_eq!(&g.name, &w.name);
        prop_assert_eq!(&g.labels, &w.labels);
        prop_assert_eq!(g.timestamp_ms, w.timestamp_ms);
        if w.value.is_nan() {
            prop_assert!(g.value.is_nan(), "{} is not NaN", g.value);
        } else {
            let (a, b) = (g.value.to_bits(), w.value.to_bits());
            prop_assert!(
                (g.value.is_sign_negative() == w.value.is_sign_negative()) && a.abs_diff(b) <= ulps,
                "{:e} vs {:e}",
                g.value,
                w.value
            );
        }
    }
    Ok(())
}

fn json_of(samples: &[Gen], with_empty_labels: bool) -> String {
    let items: Vec<serde_json::Value> = samples
        .iter()
        .map(|s| {
            let mut o = serde_json::Map::new();
            o.insert("name".into(), s.name.clone().into());
            if !s.labels.is_empty() || with_empty_labels {
                o.insert("labels".into(), serde_json::to_value(&s.labels).unwrap());
            }
            let v = if s.value.is_nan() {
                "NaN".into()
            } else if s.value == f64::INFINITY {
                "+Inf".into()
            } else if s.value == f64::NEG_INFINITY {
                "-Inf".into()
            } else {
                serde_json::Value::from(s.value)
            };
            o.insert("value".into(), v);
            if let Some(t) = s.timestamp {
                o.insert("timestamp".into(), t.into());
            }
            serde_json::Value::Object(o)
        })
        .collect();
    serde_json::to_string(&items).unwrap()
}

/// Runs every parser on `body`; checks lenient and strict agree.
fn parse_everything(body: &str) -> Result<(), TestCaseError> {
    let (samples, errors) = exposition::parse_lenient(body);
    match exposition::parse_strict(body) {
        Ok(strict) => {
            prop_assert!(errors.is_empty());
            same(&strict, &samples)?;
        }
        Err(e) => prop_assert_eq!(Some(&e), errors.first()),
    }
    let _ = push_json::parse(body.as_bytes());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn exposition_round_trip(samples in prop::collection::vec(sample(), 0..12), style in style()) {
        let samples = distinct(samples);
        let body = render(&samples, &style);
        let want: Vec<ParsedSample> = samples.iter().map(Gen::expected).collect();
        let strict = exposition::parse_strict(&body).map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        same(&strict, &want)?;
        let (lenient, errors) = exposition::parse_lenient(&body);
        prop_assert!(errors.is_empty(), "{errors:?}");
        same(&lenient, &want)?;
    }

    #[test]
    fn json_round_trip(samples in prop::collection::vec(sample(), 0..12), with_empty_labels in any::<bool>()) {
        let samples = distinct(samples);
        let body = json_of(&samples, with_empty_labels);
        let want: Vec<ParsedSample> = samples.iter().map(Gen::expected).collect();
        let got = push_json::parse(body.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        // serde_json without its `float_roundtrip` feature reads floats "best effort": up to
        // 2 ULPs off in 5 M random values tried; allow a little more.
        same_within(&got, &want, 4)?;
    }

    #[test]
    fn arbitrary_strings_never_panic(body in any::<String>()) {
        parse_everything(&body)?;
    }

    #[test]
    fn format_like_strings_never_panic(body in r#"([a-z:_{}=",\\ \t\r\n#0-9.+eEINnaf-]|HELP|TYPE|Inf|NaN|é){0,200}"#) {
        parse_everything(&body)?;
    }

    #[test]
    fn mutated_valid_bodies_never_panic(
        samples in prop::collection::vec(sample(), 1..6),
        style in style(),
        cut in any::<prop::sample::Index>(),
        insert in any::<char>(),
    ) {
        let body = render(&distinct(samples), &style);
        let mut chars: Vec<char> = body.chars().collect();
        chars.insert(cut.index(chars.len() + 1), insert);
        parse_everything(&String::from_iter(&chars))?;
        chars.truncate(cut.index(chars.len()));
        parse_everything(&String::from_iter(&chars))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_json_parser(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = push_json::parse(&body);
    }

    #[test]
    fn json_like_strings_never_panic(body in r#"([\[\]{}":,0-9a-z .eE+-]|name|value|labels|timestamp|NaN|Inf){0,150}"#) {
        let _ = push_json::parse(body.as_bytes());
    }

    #[test]
    fn mutated_json_never_panics(samples in prop::collection::vec(sample(), 1..6), cut in any::<prop::sample::Index>()) {
        let body = json_of(&distinct(samples), false);
        let mut bytes = body.into_bytes();
        bytes.truncate(cut.index(bytes.len()));
        let _ = push_json::parse(&bytes);
    }
}
