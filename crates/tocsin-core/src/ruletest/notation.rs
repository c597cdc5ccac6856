//! The input notation of rule unit tests: series selectors and promtool's expanding values.

use crate::series::{Labels, stale_marker};

/// Most samples one `values` string may expand to; beyond it a typo like `1x1e9` would
/// exhaust memory instead of failing.
pub const MAX_SAMPLES: usize = 1_000_000;

/// One position of an expanded `values` string.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Point {
    /// A sample (finite, NaN, ±Inf or a stale marker).
    Value(f64),
    /// `_`: no sample at this step.
    Missing,
}

/// A notation error: what is wrong and the byte offset in the input where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotationError {
    /// What is wrong.
    pub message: String,
    /// Byte offset into the parsed string.
    pub offset: usize,
}

fn err(offset: usize, message: impl Into<String>) -> NotationError {
    NotationError {
        message: message.into(),
        offset,
    }
}

/// Expands promtool's notation: `a`, `a+bxN`, `a-bxN`, `axN` (N+1 samples), `_`, `_xN`
/// (N missing), `stale`, separated by white space.
pub fn parse_values(src: &str) -> Result<Vec<Point>, NotationError> {
    let mut out = Vec::new();
    let mut offset = 0;
    for token in src.split(|c: char| c.is_ascii_whitespace()) {
        let at = offset;
        offset += token.len() + 1;
        if token.is_empty() {
            continue;
        }
        expand_token(token, at, &mut out)?;
        if out.len() > MAX_SAMPLES {
            return Err(err(at, format!("expands to more than {MAX_SAMPLES} samples")));
        }
    }
    Ok(out)
}

fn expand_token(token: &str, at: usize, out: &mut Vec<Point>) -> Result<(), NotationError> {
    if token == "stale" {
        out.push(Point::Value(stale_marker()));
        return Ok(());
    }
    if token == "_" {
        out.push(Point::Missing);
        return Ok(());
    }
    let Some(x) = token.rfind('x') else {
        out.push(Point::Value(number(token, at)?));
        return Ok(());
    };
    let (head, count) = (&token[..x], &token[x + 1..]);
    let n: usize = count.parse().map_err(|_| {
        err(
            at + x + 1,
            format!("`{count}` after `x` is not a whole number of repetitions"),
        )
    })?;
    if n > MAX_SAMPLES {
        return Err(err(at + x + 1, format!("{n} repetitions is more than {MAX_SAMPLES}")));
    }
    if head == "_" {
        out.extend(std::iter::repeat_n(Point::Missing, n));
        return Ok(());
    }
    // The step's sign is the last '+' or '-' that is not the start of the number or part
    // of an exponent (`1e-3+1x2`).
    let bytes = head.as_bytes();
    let split = (1..bytes.len())
        .rev()
        .find(|&i| (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
    let (start, step) = match split {
        Some(i) => {
            let step = number(&head[i + 1..], at + i + 1)?;
            (number(&head[..i], at)?, if bytes[i] == b'-' { -step } else { step })
        }
        None => (number(head, at)?, 0.0),
    };
    out.extend((0..=n).map(|k| Point::Value(start + step * k as f64)));
    Ok(())
}

fn number(s: &str, at: usize) -> Result<f64, NotationError> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => return Ok(f64::INFINITY),
        "-Inf" | "-inf" => return Ok(f64::NEG_INFINITY),
        "NaN" | "nan" => return Ok(f64::NAN),
        _ => {}
    }
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    match s.parse::<f64>() {
        Ok(v) if ok && v.is_finite() => Ok(v),
        _ => Err(err(
            at,
            format!("`{s}` is not a number (expected `a`, `a+bxN`, `a-bxN`, `axN`, `_` or `stale`)"),
        )),
    }
}

