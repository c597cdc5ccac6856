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
}

impl Diagnostic {
    /// An error at `file:line:column`.
    pub fn error(
        file: &str,
        line: u64,
        column: u64,
        code: &'static str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: file.to_string(),
            line,
            column,
            severity: Severity::Error,
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning at `file:line:column`.
    pub fn warning(
        file: &str,
        line: u64,
        column: u64,
        code: &'static str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, line, column, code, message)
        }
    }

    /// The same diagnostic with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }
}
