//! The Prometheus text exposition format (0.0.4), parsed the way Prometheus parses it, and
//! the two pieces tocsin's own `/metrics` writers share ([`write_family`],
//! [`escape_label_value`]).
//!
//! Sans-IO: a body (`&str`, so invalid UTF-8 is the caller's to reject) goes in, samples
//! come out. [`parse_lenient`] is for scrapes: every valid sample is kept, each malformed
//! line is reported and skipped. [`parse_strict`] is for pushes: all samples or the first
//! error, so nothing of a bad body gets stored. [`ParsedSample`] and [`LineError`] live
//! here; `push_json` uses them too, and the daemon's sources re-export both.
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

/// Writes the `# HELP` and `# TYPE` lines of a metric family.
pub fn write_family(out: &mut String, name: &str, kind: &str, help: &str) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value escaped for the text format: backslash, double quote and newline.
pub fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

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
    let mut samples: Vec<ParsedSample> = Vec::new();
    let mut lines: Vec<usize> = Vec::new(); // the line of each sample
    let mut seen = SeenSeries::default();
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
        let message = match parsed {
            Ok(None) => continue,
            Ok(Some(s)) => {
                let first = seen.first_or_insert(s.name, &s.labels, None, samples.len(), |j| {
                    samples[j].name == s.name && samples[j].labels == s.labels
                });
                match first {
                    Some(j) => format!(
                        "duplicate series {}{} (first on line {}); each series may appear once per body",
                        s.name, s.labels, lines[j]
                    ),
                    None => {
                        samples.push(ParsedSample {
                            name: s.name.to_string(),
                            labels: s.labels,
                            value: s.value,
                            timestamp_ms: s.timestamp_ms,
                        });
                        lines.push(line_no);
                        continue;
                    }
                }
            }
            Err(message) => message,
        };
        if !on_error(LineError { line: line_no, message }) {
            break;
        }
    }
    samples
}

/// The series (and, for JSON, timestamps) already seen in one body, to find duplicates in
/// linear time without cloning label sets: a keyed (SipHash, random key, so no crafted
/// collisions) 64-bit hash of the series maps to the index of its first sample, which the
/// caller compares; series that merely share a hash go to a map keyed by their full bytes.
#[derive(Default)]
pub(crate) struct SeenSeries {
    hasher: std::hash::RandomState,
    by_hash: HashMap<u64, usize, std::hash::BuildHasherDefault<U64Hasher>>,
    spill: HashMap<Vec<u8>, usize>,
    key: Vec<u8>,
}

impl SeenSeries {
    /// The index of an earlier item with this series (and timestamp, when `Some`), or None
    /// after recording `index` as its first. `same(j)` says whether item `j` has this key.
    pub(crate) fn first_or_insert(
        &mut self,
        name: &str,
        labels: &Labels,
        timestamp: Option<Option<i64>>,
        index: usize,
        same: impl FnOnce(usize) -> bool,
    ) -> Option<usize> {
        // Unambiguous: UTF-8 text never holds the bytes 0xfe and 0xff.
        self.key.clear();
        self.key.extend_from_slice(name.as_bytes());
        for (k, v) in labels.iter() {
            self.key.push(0xff);
            self.key.extend_from_slice(k.as_bytes());
            self.key.push(0xfe);
            self.key.extend_from_slice(v.as_bytes());
        }
        if let Some(t) = timestamp {
            self.key.push(0xff);
            self.key.extend_from_slice(&t.map_or([0xff; 9], |t| {
                let mut b = [0; 9];
                b[1..].copy_from_slice(&t.to_le_bytes());
                b
            }));
        }
        let h = std::hash::BuildHasher::hash_one(&self.hasher, self.key.as_slice());
        match self.by_hash.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(index);
                None
            }
            std::collections::hash_map::Entry::Occupied(o) if same(*o.get()) => Some(*o.get()),
            std::collections::hash_map::Entry::Occupied(_) => match self.spill.entry(self.key.clone()) {
                std::collections::hash_map::Entry::Occupied(o) => Some(*o.get()),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(index);
                    None
                }
            },
        }
    }
}

/// Passes an already keyed-hashed `u64` through.
#[derive(Default)]
pub(crate) struct U64Hasher(u64);

impl std::hash::Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in so it stays a hash.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
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