/// Parses a series selector `name{label="value", ...}` (braces optional).
pub fn parse_series(src: &str) -> Result<(String, Labels), NotationError> {
    let s = src.trim_end();
    let lead = s.len() - s.trim_start().len();
    let s = s.trim_start();
    let name_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let name = &s[..name_end];
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return Err(err(
            lead,
            "a series starts with a metric name matching [a-zA-Z_][a-zA-Z0-9_]*",
        ));
    }
    let mut labels = Labels::new();
    let rest = &s[name_end..];
    if rest.is_empty() {
        return Ok((name.to_string(), labels));
    }
    let base = lead + name_end;
    let Some(body) = rest.strip_prefix('{') else {
        return Err(err(base, format!("unexpected `{rest}` after the metric name")));
    };
    let mut chars = body.char_indices().peekable();
    let pos = |i: usize| base + 1 + i;
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        match chars.peek() {
            Some((_, '}')) => {
                chars.next();
                break;
            }
            None => return Err(err(pos(body.len()), "missing `}`")),
            _ => {}
        }
        let start = chars.peek().map(|(i, _)| *i).unwrap_or(body.len());
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| c.is_ascii_alphanumeric() || *c == '_') {
            key.push(c);
        }
        if key.is_empty() || key.as_bytes()[0].is_ascii_digit() {
            return Err(err(pos(start), "expected a label name"));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(err(pos(start), format!("expected `=` after label `{key}`")));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some((q, '"')) = chars.next() else {
            return Err(err(
                pos(start),
                format!("the value of label `{key}` must be a double-quoted string"),
            ));
        };
        let mut value = String::new();
        loop {
            match chars.next() {
                Some((_, '"')) => break,
                Some((i, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err(err(pos(i), "unknown escape (use \\\\, \\\" or \\n)")),
                },
                Some((_, c)) => value.push(c),
                None => return Err(err(pos(q), "unterminated label value")),
            }
        }
        if labels.get(&key).is_some() {
            return Err(err(pos(start), format!("label `{key}` appears twice")));
        }
        labels.set(&key, &value);
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        match chars.next() {
            Some((_, ',')) => {}
            Some((_, '}')) => break,
            Some((i, c)) => return Err(err(pos(i), format!("expected `,` or `}}`, found `{c}`"))),
            None => return Err(err(pos(body.len()), "missing `}`")),
        }
    }
    if let Some((i, _)) = chars.next() {
        return Err(err(pos(i), "unexpected text after `}`"));
    }
    Ok((name.to_string(), labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::is_stale_marker;
    use proptest::prelude::*;

    fn vals(s: &str) -> Vec<Option<f64>> {
        parse_values(s)
            .unwrap()
            .into_iter()
            .map(|p| match p {
                Point::Value(v) => Some(v),
                Point::Missing => None,
            })
            .collect()
    }

    #[test]
    fn expands_like_promtool() {
        assert_eq!(vals("1+2x3"), [Some(1.0), Some(3.0), Some(5.0), Some(7.0)]);
        assert_eq!(vals("10-1x2"), [Some(10.0), Some(9.0), Some(8.0)]);
        assert_eq!(vals("7x2"), [Some(7.0); 3]);
        assert_eq!(vals("-1+1x1"), [Some(-1.0), Some(0.0)]);
        assert_eq!(vals("1e-3+1x1"), [Some(0.001), Some(1.001)]);
        assert_eq!(vals("_ 1 _x2"), [None, Some(1.0), None, None]);
        assert_eq!(vals("50+1x10 _ _ 70x3").len(), 17);
        let p = parse_values("stale").unwrap();
        assert!(matches!(p[0], Point::Value(v) if is_stale_marker(v)));
        assert!(matches!(parse_values("NaN -Inf").unwrap()[1], Point::Value(v) if v == f64::NEG_INFINITY));
    }

    #[test]
    fn malformed_values_name_the_offset() {
        assert_eq!(parse_values("1 2 abc").unwrap_err().offset, 4);
        assert!(parse_values("1x").unwrap_err().message.contains("whole number"));
        assert!(parse_values("1+x3").is_err());
        assert!(parse_values("1x99999999999").is_err());
        assert!(parse_values("1x999999 1x999999").is_err());
        assert!(parse_values("1e999").is_err());
    }

    #[test]
    fn parses_selectors() {
        let (n, l) = parse_series(r#"disk_used_percent{mount="/", device="a\"b,c"}"#).unwrap();
        assert_eq!(n, "disk_used_percent");
        assert_eq!(l.get("mount"), Some("/"));
        assert_eq!(l.get("device"), Some("a\"b,c"));
        assert!(parse_series("mem_used_percent").unwrap().1.is_empty());
        assert!(parse_series("m{}").unwrap().1.is_empty());
        for bad in [
            "",
            "1m",
            "m{a=b}",
            "m{a=\"b\"",
            "m{a=\"b\" c=\"d\"}",
            "m x",
            "m{a=\"1\",a=\"2\"}",
        ] {
            assert!(parse_series(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_values(&s);
            let _ = parse_series(&s);
        }

        #[test]
        fn round_trips_selectors(name in "[a-z_][a-z0-9_]{0,8}", v in "\\PC{0,10}") {
            let esc = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let (n, l) = parse_series(&format!("{name}{{k=\"{esc}\"}}")).unwrap();
            prop_assert_eq!(n, name);
            prop_assert_eq!(l.get("k"), Some(v.as_str()));
        }
    }
}
