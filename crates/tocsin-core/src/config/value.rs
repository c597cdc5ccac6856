//! Value types shared by every file kind: located values ([`Sp`]), durations ([`Dur`]), byte
//! sizes ([`ByteSize`]), environment-substituted strings ([`Text`]) and route matchers
//! ([`MatchValue`]).
//!
//! Each type deserializes with serde-saphyr and keeps the line and column of the YAML node it
//! came from, so that checks made after parsing can point at the offending value.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_saphyr::Spanned;

use super::env;

/// A value together with the 1-based line and column of the YAML node it was read from.
///
/// Line and column are 0 for values that did not come from a file (defaults). For a value
/// reached through a YAML alias the position is the alias' own, where the value is used.
#[derive(Clone, PartialEq)]
pub struct Sp<T> {
    /// The parsed value.
    pub value: T,
    line: u64,
    column: u64,
}

impl<T> Sp<T> {
    /// A value at `line:column` (0:0 for "not from a file").
    pub fn new(value: T, line: u64, column: u64) -> Sp<T> {
        Sp { value, line, column }
    }

    /// 1-based line of the value, 0 when unknown.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// 1-based column of the value, 0 when unknown.
    pub fn column(&self) -> u64 {
        self.column
    }

    /// The value without its position.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Sp<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Sp<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{}:{}", self.value, self.line, self.column)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<T>::deserialize(deserializer)?;
        Ok(Sp {
            value: spanned.value,
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        })
    }
}

impl<T: Serialize> Serialize for Sp<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A duration written the humantime way: `90s`, `5m`, `1h30m`, `30d`, `0s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parses `5m`, `1h30m`, `0s`; a bare `0` is accepted too, any other bare number is not.
    pub fn parse(text: &str) -> Result<Dur, String> {
        let trimmed = text.trim();
        if trimmed == "0" {
            return Ok(Dur(Duration::ZERO));
        }
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(format!(
                "`{trimmed}` has no unit: write e.g. `{trimmed}s` or `{trimmed}m`"
            ));
        }
        humantime::parse_duration(trimmed)
            .map(Dur)
            .map_err(|e| format!("`{trimmed}` is not a duration ({e}); write e.g. `90s`, `5m` or `1h30m`"))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurVisitor;

        impl Visitor<'_> for DurVisitor {
            type Value = Dur;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `90s`, `5m` or `1h30m`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Dur::parse(&v.to_string()).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                Dur::parse(&v.to_string()).map_err(E::custom)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                Dur::parse(&v.to_string()).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(DurVisitor)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration: a number and a unit (ns, us, ms, s, m, h, d, w), repeated, e.g. `90s`, `5m`, `1h30m`.",
            "pattern": "^\\s*(0|([0-9]+\\s*[a-zA-Zµ]+\\s*)+)$"
        })
    }
}

/// A size in bytes: a plain integer, or a number with a unit (`512KiB`, `1MiB`, `2MB`, `10kB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `1MiB`, `512 KiB`, `2MB`, `100B` or `1048576`; units are case-insensitive,
    /// `KiB`/`MiB`/`GiB` are powers of 1024 and `kB`/`MB`/`GB` powers of 1000.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let trimmed = text.trim();
        let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
        let (digits, unit) = trimmed.split_at(split);
        let bad = || format!("`{trimmed}` is not a size; write e.g. `1MiB`, `512KiB` or a number of bytes");
        let number: u64 = digits.parse().map_err(|_| bad())?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "mb" => 1_000_000,
            "mib" => 1 << 20,
            "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            _ => return Err(bad()),
        };
        number
            .checked_mul(factor)
            .map(ByteSize)
            .ok_or_else(|| format!("`{trimmed}` is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as `1MiB` or a number of bytes")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A size: a number of bytes, or a number with a unit (B, kB, KiB, MB, MiB, GB, GiB).",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^\\s*[0-9]+\\s*([kKmMgG]i?[bB]?|[bB])?\\s*$" }
            ]
        })
    }
}

/// A string from a receivers file or tocsin.yaml, after `${NAME}` substitution.
///
/// A value that contained a `${...}` reference is treated as a secret: `Debug`, `Display`
/// and `Serialize` show `<redacted>`; [`Text::expose`] gives the real value to the code that
/// needs it (an HTTP client, an SMTP login).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Text {
    value: String,
    secret: bool,
    line: u64,
    column: u64,
}

