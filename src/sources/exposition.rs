//! The Prometheus text exposition format (0.0.4), parsed the way Prometheus parses it.
//!
//! Sans-IO: a body (`&str`, so invalid UTF-8 is the caller's to reject) goes in, samples
//! come out. [`parse_lenient`] is for scrapes: every valid sample is kept, each malformed
//! line is reported and skipped. [`parse_strict`] is for pushes: all samples or the first
//! error, so nothing of a bad body gets stored. [`ParsedSample`] and [`LineError`] live
//! here and are re-exported from [`crate::sources`]; `push_json` uses them too.
//!
//! # Grammar, line by line
//!
//! * blank lines (only spaces/tabs) are skipped; a trailing `\r` (CRLF) is dropped first;
//! * `# HELP <name> [text]` and `# TYPE <name> <type>` are metadata: the name must be a
//!   valid metric name and the type one of `counter`, `gauge`, `histogram`, `summary`,
//!   `untyped` (lower case, as Prometheus wants; surrounding blanks are tolerated). The
//!   keyword must be upper case and separated by blanks (`#HELP` or `# help` is a comment,
//!   as in Prometheus). Metadata produces no sample and is not checked against the samples;
//! * any other line starting with `#` is a comment;
//! * a sample: `name[{labels}] value [timestamp]`, blanks (spaces, tabs) allowed between
//!   tokens. Metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*` (colons are kept); label names
//!   `[a-zA-Z_][a-zA-Z0-9_]*`; label values are double-quoted, with the escapes `\\`, `\"`
//!   and `\n` only (anything else after a backslash is an error; Prometheus would keep it
//!   verbatim). Values may hold any other character, commas, `}`, `=` and blanks included.
//!   `{}` and a trailing comma are fine; label pairs must be separated by commas
//!   (Prometheus accepts a missing comma by accident, its source says so; we do not).
//!
//! # Decisions
//!
//! * **Values** are decimal floats as Go's `strconv.ParseFloat` reads them (`1`, `-1.5e3`,
//!   `.5`, `5.`), plus `NaN` (unsigned) and `Inf`/`Infinity` with an optional sign, all
//!   case-insensitive. Hex floats and `_` are rejected like Prometheus does; a finite
//!   literal too large for an `f64` (`1e400`) is an error, as in Go. NaN is the ordinary
//!   quiet NaN, never a [stale marker](crate::series::stale_marker).
//! * **Timestamps** are integer milliseconds, `[+-]?[0-9]+` fitting an `i64` (Prometheus'
//!   lexer only takes digits; the format's documentation says "as Go's ParseInt", which
//!   takes a sign, and negative times are meaningful to `tocsin test`).
//! * **Empty label values** mean "no such label", as in Prometheus' data model:
//!   `up{job=""} 1` is the series `up` without labels. A name given twice is still a
//!   duplicate even if one value is empty.
//! * **`__name__` inside braces** is rejected: the metric name goes before the braces
//!   (quoted UTF-8 names à la Prometheus 3 are not supported either).
//! * **Duplicate series** (same name and labels, whatever the timestamps) in one body: the
//!   format says each must be unique and Prometheus rejects them. Strict mode fails on the
//!   second occurrence; lenient mode keeps the first and reports every later one.
//! * **Limits**: a line longer than [`MAX_LINE_BYTES`] is an error (reported, skipped in
//!   lenient mode). Parsing is a single left-to-right pass per line with no backtracking,
//!   so it is linear in the body, and never panics.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use crate::series::Labels;

/// The longest line accepted, in bytes, line break excluded (64 KiB).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// One parsed sample.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample {
    /// The metric name, colons included.
    pub name: String,
    /// The labels, without `__name__` and without empty-valued labels.
    pub labels: Labels,
    /// The value; may be NaN or ±Inf (never a stale marker).
    pub value: f64,
    /// The sample's own timestamp (ms since the Unix epoch), when the body gave one.
    pub timestamp_ms: Option<i64>,
}

