//! Every structural error of a file, not only the first: serde-saphyr stops at the first
//! error it meets, so when the typed parse of a file fails, the file is parsed again into
//! a generic located tree and walked against its kind's JSON Schema (the one generated from
//! the same types), reporting each unknown key (with "did you mean"), missing key and value
//! of the wrong type. Only failing files take this path: a valid file costs nothing more.
//!
//! The walk is conservative: where the schema leaves a choice it cannot make (several
//! alternatives of the same shape), it stops looking deeper rather than guess, and value
//! checks the types make themselves (durations, regexes) stay with the typed parse.

use std::sync::OnceLock;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use super::load::FileKind;
use crate::diag::Diagnostic;

/// A YAML node with the 1-based line and column it starts at.
struct Node {
    line: u64,
    column: u64,
    kind: Kind,
}

enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Kind {
    /// The JSON Schema type names this node satisfies.
    fn admits(&self, ty: &str) -> bool {
        match (self, ty) {
            (Kind::Null, "null") => true,
            // Strings are read from any scalar, as tocsin's string types do.
            (Kind::Bool | Kind::Int | Kind::Float | Kind::Str(_), "string") => true,
            (Kind::Bool, "boolean") => true,
            (Kind::Int, "integer" | "number") | (Kind::Float, "number") => true,
            (Kind::Seq(_), "array") | (Kind::Map(_), "object") => true,
            _ => false,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Kind::Null => "nothing (null)",
            Kind::Bool => "a boolean",
            Kind::Int => "an integer",
            Kind::Float => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        let spanned = Spanned::<Kind>::deserialize(deserializer)?;
        Ok(Node {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Kind, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Bool)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Int)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Int)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Kind, E> {
        Ok(Kind::Int)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Kind, E> {
        Ok(Kind::Int)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::Float)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Kind::Map(entries))
    }
}

/// The schema of each kind, generated once.
fn schema_of(kind: FileKind) -> &'static Value {
    static SCHEMAS: OnceLock<Vec<Value>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| FileKind::ALL.into_iter().map(super::schema).collect());
    let index = FileKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    &all[index]
}

/// Every unknown key, missing key and wrongly typed value of `text` as a file of `kind`.
/// Empty when the text does not parse as YAML at all (the typed parse reports that).
pub(super) fn structural_errors(
    path: &str,
    text: &str,
    kind: FileKind,
    options: serde_saphyr::Options,
) -> Vec<Diagnostic> {
    let Ok(root) = serde_saphyr::from_str_with_options::<Node>(text, options) else {
        return Vec::new();
    };
    let schema = schema_of(kind);
    let mut walk = Walk {
        path,
        root: schema,
        diags: Vec::new(),
    };
    walk.node(&root, schema, 0);
    walk.diags
}

struct Walk<'a> {
    path: &'a str,
    root: &'a Value,
    diags: Vec<Diagnostic>,
}

/// Deeper than any tocsin file nests (and than the parser's depth limit).
const MAX_DEPTH: usize = 64;