/// What a secret [`Text`] prints as.
pub const REDACTED: &str = "<redacted>";

impl Text {
    /// A literal (non-secret) value that did not come from a file, e.g. a default.
    pub fn plain(value: impl Into<String>) -> Text {
        Text {
            value: value.into(),
            secret: false,
            line: 0,
            column: 0,
        }
    }

    /// A value at `line:column`; `secret` when it came (partly) from the environment.
    pub fn new(value: impl Into<String>, secret: bool, line: u64, column: u64) -> Text {
        Text {
            value: value.into(),
            secret,
            line,
            column,
        }
    }

    /// The real value, secret or not. Call it only where the value is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Whether the value came (partly) from an environment variable.
    pub fn is_secret(&self) -> bool {
        self.secret
    }

    /// 1-based line of the value, 0 when it did not come from a file.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// 1-based column of the value, 0 when it did not come from a file.
    pub fn column(&self) -> u64 {
        self.column
    }

    /// What may be shown to a person: the value, or `<redacted>` for a secret.
    pub fn shown(&self) -> &str {
        if self.secret { REDACTED } else { &self.value }
    }

    /// Builds a located text from a raw file value, substituting `${...}` when a substitution
    /// context is active (see [`super::env`]).
    pub(crate) fn from_raw(raw: String, line: u64, column: u64) -> Text {
        let (value, secret) = env::substitute(&raw, line, column);
        Text {
            value,
            secret,
            line,
            column,
        }
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            f.write_str(REDACTED)
        } else {
            write!(f, "{:?}", self.value)
        }
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown())
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.shown())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<ScalarString>::deserialize(deserializer)?;
        Ok(Text::from_raw(
            spanned.value.0,
            spanned.referenced.line(),
            spanned.referenced.column(),
        ))
    }
}

impl JsonSchema for Text {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string" })
    }
}

/// Any YAML scalar read as its text: `warning`, `6m`, `500`, `true` all become strings, so
/// label values and expectations need no quoting.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ScalarString(pub String);

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

impl JsonSchema for ScalarString {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_string(ScalarVisitor).map(ScalarString)
    }
}

/// A route or inhibit matcher value: one string or a list of alternatives. A string starting
/// with `~` is a regex anchored at both ends; anything else matches exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchValue(pub Vec<Text>);

/// The two YAML shapes of a matcher, before the scalar one gets its position.
enum RawMatch {
    One(String),
    Any(Vec<Text>),
}

impl<'de> Deserialize<'de> for RawMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;

        impl<'de> Visitor<'de> for RawVisitor {
            type Value = RawMatch;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawMatch, E> {
                ScalarVisitor.visit_str(v).map(RawMatch::One)
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawMatch, E> {
                ScalarVisitor.visit_bool(v).map(RawMatch::One)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawMatch, E> {
                ScalarVisitor.visit_i64(v).map(RawMatch::One)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawMatch, E> {
                ScalarVisitor.visit_u64(v).map(RawMatch::One)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawMatch, E> {
                ScalarVisitor.visit_f64(v).map(RawMatch::One)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawMatch, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Text>()? {
                    items.push(item);
                }
                Ok(RawMatch::Any(items))
            }
        }

        deserializer.deserialize_any(RawVisitor)
    }
}

impl<'de> Deserialize<'de> for MatchValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<RawMatch>::deserialize(deserializer)?;
        Ok(match spanned.value {
            RawMatch::One(raw) => MatchValue(vec![Text::from_raw(
                raw,
                spanned.referenced.line(),
                spanned.referenced.column(),
            )]),
            RawMatch::Any(items) => MatchValue(items),
        })
    }
}

impl Serialize for MatchValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(serializer),
            many => many.serialize(serializer),
        }
    }
}

