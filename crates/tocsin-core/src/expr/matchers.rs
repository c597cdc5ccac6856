//! PromQL label matchers on metric reads, `m{k="v", k!="v", k=~"re", k!~"re"}`.
//!
//! evalexpr has no syntax for them, so they are taken out of the source before it parses:
//! each `{…}` block is replaced by as many spaces as it has bytes, which keeps every other
//! byte offset (and so every later error's caret) where it was, and the matchers are kept
//! by the offset of the metric name they follow. The compiler looks them up when it meets
//! that name.

use std::fmt;
use std::hash::{Hash, Hasher};

use regex::Regex;

use super::ExprError;

/// The four PromQL matching operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: the label has exactly this value (absent counts as empty).
    Equal,
    /// `!=`: the label does not have this value.
    NotEqual,
    /// `=~`: the value matches the regex, anchored at both ends.
    Regex,
    /// `!~`: the value does not match the regex, anchored at both ends.
    NotRegex,
}

impl MatchOp {
    fn text(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher of one metric read.
///
/// Equality and hashing go by the written form (label, operator, value); the compiled
/// regex follows from it.
#[derive(Clone, Debug)]
pub struct LabelMatcher {
    /// The label name.
    pub label: String,
    /// How the value is compared.
    pub op: MatchOp,
    /// The value, unescaped (for regex operators, the regex source).
    pub value: String,
    re: Option<Regex>,
}

impl LabelMatcher {
    /// A matcher; a regex operator's value is compiled anchored at both ends, as PromQL does.
    pub fn new(label: &str, op: MatchOp, value: &str) -> Result<LabelMatcher, regex::Error> {
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(crate::series::anchored_regex(value)?),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(LabelMatcher {
            label: label.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Whether a series whose label has `value` (`None` when absent, which PromQL treats as
    /// the empty string) is selected.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            // `new` compiles a regex for both regex operators.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op == other.op && self.value == other.value
    }
}

impl Eq for LabelMatcher {}

impl Hash for LabelMatcher {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (&self.label, self.op, &self.value).hash(state);
    }
}

impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.label, self.op.text(), self.value)
    }
}

/// The matchers of one metric read: the byte offset of the metric name and its matchers.
pub(super) type Selector = (usize, Vec<LabelMatcher>);

/// `src` with every `{…}` matcher block blanked out, and the matchers by metric offset.
pub(super) fn extract(src: &str) -> Result<(String, Vec<Selector>), ExprError> {
    let bytes = src.as_bytes();
    let mut out = bytes.to_vec();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_quoted(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = src[i + 2..].find("*/").map_or(bytes.len(), |e| i + 2 + e + 2);
            }
            b'{' => {
                let Some(name_at) = metric_before(bytes, i) else {
                    return Err(ExprError::new("label matchers `{…}` must follow a metric name")
                        .hint("e.g. `http_requests_total{code=\"500\"}`")
                        .at(i));
                };
                let (matchers, end) = parse_block(src, i)?;
                out[i..end].fill(b' ');
                found.push((name_at, matchers));
                i = end;
            }
            b'}' => {
                return Err(ExprError::new("unmatched `}`")
                    .hint("label matchers look like `metric{label=\"value\"}`")
                    .at(i));
            }
            _ => i += 1,
        }
    }
    // Only ASCII bytes were replaced, by ASCII spaces: still UTF-8.
    let text = String::from_utf8(out).map_err(|_| ExprError::new("expression is not valid UTF-8"))?;
    Ok((text, found))
}