/// A problem with one line (1-based) of the input.
///
/// For JSON bodies `line` is explained by the message: either the 1-based index of the
/// offending array element or the text line of a syntax error (see `push_json`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// The 1-based line (or, for JSON semantic errors, array element).
    pub line: usize,
    /// What is wrong, for humans.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LineError {}

/// Lenient (scrape): every valid sample is returned; each malformed line is reported and skipped.
///
/// A duplicate series keeps its first sample; each later line with it is reported.
pub fn parse_lenient(body: &str) -> (Vec<ParsedSample>, Vec<LineError>) {
    let mut errors = Vec::new();
    let samples = parse_with(body, |e| {
        errors.push(e);
        true
    });
    (samples, errors)
}

/// Strict (push): all samples, or the first error (nothing of the body may be stored then).
pub fn parse_strict(body: &str) -> Result<Vec<ParsedSample>, LineError> {
    let mut first = None;
    let samples = parse_with(body, |e| {
        first = Some(e);
        false
    });
    match first {
        Some(e) => Err(e),
        None => Ok(samples),
    }
}

/// Parses every line, handing each error to `on_error`, which says whether to go on.
fn parse_with(body: &str, mut on_error: impl FnMut(LineError) -> bool) -> Vec<ParsedSample> {
    let mut samples = Vec::new();
    // (name, labels) -> (line it first appeared on); the name borrows the body.
    let mut seen: HashMap<(&str, Labels), usize> = HashMap::new();
    for (i, raw) in body.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let parsed = if line.len() > MAX_LINE_BYTES {
            Err(format!(
                "line is {} bytes long, more than the {MAX_LINE_BYTES} allowed",
                line.len()
            ))
        } else {
            parse_line(line)
        };
        let error = match parsed {
            Ok(None) => continue,
            Ok(Some(s)) => match seen.entry((s.name, s.labels.clone())) {
                std::collections::hash_map::Entry::Occupied(first) => format!(
                    "duplicate series {}{} (first on line {}); each series may appear once per body",
                    s.name,
                    s.labels,
                    first.get()
                ),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(line_no);
                    samples.push(ParsedSample {
                        name: s.name.to_string(),
                        labels: s.labels,
                        value: s.value,
                        timestamp_ms: s.timestamp_ms,
                    });
                    continue;
                }
            },
            Err(message) => message,
        };
        if !on_error(LineError {
            line: line_no,
            message: error,
        }) {
            break;
        }
    }
    samples
}

/// A sample whose name still borrows the line.
struct LineSample<'a> {
    name: &'a str,
    labels: Labels,
    value: f64,
    timestamp_ms: Option<i64>,
}

const METRIC_TYPES: [&str; 5] = ["counter", "gauge", "histogram", "summary", "untyped"];

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_name_start(b: u8, colon: bool) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || (colon && b == b':')
}

fn is_name_char(b: u8, colon: bool) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':')
}

/// Whether `s` is a metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_name_start(b[0], true) && b[1..].iter().all(|&c| is_name_char(c, true))
}

/// Whether `s` is a label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_name_start(b[0], false) && b[1..].iter().all(|&c| is_name_char(c, false))
}

/// How a character is shown in an error message.
fn show(line: &str, at: usize) -> String {
    match line.get(at..).and_then(|r| r.chars().next()) {
        Some(c) => format!("{c:?}"),
        None => "end of line".to_string(),
    }
}

/// A cursor over one line. All syntax is ASCII, so every position it stops at is a char
/// boundary of the (UTF-8) line and slicing never panics.
struct Cursor<'a> {
    line: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.i += 1;
        }
    }

    fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }

    /// Consumes a name (`colon` says whether colons are allowed) and returns it, or None
    /// when no name starts here.
    fn name(&mut self, colon: bool) -> Option<&'a str> {
        let start = self.i;
        if !self.peek().is_some_and(|c| is_name_start(c, colon)) {
            return None;
        }
        self.i += 1;
        while self.peek().is_some_and(|c| is_name_char(c, colon)) {
            self.i += 1;
        }
        Some(&self.line[start..self.i])
    }

    /// Consumes a run of non-blank characters.
    fn word(&mut self) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(|c| !is_blank(c)) {
            self.i += 1;
        }
        &self.line[start..self.i]
    }

    fn show_here(&self) -> String {
        show(self.line, self.i)
    }
}