impl JsonSchema for MatchValue {
    fn schema_name() -> Cow<'static, str> {
        "MatchValue".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An exact value, a regex after `~` (anchored at both ends), or a list of such alternatives.",
            "anyOf": [
                { "type": ["string", "number", "boolean"] },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_the_humantime_way() {
        let secs = |t: &str| Dur::parse(t).map(|d| d.0.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("5m"), Ok(300));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("0s"), Ok(0));
        assert_eq!(secs("0"), Ok(0));
        assert!(secs("15").unwrap_err().contains("has no unit"));
        assert!(secs("soon").unwrap_err().contains("is not a duration"));
        assert!(secs("").is_err());
        assert_eq!(Dur(Duration::ZERO).to_string(), "0s");
        assert_eq!(Dur(Duration::from_secs(5400)).to_string(), "1h 30m");
    }

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(ByteSize::parse("1MiB"), Ok(ByteSize(1 << 20)));
        assert_eq!(ByteSize::parse("512 KiB"), Ok(ByteSize(512 << 10)));
        assert_eq!(ByteSize::parse("2MB"), Ok(ByteSize(2_000_000)));
        assert_eq!(ByteSize::parse("100"), Ok(ByteSize(100)));
        assert!(ByteSize::parse("1TiB").is_err());
        assert!(ByteSize::parse("MiB").is_err());
        assert!(ByteSize::parse("99999999999999999999GiB").is_err());
    }

    #[test]
    fn secret_text_is_redacted_everywhere_but_expose() {
        let secret = Text::new("hunter2", true, 1, 1);
        assert_eq!(
            format!("{secret:?}|{secret}|{}", secret.shown()),
            "<redacted>|<redacted>|<redacted>"
        );
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<redacted>\"");
        assert_eq!(secret.expose(), "hunter2");
        let plain = Text::plain("ops");
        assert_eq!(format!("{plain:?}|{plain}"), "\"ops\"|ops");
        assert_eq!(serde_json::to_string(&plain).unwrap(), "\"ops\"");
    }
}

/// Where the character `offset` (0-based, in characters) of a scalar's parsed value sits in
/// the YAML source, given the scalar's own 1-based `line` and `column` (as [`Sp`] and
/// [`Text`] keep them): so that an error inside an expression puts its caret on the
/// offending character, not at the start of the value.
///
/// Exact for plain, single-quoted and double-quoted scalars (escapes, `''`, line folding)
/// and for literal block scalars (`|`). For folded block scalars (`>`) and anything it does
/// not recognise (an alias, a position that is not in `text`) it gives the scalar's start.
pub fn scalar_position(text: &str, line: u64, column: u64, offset: usize) -> (u64, u64) {
    let start = (line, column);
    let Some(chars) = source_chars(text, line, column) else {
        return start;
    };
    // A block scalar's position is its first content line, below its `|` or `>` header.
    let positions = match block_header(text, line, column) {
        Some('|') => literal_block_value(&chars, column),
        Some(_) => return start,
        None => match chars.first().map(|c| c.0) {
            Some('\'') => flow_value(&chars[1..], Quote::Single),
            Some('"') => flow_value(&chars[1..], Quote::Double),
            Some('*' | '&' | '!') | None => return start,
            Some(_) => flow_value(&chars, Quote::Plain),
        },
    };
    positions.get(offset).copied().unwrap_or(start)
}

/// The source from `line:column` on, each character with its 1-based line and column.
fn source_chars(text: &str, line: u64, column: u64) -> Option<Vec<(char, (u64, u64))>> {
    let first = usize::try_from(line.checked_sub(1)?).ok()?;
    let skip = usize::try_from(column.checked_sub(1)?).ok()?;
    let mut out = Vec::new();
    for (i, l) in text.split('\n').enumerate().skip(first) {
        let l = l.strip_suffix('\r').unwrap_or(l);
        let from = if i == first { skip } else { 0 };
        if i == first && l.chars().count() <= from {
            return None;
        }
        out.extend(
            l.chars()
                .enumerate()
                .skip(from)
                .map(|(c, ch)| (ch, (i as u64 + 1, c as u64 + 1))),
        );
        out.push(('\n', (i as u64 + 1, l.chars().count() as u64 + 1)));
    }
    Some(out)
}

#[derive(Clone, Copy, PartialEq)]
enum Quote {
    Plain,
    Single,
    Double,
}