/// At most the first 40 characters of `s`, for error messages.
fn snippet(s: &str) -> &str {
    s.char_indices().nth(40).map_or(s, |(i, _)| &s[..i])
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

    /// The text from `start` up to the next blank or `{`, for error messages.
    fn token_from(&self, start: usize) -> &'a str {
        let end = self.b[start..]
            .iter()
            .position(|&b| is_blank(b) || b == b'{')
            .map_or(self.b.len(), |p| start + p);
        snippet(self.line.get(start..end).unwrap_or(""))
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
            "invalid character {} in metric name {:?} after # {keyword}",
            c.show_here(),
            c.token_from(c.i - name.len())
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
                "invalid character {} in metric name {:?} (names match [a-zA-Z_:][a-zA-Z0-9_:]*)",
                c.show_here(),
                c.token_from(c.i - name.len())
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
    let value =
        parse_value(value_text).map_err(|m| format!("invalid value {:?} for {name}: {m}", snippet(value_text)))?;
    c.skip_blanks();
    let timestamp_ms = if c.at_end() {
        None
    } else {
        let ts_text = c.word();
        let ts = parse_timestamp(ts_text).ok_or_else(|| {
            format!(
                "invalid timestamp {:?} for {name}: expected integer milliseconds",
                snippet(ts_text)
            )
        })?;
        c.skip_blanks();
        if !c.at_end() {
            return Err(format!(
                "unexpected text {:?} after the timestamp of {name}",
                snippet(&c.line[c.i..])
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
            None => return Err(format!("unterminated label set of {metric}: missing '}}'")),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn one(body: &str) -> ParsedSample {
        let mut v = parse_strict(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
        assert_eq!(v.len(), 1, "{body:?}");
        v.pop().unwrap()
    }

    fn err(body: &str) -> LineError {
        parse_strict(body).expect_err(body)
    }

    /// Prometheus' own example from docs/instrumenting/exposition_formats.md.
    const DOCS_EXAMPLE: &str = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.05"} 3272
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.9"} 9001
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"#;

    #[test]
    fn prometheus_docs_example() {
        let got = parse_strict(DOCS_EXAMPLE).unwrap();
        assert_eq!(got.len(), 20);
        assert_eq!(
            got[0],
            ParsedSample {
                name: "http_requests_total".into(),
                labels: l(&[("method", "post"), ("code", "200")]),
                value: 1027.0,
                timestamp_ms: Some(1_395_066_363_000),
            }
        );
        assert_eq!(
            got[2].labels,
            l(&[
                ("path", r"C:\DIR\FILE.TXT"),
                ("error", "Cannot find file:\n\"FILE.TXT\"")
            ])
        );
        assert_eq!(got[2].value, 1.458255915e9);
        assert_eq!((got[3].value, got[3].timestamp_ms), (12.47, None));
        assert_eq!((got[4].value, got[4].timestamp_ms), (f64::INFINITY, Some(-3_982_045)));
        // Histogram: buckets keep `le`, _sum and _count are plain series.
        let buckets: Vec<_> = got
            .iter()
            .filter(|s| s.name == "http_request_duration_seconds_bucket")
            .map(|s| (s.labels.get("le").unwrap().to_string(), s.value))
            .collect();
        assert_eq!(buckets.len(), 6);
        assert_eq!(buckets[5], ("+Inf".to_string(), 144320.0));
        assert!(
            got.iter()
                .any(|s| s.name == "http_request_duration_seconds_sum" && s.value == 53423.0)
        );
        // Summary: quantiles keep `quantile`.
        let q = got.iter().find(|s| s.labels.get("quantile") == Some("0.99")).unwrap();
        assert_eq!((q.name.as_str(), q.value), ("rpc_duration_seconds", 76656.0));
        assert_eq!(got[18].value, 1.7560473e7);
        assert_eq!(got[19].name, "rpc_duration_seconds_count");
        assert_eq!(parse_lenient(DOCS_EXAMPLE), (got, vec![]));
    }

    #[test]
    fn names_with_colons_are_kept() {
        let s = one("job:http_requests:rate5m{job=\"api\"} 3\n");
        assert_eq!(s.name, "job:http_requests:rate5m");
        assert_eq!(one(":leading 1").name, ":leading");
        assert_eq!(one("_x 1").name, "_x");
    }

    #[test]
    fn label_values_with_escapes_commas_braces_and_unicode() {
        let s = one(r#"m{a="x,y", b="}{", c="k=v", d="q\"uo\\te\nnl", e=" sp ace ", f="ünï😀"} 1"#);
        assert_eq!(s.labels.get("a"), Some("x,y"));
        assert_eq!(s.labels.get("b"), Some("}{"));
        assert_eq!(s.labels.get("c"), Some("k=v"));
        assert_eq!(s.labels.get("d"), Some("q\"uo\\te\nnl"));
        assert_eq!(s.labels.get("e"), Some(" sp ace "));
        assert_eq!(s.labels.get("f"), Some("ünï😀"));
    }

    #[test]
    fn braces_trailing_comma_whitespace_and_crlf() {
        assert_eq!(one("m{} 1").labels, Labels::new());
        assert_eq!(one("m{a=\"1\",} 1").labels, l(&[("a", "1")]));
        assert_eq!(
            one("m { a = \"1\" , b=\"2\" , } 1").labels,
            l(&[("a", "1"), ("b", "2")])
        );
        assert_eq!(one("m{a=\"1\"}2").value, 2.0); // no blank needed after '}'
        assert_eq!(one("\t m \t 2 \t 5 \t").timestamp_ms, Some(5));
        let got = parse_strict("# TYPE a gauge\r\na 1\r\n\r\nb{x=\"y\"} 2 7\r\n").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].labels.get("x"), got[1].timestamp_ms), (Some("y"), Some(7)));
        // An empty value means "no label", as in Prometheus.
        assert_eq!(one("m{a=\"\",b=\"1\"} 1").labels, l(&[("b", "1")]));
    }

    #[test]
    fn help_type_and_comments() {
        let body = "# HELP m Some help with \\n escapes and \"quotes\"\n# HELP m\n# TYPE m counter\n\
                    # TYPE m\tgauge \n#HELP whatever\n# help lower case is a comment\n# just a comment\n\
                    #\n# HELP\n# TYPE\nm 1\n";
        assert_eq!(parse_strict(body).unwrap().len(), 1);
        for t in METRIC_TYPES {
            assert!(parse_strict(&format!("# TYPE m {t}\n")).is_ok(), "{t}");
        }
        let e = err("m 1\n# TYPE m countr\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("invalid metric type \"countr\""), "{e}");
        assert!(err("# TYPE m\n").message.contains("invalid metric type \"\""));
        assert!(err("# TYPE m Counter\n").message.contains("invalid metric type"));
        assert!(
            err("# HELP 0m text\n")
                .message
                .contains("expected a metric name after # HELP")
        );
        assert!(err("# TYPE m-x gauge\n").message.contains("invalid character '-'"));
    }

    #[test]
    fn values_and_timestamps() {
        for (text, want) in [
            ("1", 1.0),
            ("-1.5e3", -1500.0),
            ("1E-2", 0.01),
            (".5", 0.5),
            ("5.", 5.0),
            ("+3", 3.0),
            ("-0", -0.0),
            ("+Inf", f64::INFINITY),
            ("Inf", f64::INFINITY),
            ("inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("-infinity", f64::NEG_INFINITY),
            ("1e-400", 0.0),
        ] {
            assert_eq!(one(&format!("m {text}")).value, want, "{text}");
        }
        for nan in ["NaN", "nan", "NAN"] {
            let v = one(&format!("m {nan}")).value;
            assert!(v.is_nan() && !crate::series::is_stale_marker(v));
        }
        for bad in [
            "+NaN", "-nan", "1e400", "0x10", "0x1p3", "1_000", "1,5", "one", "1e", ".", "-", "--1", "Infx",
        ] {
            let e = err(&format!("m {bad}"));
            assert!(
                e.message.starts_with(&format!("invalid value {bad:?} for m")),
                "{bad}: {e}"
            );
        }
        assert_eq!(one("m 1 0").timestamp_ms, Some(0));
        assert_eq!(one("m 1 +12").timestamp_ms, Some(12));
        assert_eq!(one("m 1 -12").timestamp_ms, Some(-12));
        assert_eq!(one("m 1 9223372036854775807").timestamp_ms, Some(i64::MAX));
        for bad in ["9223372036854775808", "1.5", "1e3", "12ms", "-", "now"] {
            let e = err(&format!("m 1 {bad}"));
            assert!(
                e.message.starts_with(&format!("invalid timestamp {bad:?}")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn each_error_kind_names_its_line() {
        let cases: &[(&str, &str)] = &[
            ("0bad 1", "invalid metric name"),
            ("m-x 1", "invalid character '-' in metric name \"m-x\""),
            ("{a=\"b\"} 1", "missing metric name before '{'"),
            ("m{a=\"1\",a=\"2\"} 1", "duplicate label name \"a\""),
            ("m{a=\"\",a=\"2\"} 1", "duplicate label name \"a\""),
            ("m{a=\"1} 1", "unterminated label value"),
            ("m{a=\"1\\", "unterminated label value"),
            ("m{a=\"1\\t\"} 1", "invalid escape \\t in label value"),
            ("m{a=\"1\"", "unterminated label set of m"),
            (
                "m{a=\"1\" b=\"2\"} 1",
                "expected ',' or '}' after the value of label \"a\"",
            ),
            ("m{,} 1", "expected a label name in m, found ','"),
            ("m{0a=\"1\"} 1", "expected a label name in m, found '0'"),
            ("m{a:b=\"1\"} 1", "expected '=' after label name \"a\""),
            ("m{\"a\"=\"1\"} 1", "quoted label names are not supported"),
            ("m{a=1} 1", "expected a double-quoted value for label \"a\""),
            ("m{__name__=\"x\"} 1", "label __name__ is not allowed"),
            ("m", "missing value for m"),
            ("m{a=\"1\"}   ", "missing value for m"),
            ("m 1 2 3", "unexpected text \"3\" after the timestamp of m"),
            ("m 1 2 # comment", "unexpected text \"# comment\" after the timestamp"),
        ];
        for (bad, want) in cases {
            let body = format!("ok 1\n\n{bad}\nok2 2\n");
            let e = err(&body);
            assert_eq!(e.line, 3, "{bad}: {e}");
            assert!(e.message.contains(want), "{bad}: got {:?}, want {want:?}", e.message);
            // Lenient mode keeps the lines around it.
            let (samples, errors) = parse_lenient(&body);
            assert_eq!(
                samples.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
                ["ok", "ok2"]
            );
            assert_eq!(errors, vec![e]);
        }
    }

    #[test]
    fn lenient_keeps_the_rest_and_strict_stops_at_the_first_error() {
        let body = "a 1\nb{ 2\nc 3\nd 1 2 x\ne 5\n";
        let (samples, errors) = parse_lenient(body);
        assert_eq!(
            samples.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["a", "c", "e"]
        );
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(parse_strict(body).unwrap_err(), errors[0]);
        assert_eq!(errors[0].to_string(), format!("line 2: {}", errors[0].message));
    }

    #[test]
    fn duplicate_series() {
        // Same series: label order, blanks and empty values do not matter; timestamps neither.
        let body = "m{a=\"1\",b=\"2\"} 1\nm{b=\"2\", a=\"1\",c=\"\"} 2 100\nm{a=\"1\"} 3\nm{b=\"2\",a=\"1\"} 4\n";
        let (samples, errors) = parse_lenient(body);
        assert_eq!(samples.iter().map(|s| s.value).collect::<Vec<_>>(), [1.0, 3.0]);
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 4]);
        assert!(
            errors[0]
                .message
                .contains("duplicate series m{a=\"1\", b=\"2\"} (first on line 1)"),
            "{}",
            errors[0]
        );
        assert_eq!(parse_strict(body).unwrap_err(), errors[0]);
        // Different names are different series.
        assert_eq!(parse_strict("a 1\nb 1\na{x=\"y\"} 1\n").unwrap().len(), 3);
    }

    #[test]
    fn seen_series_handles_hash_collisions() {
        // `same` answering false stands in for a different series with the same hash.
        let mut seen = SeenSeries::default();
        let (a, b) = (l(&[("x", "1")]), l(&[("x", "2")]));
        assert_eq!(seen.first_or_insert("m", &a, None, 0, |_| unreachable!()), None);
        assert_eq!(seen.first_or_insert("m", &a, None, 1, |j| j == 0), Some(0));
        assert_eq!(seen.first_or_insert("m", &a, None, 2, |_| false), None); // spilled
        assert_eq!(seen.first_or_insert("m", &a, None, 3, |_| false), Some(2));
        assert_eq!(seen.first_or_insert("m", &b, None, 4, |_| unreachable!()), None);
        assert_eq!(seen.first_or_insert("m", &b, Some(None), 5, |_| unreachable!()), None);
        assert_eq!(
            seen.first_or_insert("m", &b, Some(Some(0)), 6, |_| unreachable!()),
            None
        );
        assert_eq!(seen.first_or_insert("m", &b, Some(Some(0)), 7, |j| j == 6), Some(6));
    }

    #[test]
    fn long_lines_are_errors_not_panics() {
        let long = format!("m{{a=\"{}\"}} 1", "x".repeat(MAX_LINE_BYTES));
        let body = format!("a 1\n{long}\nb 2");
        let (samples, errors) = parse_lenient(&body);
        assert_eq!(samples.len(), 2);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        assert!(
            errors[0].message.contains("more than the 65536 allowed"),
            "{}",
            errors[0]
        );
        // Just under the limit is fine, however many labels it holds.
        let mut many = String::from("m{");
        let mut i = 0;
        while many.len() < MAX_LINE_BYTES - 40 {
            many.push_str(&format!("l{i}=\"v\","));
            i += 1;
        }
        many.push_str("} 1");
        assert_eq!(one(&many).labels.len(), i);
    }

    #[test]
    fn empty_and_comment_only_bodies() {
        assert_eq!(parse_strict("").unwrap(), vec![]);
        assert_eq!(parse_strict("\n\n  \n# x\n").unwrap(), vec![]);
        assert_eq!(parse_lenient("\r\n"), (vec![], vec![]));
    }
}
