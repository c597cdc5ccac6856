//! `${NAME}` / `${NAME:-default}` substitution in receivers files and tocsin.yaml.
//!
//! Sans-IO: the environment is a function the caller passes in; this module never reads the
//! process environment. Because serde's `Deserialize` cannot take arguments, the loader runs
//! deserialization inside [`with_env`], which installs a thread-local context holding the
//! variables the file mentions (resolved before parsing) and collecting located errors;
//! [`super::Text`] consults it while it is being deserialized.

use std::cell::RefCell;
use std::collections::HashMap;

/// A substitution that failed, at the position of the string value that held it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EnvError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

struct Context {
    /// Every name referenced in the file, with its value in the environment.
    vars: HashMap<String, Option<String>>,
    errors: Vec<EnvError>,
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Removes the context even when deserialization panics, so a later parse of a rules file on
/// the same thread never substitutes.
struct Reset;

impl Drop for Reset {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.borrow_mut().take());
    }
}

/// Runs `parse` with substitution enabled for `source`, returning its result and the
/// substitution errors met on the way.
pub(crate) fn with_env<R>(
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
    parse: impl FnOnce() -> R,
) -> (R, Vec<EnvError>) {
    let mut vars = HashMap::new();
    for name in referenced_names(source) {
        vars.entry(name.to_string()).or_insert_with(|| env(name));
    }
    CONTEXT.with(|c| {
        *c.borrow_mut() = Some(Context {
            vars,
            errors: Vec::new(),
        })
    });
    let reset = Reset;
    let result = parse();
    let errors = CONTEXT.with(|c| c.borrow_mut().as_mut().map(|ctx| std::mem::take(&mut ctx.errors)));
    drop(reset);
    (result, errors.unwrap_or_default())
}

/// How many substitution errors the active context holds, to [`forget_since`] later.
pub(crate) fn errors_so_far() -> usize {
    CONTEXT.with(|c| c.borrow().as_ref().map_or(0, |ctx| ctx.errors.len()))
}

/// Drops the errors recorded after [`errors_so_far`] returned `mark`: a parse that was
/// abandoned and is run again would otherwise report them twice.
pub(crate) fn forget_since(mark: usize) {
    CONTEXT.with(|c| {
        if let Some(ctx) = c.borrow_mut().as_mut() {
            ctx.errors.truncate(mark);
        }
    });
}

/// Every `NAME` that appears as `${NAME` in `source` (a superset of what the values use,
/// since comments and keys are scanned too; that only costs a few lookups).
fn referenced_names(source: &str) -> impl Iterator<Item = &str> {
    source.match_indices("${").filter_map(|(at, _)| {
        let rest = &source[at + 2..];
        let len = name_len(rest);
        (len > 0).then(|| &rest[..len])
    })
}

/// Length of the variable name at the start of `s`: `[A-Za-z_][A-Za-z0-9_]*`.
fn name_len(s: &str) -> usize {
    let mut len = 0;
    for (i, b) in s.bytes().enumerate() {
        let ok = b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + 1;
    }
    len
}

/// Substitutes `raw` when a context is active; returns the value and whether it referenced
/// the environment (and so is a secret). Errors are recorded in the context at `line:column`.
/// `$${` stands for a literal `${`.
pub(crate) fn substitute(raw: &str, line: u64, column: u64) -> (String, bool) {
    CONTEXT.with(|c| {
        let mut guard = c.borrow_mut();
        let Some(ctx) = guard.as_mut() else {
            return (raw.to_string(), false);
        };
        if !raw.contains("${") {
            return (raw.to_string(), false);
        }
        let mut out = String::with_capacity(raw.len());
        let mut secret = false;
        let mut rest = raw;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
                continue;
            }
            let Some(inner) = tail.strip_prefix("${") else {
                out.push('$');
                rest = &tail[1..];
                continue;
            };
            secret = true;
            let Some(close) = inner.find('}') else {
                ctx.errors.push(EnvError {
                    line,
                    column,
                    message: "unterminated `${`: write `${NAME}` or `${NAME:-default}` (`$${` for a literal `${`)"
                        .to_string(),
                });
                return (out, secret);
            };
            let body = &inner[..close];
            rest = &inner[close + 1..];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if name.is_empty() || name_len(name) != name.len() {
                ctx.errors.push(EnvError {
                    line,
                    column,
                    message: format!(
                        "`${{{body}}}` is not a valid reference: write `${{NAME}}` or `${{NAME:-default}}`"
                    ),
                });
                continue;
            }
            // `:-` follows the shell: the default applies when the variable is unset or empty.
            let value = ctx
                .vars
                .get(name)
                .cloned()
                .flatten()
                .filter(|v| default.is_none() || !v.is_empty());
            match (value, default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => ctx.errors.push(EnvError {
                    line,
                    column,
                    message: format!("environment variable `{name}` is not set"),
                }),
            }
        }
        out.push_str(rest);
        (out, secret)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(raw: &str) -> ((String, bool), Vec<EnvError>) {
        with_env(raw, &env, || substitute(raw, 3, 7))
    }

    #[test]
    fn substitutes_and_marks_secret() {
        assert_eq!(run("Bearer ${TOKEN}").0, ("Bearer s3cret".to_string(), true));
        assert_eq!(run("${NOPE:-dflt}").0, ("dflt".to_string(), true));
        assert_eq!(run("${EMPTY:-dflt}").0, ("dflt".to_string(), true));
        assert_eq!(run("${EMPTY}").0, (String::new(), true));
        assert_eq!(run("a $b $${TOKEN} c").0, ("a $b ${TOKEN} c".to_string(), false));
        assert_eq!(run("plain").0, ("plain".to_string(), false));
    }

    #[test]
    fn missing_and_malformed_are_located_errors() {
        let (_, errors) = run("x ${NOPE} y");
        assert_eq!(
            errors,
            vec![EnvError {
                line: 3,
                column: 7,
                message: "environment variable `NOPE` is not set".into()
            }]
        );
        assert!(run("${TOKEN").1[0].message.contains("unterminated"));
        assert!(run("${1X}").1[0].message.contains("not a valid reference"));
    }

    #[test]
    fn without_context_nothing_is_substituted() {
        assert_eq!(substitute("${TOKEN}", 1, 1), ("${TOKEN}".to_string(), false));
    }
}