/// Parses one line (without its line break): `Ok(None)` for blank, comment and metadata lines.
fn parse_line(line: &str) -> Result<Option<LineSample<'_>>, String> {
    let mut c = Cursor {
        line,
        b: line.as_bytes(),
        i: 0,
    };
    c.skip_blanks();
    match c.peek() {
        None => Ok(None),
        Some(b'#') => parse_comment(c).map(|()| None),
        Some(_) => parse_sample(c).map(Some),
    }
}

/// A `#` line: HELP, TYPE or a plain comment.
fn parse_comment(mut c: Cursor<'_>) -> Result<(), String> {
    c.i += 1;
    if !c.peek().is_some_and(is_blank) {
        return Ok(()); // `#HELP` and the like: a comment, as in Prometheus.
    }
    c.skip_blanks();
    let rest = &c.line[c.i..];
    let keyword = if rest.starts_with("HELP") {
        "HELP"
    } else if rest.starts_with("TYPE") {
        "TYPE"
    } else {
        return Ok(());
    };
    c.i += 4;
    if !c.peek().is_some_and(is_blank) {
        return Ok(()); // `# HELPFUL` or a bare `# HELP`: a comment.
    }
    c.skip_blanks();
    let Some(name) = c.name(true) else {
        return Err(format!(
            "expected a metric name after # {keyword}, found {}",
            c.show_here()
        ));
    };
    if !c.at_end() && !c.peek().is_some_and(is_blank) {
        return Err(format!(
            "invalid character {} in metric name {name:?} after # {keyword}",
            c.show_here()
        ));
    }
    if keyword == "TYPE" {
        let word = c.line[c.i..].trim_matches([' ', '\t']);
        if !METRIC_TYPES.contains(&word) {
            return Err(format!(
                "invalid metric type {word:?} for {name}: expected one of {}",
                METRIC_TYPES.join(", ")
            ));
        }
    }
    Ok(())
}