/// Index just past a double-quoted string starting at `open` (or the end of input: the
/// token scan reports the unterminated string).
fn skip_quoted(bytes: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// The offset of the metric name that ends right before `brace` (spaces allowed between),
/// if a name is there.
fn metric_before(bytes: &[u8], brace: usize) -> Option<usize> {
    let mut end = brace;
    while end > 0 && bytes[end - 1] == b' ' {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && is_name_byte(bytes[start - 1]) {
        start -= 1;
    }
    let first = *bytes.get(start)?;
    (start < end && (first.is_ascii_alphabetic() || first == b'_' || first == b':')).then_some(start)
}

/// Parses the matcher block whose `{` is at `open`; returns the matchers and the index
/// just past its `}`.
fn parse_block(src: &str, open: usize) -> Result<(Vec<LabelMatcher>, usize), ExprError> {
    let bytes = src.as_bytes();
    let mut i = open + 1;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        match bytes.get(i) {
            None => {
                return Err(ExprError::new("unclosed `{` of label matchers")
                    .hint("close it with `}`")
                    .at(open));
            }
            Some(b'}') => return Ok((out, i + 1)),
            Some(_) => {}
        }
        let label_at = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        let label = &src[label_at..i];
        if label.is_empty() || label.as_bytes()[0].is_ascii_digit() {
            return Err(ExprError::new("expected a label name in label matchers")
                .hint("matchers look like `label=\"value\"`, `label!=\"v\"`, `label=~\"re\"` or `label!~\"re\"`")
                .at(label_at));
        }
        skip_ws(&mut i);
        let op_at = i;
        let op = match (bytes.get(i), bytes.get(i + 1)) {
            (Some(b'='), Some(b'~')) => MatchOp::Regex,
            (Some(b'!'), Some(b'~')) => MatchOp::NotRegex,
            (Some(b'!'), Some(b'=')) => MatchOp::NotEqual,
            (Some(b'='), Some(b'=')) => {
                return Err(
                    ExprError::new(format!("`==` is not a label matcher operator after `{label}`"))
                        .hint(format!("write `{label}=\"value\"`"))
                        .at(op_at),
                );
            }
            (Some(b'='), _) => MatchOp::Equal,
            _ => {
                return Err(
                    ExprError::new(format!("expected `=`, `!=`, `=~` or `!~` after label `{label}`")).at(op_at),
                );
            }
        };
        i += if op == MatchOp::Equal { 1 } else { 2 };
        skip_ws(&mut i);
        let value_at = i;
        let (value, after) = quoted_value(src, i)?;
        let m = LabelMatcher::new(label, op, &value).map_err(|e| {
            ExprError::new(format!(
                "invalid regex for label `{label}`: {}",
                last_line(&e.to_string())
            ))
            .at(value_at)
        })?;
        out.push(m);
        i = after;
        skip_ws(&mut i);
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {}
            None => {
                return Err(ExprError::new("unclosed `{` of label matchers")
                    .hint("close it with `}`")
                    .at(open));
            }
            Some(_) => {
                return Err(ExprError::new("expected `,` or `}` after a label matcher").at(i));
            }
        }
    }
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

/// A quoted label value at `at` (double or single quotes, PromQL's escapes); returns it
/// unescaped and the index past its closing quote.
fn quoted_value(src: &str, at: usize) -> Result<(String, usize), ExprError> {
    let bytes = src.as_bytes();
    let quote = match bytes.get(at) {
        Some(q @ (b'"' | b'\'' | b'`')) => *q,
        _ => {
            return Err(ExprError::new("a label value must be quoted")
                .hint("e.g. `mode=\"idle\"`")
                .at(at));
        }
    };
    let mut value = String::new();
    let mut chars = src[at + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        let here = at + 1 + k;
        match c {
            c if c as u32 == u32::from(quote) => return Ok((value, here + 1)),
            '\\' if quote != b'`' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, e @ ('\\' | '"' | '\''))) => value.push(e),
                // Regexes keep their own escapes (`\.`, `\d`): pass them through.
                Some((_, e)) => {
                    value.push('\\');
                    value.push(e);
                }
                None => break,
            },
            c => value.push(c),
        }
    }
    Err(ExprError::new("unterminated label value").at(at))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn blanks_blocks_and_keeps_offsets() {
        let src = r#"m{type="vms"} - m{type="rss"}"#;
        let (text, found) = extract(src).unwrap();
        assert_eq!(text.len(), src.len());
        assert_eq!(text, format!("m{0} - m{0}", " ".repeat(12)));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, 0);
        assert_eq!(found[1].0, 16);
        assert_eq!(found[0].1[0].to_string(), r#"type="vms""#);
    }

    #[test]
    fn every_operator_and_quote() {
        let (_, found) = extract(r#"a:b{x="1", y!='2', z=~"n.*", w!~`\d+`,}"#).unwrap();
        let ops: Vec<MatchOp> = found[0].1.iter().map(|m| m.op).collect();
        assert_eq!(
            ops,
            [MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex, MatchOp::NotRegex]
        );
        let w = &found[0].1[3];
        assert_eq!(w.value, r"\d+");
        assert!(w.matches(Some("x")));
        assert!(!w.matches(Some("12")));
        // Anchored: a partial match is no match.
        assert!(!found[0].1[2].matches(Some("anvme")));
        assert!(found[0].1[2].matches(Some("nvme0")));
        // An absent label reads as the empty string.
        assert!(found[0].1[1].matches(None));
    }

    #[test]
    fn braces_in_strings_and_comments_are_left_alone() {
        let (text, found) = extract(r#"rate(m, "5m") // {not a matcher}"#).unwrap();
        assert!(found.is_empty());
        assert!(text.contains("{not"));
    }

    #[test]
    fn malformed_blocks_are_located() {
        let cases: &[(&str, usize)] = &[
            (r#"m{type="a""#, 1),
            (r#"m{type}"#, 6),
            (r#"m{="a"}"#, 2),
            (r#"m{type=a}"#, 7),
            (r#"m{type=="a"}"#, 6),
            (r#"m{a="1" b="2"}"#, 8),
            (r#"m{a=~"("}"#, 5),
            (r#"3 + {a="1"}"#, 4),
            (r#"m}"#, 1),
            (r#"m{a="1"#, 4),
        ];
        for (src, at) in cases {
            let e = extract(src).expect_err(src);
            assert_eq!(e.offset, Some(*at), "{src}: {e}");
        }
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-zA-Z_][a-zA-Z0-9_]{0,8}"
    }

    fn op() -> impl Strategy<Value = MatchOp> {
        prop_oneof![
            Just(MatchOp::Equal),
            Just(MatchOp::NotEqual),
            Just(MatchOp::Regex),
            Just(MatchOp::NotRegex)
        ]
    }

    proptest! {
        // Whatever the input, extraction never panics, and on success it keeps the length
        // and every byte outside the blocks.
        #[test]
        fn never_panics_and_keeps_offsets(src in ".{0,80}") {
            if let Ok((text, found)) = extract(&src) {
                prop_assert_eq!(text.len(), src.len());
                for (at, _) in found {
                    prop_assert!(at < src.len());
                }
            }
        }

        // Written matchers read back as they were written, escapes included.
        #[test]
        fn round_trips(name in "[a-z_:][a-z0-9_:]{0,10}",
                       ms in proptest::collection::vec((label(), op(), "[a-z0-9 \"\\\\]{0,6}"), 0..4)) {
            let block: Vec<String> = ms.iter().map(|(l, o, v)| {
                let v = if matches!(o, MatchOp::Regex | MatchOp::NotRegex) {
                    regex::escape(v)
                } else {
                    v.clone()
                };
                let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
                format!("{l}{}\"{escaped}\"", o.text())
            }).collect();
            let src = format!("{name}{{{}}} > 1", block.join(", "));
            let (text, found) = extract(&src).unwrap();
            let blanked = format!("{name}{} > 1", " ".repeat(src.len() - name.len() - 4));
            prop_assert_eq!(text, blanked);
            prop_assert_eq!(found.len(), 1);
            prop_assert_eq!(found[0].0, 0);
            prop_assert_eq!(found[0].1.len(), ms.len());
            for (m, (l, o, v)) in found[0].1.iter().zip(&ms) {
                prop_assert_eq!(&m.label, l);
                prop_assert_eq!(m.op, *o);
                // An equality matcher matches exactly its value; a regex one its escaped value.
                prop_assert_eq!(m.matches(Some(v)), matches!(o, MatchOp::Equal | MatchOp::Regex));
            }
        }
    }
}