impl<'a> Walk<'a> {
    /// `schema` with its `$ref` followed.
    fn resolve(&self, schema: &'a Value) -> &'a Value {
        let mut s = schema;
        for _ in 0..8 {
            let Some(r) = s.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let name = r.rsplit('/').next().unwrap_or("");
            match self.root.get("definitions").and_then(|d| d.get(name)) {
                Some(target) => s = target,
                None => break,
            }
        }
        s
    }

    /// Whether `schema`'s own `type` (absent: anything) admits `node`.
    fn type_admits(schema: &Value, node: &Node) -> bool {
        match schema.get("type") {
            Some(Value::String(t)) => node.kind.admits(t),
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(|t| node.kind.admits(t)),
            _ => true,
        }
    }

    fn error(&mut self, node: &Node, code: &'static str, message: String) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::error(self.path, node.line, node.column, code, message));
        self.diags.last_mut().expect("just pushed")
    }

    fn node(&mut self, node: &Node, schema: &'a Value, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let schema = self.resolve(schema);
        if schema.get("anyOf").or_else(|| schema.get("oneOf")).is_some() {
            let mut alternatives = Vec::new();
            self.flatten(schema, &mut alternatives, 0);
            let fitting: Vec<&'a Value> = alternatives
                .iter()
                .copied()
                .filter(|a| Self::type_admits(a, node))
                .collect();
            // Enumerations (one `const` per documented variant) are told apart by value.
            let consts: Vec<&str> = fitting
                .iter()
                .filter_map(|a| a.get("const").and_then(Value::as_str))
                .collect();
            if let Kind::Str(s) = &node.kind
                && !consts.is_empty()
                && consts.len() == fitting.len()
            {
                if !consts.contains(&s.as_str()) {
                    self.unknown_value(node, s, &consts);
                }
                return;
            }
            match fitting.as_slice() {
                [] if alternatives.iter().all(|a| a.get("type").is_some()) => {
                    let expected = Self::expected(alternatives.iter().copied());
                    let found = node.kind.name();
                    self.error(node, "invalid-type", format!("found {found}, expected {expected}"));
                }
                [one] => self.node(node, one, depth + 1),
                // No alternative or several of the same shape: the typed parse decides.
                _ => {}
            }
            return;
        }
        if !Self::type_admits(schema, node) {
            let expected = Self::expected(std::iter::once(schema));
            let found = node.kind.name();
            self.error(node, "invalid-type", format!("found {found}, expected {expected}"));
            return;
        }
        match &node.kind {
            Kind::Map(entries) => self.mapping(node, entries, schema, depth),
            Kind::Seq(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for item in items {
                        self.node(item, item_schema, depth + 1);
                    }
                }
            }
            Kind::Str(s) => {
                if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
                    let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                    if !names.is_empty() && !names.contains(&s.as_str()) {
                        self.unknown_value(node, s, &names);
                    }
                }
            }
            _ => {}
        }
    }

    /// The alternatives of `schema` (`anyOf`/`oneOf`, nested ones included), resolved.
    fn flatten(&self, schema: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
        let schema = self.resolve(schema);
        match schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)
        {
            Some(alternatives) if depth < 8 => {
                for a in alternatives {
                    self.flatten(a, out, depth + 1);
                }
            }
            _ => out.push(schema),
        }
    }

    fn unknown_value(&mut self, node: &Node, given: &str, allowed: &[&str]) {
        let hint = match super::load::suggest(given, allowed) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("expected one of: {}", super::load::quoted_list(allowed)),
        };
        let d = self.error(node, "invalid-value", format!("unknown value `{given}`"));
        d.hint = Some(hint);
    }

    fn mapping(&mut self, node: &Node, entries: &[(Node, Node)], schema: &'a Value, depth: usize) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let names: Vec<&str> = properties
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for (key, value) in entries {
            let Kind::Str(name) = &key.kind else { continue };
            if name == "<<" {
                continue;
            }
            match (properties.and_then(|p| p.get(name)), additional) {
                (Some(s), _) => self.node(value, s, depth + 1),
                (None, Some(Value::Bool(false))) => {
                    let hint = match super::load::suggest(name, &names) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None if names.is_empty() => "this mapping takes no keys".to_string(),
                        None => format!("expected one of: {}", super::load::quoted_list(&names)),
                    };
                    let d = self.error(key, "unknown-key", format!("unknown key `{name}`"));
                    d.hint = Some(hint);
                }
                (None, Some(s @ Value::Object(_))) => self.node(value, s, depth + 1),
                _ => {}
            }
        }
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let Some(field) = required.as_str() else { continue };
            let present = entries
                .iter()
                .any(|(k, _)| matches!(&k.kind, Kind::Str(n) if n == field));
            if !present {
                let d = self.error(node, "missing-key", format!("missing key `{field}`"));
                d.hint = Some(format!("add `{field}:` here"));
            }
        }
    }

    /// The types a schema list admits, in words.
    fn expected(schemas: impl Iterator<Item = &'a Value>) -> String {
        let mut words: Vec<&str> = Vec::new();
        for s in schemas {
            let types: Vec<&str> = match s.get("type") {
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for t in types {
                let w = match t {
                    "object" => "a mapping",
                    "array" => "a list",
                    "string" => "a string",
                    "integer" => "an integer",
                    "number" => "a number",
                    "boolean" => "a boolean",
                    _ => continue,
                };
                if !words.contains(&w) {
                    words.push(w);
                }
            }
        }
        match words.as_slice() {
            [] => "something else".to_string(),
            [one] => (*one).to_string(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, detect_kind};

    /// The walk must not invent errors: on every valid file of the repository (which the
    /// typed parse accepts) it finds none, so the errors it adds to a failing file are real.
    #[test]
    fn valid_files_have_no_structural_errors() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let mut pending = vec![
            std::path::PathBuf::from(format!("{root}/tests/fixtures/config")),
            std::path::PathBuf::from(format!("{root}/examples")),
            std::path::PathBuf::from(format!("{root}/tests/spec")),
            std::path::PathBuf::from(format!("{root}/rules")),
            std::path::PathBuf::from(format!("{root}/receivers")),
        ];
        let mut checked = 0;
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if !path.ends_with("invalid") {
                        pending.push(path);
                    }
                    continue;
                }
                if !matches!(path.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let src = Source::from_text(&path.to_string_lossy(), text.clone()).unwrap();
                let Some(kind) = detect_kind(&src) else { continue };
                let mut opts = super::super::load::options();
                opts.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::AsString;
                let found = structural_errors(src.path(), &text, kind, opts);
                assert!(found.is_empty(), "{}: {found:#?}", path.display());
                checked += 1;
            }
        }
        assert!(checked >= 10, "only {checked} files checked");
    }
}