/// `name[{labels}] value [timestamp]`.
fn parse_sample(mut c: Cursor<'_>) -> Result<LineSample<'_>, String> {
    let Some(name) = c.name(true) else {
        return Err(match c.peek() {
            Some(b'{') => "missing metric name before '{' (quoted metric names are not supported)".to_string(),
            _ => format!(
                "invalid metric name: it must start with a letter, '_' or ':', found {}",
                c.show_here()
            ),
        });
    };
    match c.peek() {
        None | Some(b' ' | b'\t' | b'{') => {}
        Some(_) => {
            return Err(format!(
                "invalid character {} in metric name {name:?} (names match [a-zA-Z_:][a-zA-Z0-9_:]*)",
                c.show_here()
            ));
        }
    }
    c.skip_blanks();
    let labels = if c.peek() == Some(b'{') {
        c.i += 1;
        let l = parse_labels(&mut c, name)?;
        c.skip_blanks();
        l
    } else {
        Labels::new()
    };
    let value_text = c.word();
    if value_text.is_empty() {
        return Err(format!("missing value for {name}"));
    }
    let value = parse_value(value_text).map_err(|m| format!("invalid value {value_text:?} for {name}: {m}"))?;
    c.skip_blanks();
    let timestamp_ms = if c.at_end() {
        None
    } else {
        let ts_text = c.word();
        let ts = parse_timestamp(ts_text)
            .ok_or_else(|| format!("invalid timestamp {ts_text:?} for {name}: expected integer milliseconds"))?;
        c.skip_blanks();
        if !c.at_end() {
            return Err(format!(
                "unexpected text {:?} after the timestamp of {name}",
                &c.line[c.i..]
            ));
        }
        Some(ts)
    };
    Ok(LineSample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

/// The label pairs after `{`, through the closing `}`.
fn parse_labels(c: &mut Cursor<'_>, metric: &str) -> Result<Labels, String> {
    let mut pairs: Vec<(&str, Cow<'_, str>)> = Vec::new();
    loop {
        c.skip_blanks();
        match c.peek() {
            Some(b'}') => {
                c.i += 1;
                break;
            }
            None => return Err(format!("unterminated label set of {metric}: missing '}}'")),
            _ => {}
        }
        let Some(label) = c.name(false) else {
            return Err(match c.peek() {
                Some(b'"') => format!("quoted label names are not supported (in {metric})"),
                _ => format!("expected a label name in {metric}, found {}", c.show_here()),
            });
        };
        if label == "__name__" {
            return Err(format!(
                "label __name__ is not allowed inside braces (in {metric}): the metric name goes before them"
            ));
        }
        c.skip_blanks();
        if c.peek() != Some(b'=') {
            return Err(format!(
                "expected '=' after label name {label:?} in {metric}, found {}",
                c.show_here()
            ));
        }
        c.i += 1;
        c.skip_blanks();
        if c.peek() != Some(b'"') {
            return Err(format!(
                "expected a double-quoted value for label {label:?} in {metric}, found {}",
                c.show_here()
            ));
        }
        c.i += 1;
        let value = parse_quoted(c).map_err(|m| format!("{m} (label {label:?} of {metric})"))?;
        pairs.push((label, value));
        c.skip_blanks();
        match c.peek() {
            Some(b',') => c.i += 1,
            Some(b'}') => {}
            _ => {
                return Err(format!(
                    "expected ',' or '}}' after the value of label {label:?} in {metric}, found {}",
                    c.show_here()
                ));
            }
        }
    }
    // Sorting makes the duplicate check O(n log n) however many labels a line holds.
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("duplicate label name {:?} in {metric}", w[0].0));
    }
    let mut labels = Labels::new();
    for (k, v) in &pairs {
        if !v.is_empty() {
            labels.set(k, v);
        }
    }
    Ok(labels)
}

/// A label value after its opening quote, through the closing one, unescaped.
fn parse_quoted<'a>(c: &mut Cursor<'a>) -> Result<Cow<'a, str>, String> {
    let start = c.i;
    let mut owned: Option<String> = None;
    let mut run = start; // start of the stretch not yet copied into `owned`
    loop {
        let Some(off) = c.b[c.i..].iter().position(|&b| b == b'"' || b == b'\\') else {
            return Err("unterminated label value: missing closing '\"'".to_string());
        };
        c.i += off;
        if c.b[c.i] == b'"' {
            let end = c.i;
            c.i += 1;
            return Ok(match owned {
                None => Cow::Borrowed(&c.line[start..end]),
                Some(mut s) => {
                    s.push_str(&c.line[run..end]);
                    Cow::Owned(s)
                }
            });
        }
        let unescaped = match c.b.get(c.i + 1) {
            Some(b'\\') => '\\',
            Some(b'"') => '"',
            Some(b'n') => '\n',
            None => return Err("unterminated label value: missing closing '\"'".to_string()),
            Some(_) => {
                let escaped = c.line[c.i + 1..].chars().next().unwrap_or(' ');
                return Err(format!(
                    "invalid escape \\{escaped} in label value: only \\\\, \\\" and \\n are allowed"
                ));
            }
        };
        let s = owned.get_or_insert_with(String::new);
        s.push_str(&c.line[run..c.i]);
        s.push(unescaped);
        c.i += 2;
        run = c.i;
    }
}

/// A sample value, as Prometheus (Go's `strconv.ParseFloat` without hex floats) reads it.
pub(crate) fn parse_value(s: &str) -> Result<f64, &'static str> {
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Ok(if negative { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if unsigned.eq_ignore_ascii_case("nan") {
        return if unsigned.len() == s.len() {
            Ok(f64::NAN)
        } else {
            Err("NaN takes no sign")
        };
    }
    // Rust's float syntax is Go's decimal syntax, minus the words handled above.
    if !unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err("not a number");
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_infinite() => Err("out of the range of a 64-bit float"),
        Ok(v) => Ok(v),
        Err(_) => Err("not a number"),
    }
}

/// A timestamp: `[+-]?[0-9]+` fitting an `i64`.
fn parse_timestamp(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