/// The source position of each character of a flow scalar's value (the opening quote
/// already skipped), following YAML's folding: a line break and the whitespace around it
/// become one space, or one newline per empty line.
fn flow_value(chars: &[(char, (u64, u64))], quote: Quote) -> Vec<(u64, u64)> {
    // Each value character's position, and whether it is literal whitespace that a line
    // break would trim (escaped whitespace is kept).
    let mut out: Vec<((u64, u64), bool)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (c, at) = chars[i];
        match (quote, c) {
            (Quote::Single, '\'') if chars.get(i + 1).is_some_and(|n| n.0 == '\'') => {
                out.push((at, false));
                i += 2;
                continue;
            }
            (Quote::Single, '\'') | (Quote::Double, '"') => break,
            (Quote::Plain, '#') if i > 0 && matches!(chars[i - 1].0, ' ' | '\t') => break,
            (Quote::Double, '\\') => {
                let Some(&(e, _)) = chars.get(i + 1) else { break };
                i += match e {
                    // An escaped line break joins the lines without a space.
                    '\n' => {
                        i += 2;
                        while chars.get(i).is_some_and(|c| matches!(c.0, ' ' | '\t')) {
                            i += 1;
                        }
                        continue;
                    }
                    'x' => 4,
                    'u' => 6,
                    'U' => 10,
                    _ => 2,
                };
                out.push((at, false));
                continue;
            }
            (_, '\n') => {
                while out.last().is_some_and(|(_, trimmable)| *trimmable) {
                    out.pop();
                }
                // Count the empty lines after this break; the next content ends the fold.
                let mut blank = 0;
                let mut j = i + 1;
                loop {
                    while chars.get(j).is_some_and(|c| matches!(c.0, ' ' | '\t')) {
                        j += 1;
                    }
                    if chars.get(j).is_some_and(|c| c.0 == '\n') {
                        blank += 1;
                        j += 1;
                    } else {
                        break;
                    }
                }
                if blank == 0 {
                    out.push((at, false));
                } else {
                    out.extend(std::iter::repeat_n((at, false), blank));
                }
                i = j;
                continue;
            }
            _ => out.push((at, matches!(c, ' ' | '\t'))),
        }
        i += 1;
    }
    out.into_iter().map(|(at, _)| at).collect()
}

/// `|` or `>` when the scalar at `line:column` is the content of a block scalar: it starts
/// its line, and the previous non-empty line ends with a block header (`|`, `>-`, `|2`...,
/// perhaps followed by a comment).
fn block_header(text: &str, line: u64, column: u64) -> Option<char> {
    let index = usize::try_from(line.checked_sub(1)?).ok()?;
    let lines: Vec<&str> = text.split('\n').collect();
    let own = lines.get(index)?;
    let indent = own.chars().take_while(|c| *c == ' ').count();
    if u64::try_from(indent).ok()? + 1 != column {
        return None;
    }
    let previous = lines[..index].iter().rev().find(|l| !l.trim().is_empty())?;
    let code = match previous.find(" #") {
        Some(at) => &previous[..at],
        None => previous,
    };
    let header = code.trim_end().rsplit([' ', '\t']).next()?;
    let indicator = header.chars().next().filter(|c| matches!(c, '|' | '>'))?;
    header[1..]
        .chars()
        .all(|c| matches!(c, '-' | '+' | '1'..='9'))
        .then_some(indicator)
}

/// The source position of each character of a literal block scalar (`|`, `|-`, `|+`) whose
/// content starts at `chars` (the first line's indentation, `column` - 1, already skipped):
/// its lines without that indentation, each followed by its newline.
fn literal_block_value(chars: &[(char, (u64, u64))], column: u64) -> Vec<(u64, u64)> {
    let indent = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut lines = chars.split_inclusive(|c| c.0 == '\n');
    if let Some(first) = lines.next() {
        out.extend(first.iter().map(|c| c.1));
    }
    for l in lines {
        let spaces = l.iter().take_while(|c| c.0 == ' ').count();
        let blank = l.iter().all(|c| matches!(c.0, ' ' | '\n'));
        if !blank && spaces < indent {
            break;
        }
        out.extend(l.iter().skip(indent.min(spaces)).map(|c| c.1));
    }
    out
}
