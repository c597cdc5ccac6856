//! Diagnostics: what `check`, `test` and reload report about user input.
//!
//! Owns the [`Diagnostic`] value (file, line, column, severity, code, message, hint) and its
//! renderings (text with the source line and a caret, JSON, GitHub annotations). It formats;
//! it never decides what is wrong, and never reads files itself (callers pass the source).

use serde::Serialize;

/// How bad a finding is: errors make `check` exit 1 and a reload fail; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Legal but suspicious.
    Warning,
    /// The input cannot be used.
    Error,
}

/// One finding about one place in one input file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Path of the file as the user named it.
    pub file: String,
    /// 1-based line; 0 when the finding concerns the whole file.
    pub line: u64,
    /// 1-based column; 0 when unknown.
    pub column: u64,
    /// Error or warning.
    pub severity: Severity,
    /// A short stable identifier, e.g. `yaml`, `unknown-key`, `expr`, `tier-order`.
    pub code: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For a finding inside a YAML scalar whose `line:column` is the scalar's start: the
    /// offending character's offset into the scalar's value (in characters). Whoever holds
    /// the source text moves `line:column` onto that character (`config::scalar_position`)
    /// and clears it; the renderings never read it.
    /// (32 bits: a file is at most a few MiB, and a wider field makes every `Result`
    /// carrying a diagnostic larger.)
    #[serde(skip)]
    pub value_offset: Option<u32>,
}

impl Diagnostic {
    /// An error at `file:line:column`.
    pub fn error(file: &str, line: u64, column: u64, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_string(),
            line,
            column,
            severity: Severity::Error,
            code,
            message: message.into(),
            hint: None,
            value_offset: None,
        }
    }

    /// A warning at `file:line:column`.
    pub fn warning(file: &str, line: u64, column: u64, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, line, column, code, message)
        }
    }

    /// The same diagnostic, about the character `offset` of the scalar value that starts at
    /// its position (see [`Diagnostic::value_offset`]).
    pub fn in_value(mut self, offset: usize) -> Diagnostic {
        self.value_offset = u32::try_from(offset).ok();
        self
    }

    /// The same diagnostic with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }
}

impl Severity {
    /// The lowercase name used in every rendering: `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Renders diagnostics for a terminal, without colours:
///
/// ```text
/// error[unknown-key]: unknown key `severty`
///  --> rules/memory.yaml:6:9
///   |
/// 6 |         severty: high
///   |         ^
///   = hint: did you mean `severity`?
/// ```
///
/// `source_of` returns a file's text by path; when it returns `None` (or the line does not
/// exist) the snippet is left out. Blocks are separated by an empty line.
pub fn render_text(diags: &[Diagnostic], source_of: &dyn Fn(&str) -> Option<String>) -> String {
    let blocks: Vec<String> = diags.iter().map(|d| render_one_text(d, source_of)).collect();
    blocks.join("\n")
}

fn render_one_text(d: &Diagnostic, source_of: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = format!("{}[{}]: {}\n", d.severity.as_str(), d.code, d.message);
    let snippet = if d.line == 0 {
        None
    } else {
        source_of(&d.file).and_then(|text| {
            let index = usize::try_from(d.line - 1).ok()?;
            text.lines().nth(index).map(str::to_string)
        })
    };
    let gutter = if snippet.is_some() { d.line.to_string().len() } else { 0 };
    let pad = " ".repeat(gutter);
    match (d.line, d.column) {
        (0, _) => out.push_str(&format!("{pad} --> {}\n", d.file)),
        (line, 0) => out.push_str(&format!("{pad} --> {}:{line}\n", d.file)),
        (line, column) => out.push_str(&format!("{pad} --> {}:{line}:{column}\n", d.file)),
    }
    if let Some(line_text) = snippet {
        // Tabs would misplace the caret, so they are shown as four spaces.
        let shown = line_text.trim_end_matches('\r').replace('\t', "    ");
        out.push_str(&format!("{pad} |\n{} | {}\n", d.line, shown.trim_end()));
        if d.column > 0 {
            let before: usize = line_text
                .chars()
                .take(usize::try_from(d.column - 1).unwrap_or(usize::MAX))
                .map(|c| if c == '\t' { 4 } else { 1 })
                .sum();
            out.push_str(&format!("{pad} | {}^\n", " ".repeat(before)));
        }
    }
    if let Some(hint) = &d.hint {
        out.push_str(&format!("{pad} = hint: {hint}\n"));
    }
    out
}

/// Renders diagnostics as a JSON array of
/// `{file, line, column, severity, code, message, hint}` (`hint` is `null` when absent),
/// pretty-printed, with a trailing newline.
pub fn render_json(diags: &[Diagnostic]) -> String {
    /// The stable JSON shape: every key always present, in this order.
    #[derive(Serialize)]
    struct JsonDiagnostic<'a> {
        file: &'a str,
        line: u64,
        column: u64,
        severity: Severity,
        code: &'a str,
        message: &'a str,
        hint: Option<&'a str>,
    }
    let items: Vec<JsonDiagnostic<'_>> = diags
        .iter()
        .map(|d| JsonDiagnostic {
            file: &d.file,
            line: d.line,
            column: d.column,
            severity: d.severity,
            code: d.code,
            message: &d.message,
            hint: d.hint.as_deref(),
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string());
    out.push('\n');
    out
}

/// Renders diagnostics as GitHub Actions workflow commands, one per line:
/// `::error file=F,line=L,col=C,title=CODE::message` (or `::warning`), the hint on a second
/// line of the message. Line and column are left out when unknown (0). Values are escaped
/// as GitHub requires: `%`, CR and LF everywhere, and also `:` and `,` in properties.
pub fn render_github(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let mut props = format!("file={}", escape_github_property(&d.file));
        if d.line > 0 {
            props.push_str(&format!(",line={}", d.line));
            if d.column > 0 {
                props.push_str(&format!(",col={}", d.column));
            }
        }
        props.push_str(&format!(",title={}", escape_github_property(d.code)));
        let mut message = d.message.clone();
        if let Some(hint) = &d.hint {
            message.push_str(&format!("\nhint: {hint}"));
        }
        out.push_str(&format!(
            "::{} {props}::{}\n",
            d.severity.as_str(),
            escape_github_data(&message)
        ));
    }
    out
}

/// Escapes a workflow command's message.
fn escape_github_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn escape_github_property(text: &str) -> String {
    escape_github_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Diagnostic> {
        vec![
            Diagnostic::error("rules/memory.yaml", 3, 9, "unknown-key", "unknown key `severty`")
                .with_hint("did you mean `severity`?"),
            Diagnostic::warning("rules/memory.yaml", 0, 0, "kind", "whole file"),
        ]
    }

    fn source_of(path: &str) -> Option<String> {
        (path == "rules/memory.yaml").then(|| "groups:\n  - name: x\n        severty: high\n".to_string())
    }

    #[test]
    fn text_quotes_the_line_with_a_caret() {
        let expected = "\
error[unknown-key]: unknown key `severty`
  --> rules/memory.yaml:3:9
  |
3 |         severty: high
  |         ^
  = hint: did you mean `severity`?

warning[kind]: whole file
 --> rules/memory.yaml
";
        assert_eq!(render_text(&sample(), &source_of), expected);
    }

    #[test]
    fn text_without_source_has_no_snippet() {
        let diags = [Diagnostic::error("gone.yaml", 12, 0, "yaml", "bad")];
        assert_eq!(render_text(&diags, &|_| None), "error[yaml]: bad\n --> gone.yaml:12\n");
    }

    #[test]
    fn text_caret_accounts_for_tabs() {
        let diags = [Diagnostic::error("t.yaml", 1, 4, "yaml", "bad")];
        let out = render_text(&diags, &|_| Some("a:\tb\n".to_string()));
        assert!(out.ends_with("1 | a:    b\n  |       ^\n"), "{out}");
    }

    #[test]
    fn json_lists_every_field() {
        let expected = r#"[
  {
    "file": "rules/memory.yaml",
    "line": 3,
    "column": 9,
    "severity": "error",
    "code": "unknown-key",
    "message": "unknown key `severty`",
    "hint": "did you mean `severity`?"
  },
  {
    "file": "rules/memory.yaml",
    "line": 0,
    "column": 0,
    "severity": "warning",
    "code": "kind",
    "message": "whole file",
    "hint": null
  }
]
"#;
        assert_eq!(render_json(&sample()), expected);
        assert_eq!(render_json(&[]), "[]\n");
    }

    #[test]
    fn github_commands_are_escaped() {
        let expected = "::error file=rules/memory.yaml,line=3,col=9,title=unknown-key::unknown key `severty`%0Ahint: did you mean `severity`?\n\
                        ::warning file=rules/memory.yaml,title=kind::whole file\n";
        assert_eq!(render_github(&sample()), expected);
        let nasty = [Diagnostic::error("a,b:c%.yaml", 1, 2, "x", "100% bad\r\nreally")];
        assert_eq!(
            render_github(&nasty),
            "::error file=a%2Cb%3Ac%25.yaml,line=1,col=2,title=x::100%25 bad%0D%0Areally\n"
        );
    }
}
