//! Prometheus' Go templates in annotations into tocsin's (minijinja) templates.
//!
//! Handled: text, `{{ $value }}`, `{{ $labels.x }}` (and `.Value`, `.Labels.x`), the
//! `humanize`, `humanizePercentage`, `humanizeDuration`, `printf`, `toUpper`, `toLower` and
//! `title` functions, called or piped. tocsin's templates have no SI-prefix or duration
//! formatting, so the `humanize*` functions and `printf` become rounding: the result says
//! so (`approximate`), and the import reports it. Control structures (`if`, `range`,
//! `with`), `query` and variables other than these are refused with a reason.

/// `$value` printed as Go prints a float: whole numbers without a fraction.
const GO_VALUE: &str = "value | int if value is number and value == value | int else value";

/// A translated template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    /// The minijinja text.
    pub text: String,
    /// Whether some formatting was approximated (it renders differently from Prometheus).
    pub approximate: bool,
}

/// Translates Go template text.
pub fn translate(src: &str) -> Result<Template, String> {
    let mut out = String::new();
    let mut approximate = false;
    let mut rest = src;
    while let Some(open) = rest.find("{{") {
        text(&mut out, &rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("an unclosed `{{`".into());
        };
        let action = after[..close].trim_start_matches('-').trim_end_matches('-').trim();
        let (expr, approx) = pipeline(action)?;
        approximate |= approx;
        out.push_str("{{ ");
        out.push_str(&expr);
        out.push_str(" }}");
        rest = &after[close + 2..];
    }
    text(&mut out, rest);
    Ok(Template { text: out, approximate })
}

/// Literal text, with what minijinja would read as syntax escaped.
fn text(out: &mut String, t: &str) {
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '{' && matches!(chars.peek(), Some('%' | '#')) {
            let next = chars.next().unwrap_or('%');
            out.push_str(&format!("{{{{ \"{{{next}\" }}}}"));
        } else {
            out.push(c);
        }
    }
}

/// Splits a Go command into words, keeping quoted strings whole.
fn words(cmd: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = cmd.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut w = String::new();
        if c == '"' || c == '`' {
            chars.next();
            w.push('"');
            let mut closed = false;
            while let Some(d) = chars.next() {
                if d == '\\' && c == '"' {
                    if let Some(e) = chars.next() {
                        w.push('\\');
                        w.push(e);
                    }
                    continue;
                }
                if d == c {
                    closed = true;
                    break;
                }
                w.push(d);
            }
            if !closed {
                return Err("an unterminated string".into());
            }
            w.push('"');
        } else {
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() {
                    break;
                }
                w.push(d);
                chars.next();
            }
        }
        out.push(w);
    }
    Ok(out)
}

/// An operand: a variable or a string literal, as a minijinja expression.
fn operand(w: &str) -> Result<String, String> {
    if w.starts_with('"') {
        return Ok(w.to_string());
    }
    if w == "$value" || w == ".Value" {
        return Ok("value".into());
    }
    if w == "$labels" || w == ".Labels" {
        return Ok("labels".into());
    }
    for prefix in ["$labels.", ".Labels."] {
        if let Some(l) = w.strip_prefix(prefix)
            && !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Ok(format!("labels.{l}"));
        }
    }
    if w.parse::<f64>().is_ok() {
        return Ok(w.to_string());
    }
    Err(format!("the template value `{w}`"))
}

/// Applies a function to an argument (a minijinja expression); the bool is "approximated".
fn apply(func: &str, args: &[String], arg: String) -> Result<(String, bool), String> {
    Ok(match (func, args) {
        ("humanize", []) => (format!("{arg} | round(2)"), true),
        ("humanize1024", []) => (format!("{arg} | round(2)"), true),
        ("humanizePercentage", []) => (format!("({arg} * 100) | round(2) ~ \"%\""), true),
        ("humanizeDuration", []) => (format!("{arg} | round(2) ~ \"s\""), true),
        ("toUpper", []) => (format!("{arg} | upper"), false),
        ("toLower", []) => (format!("{arg} | lower"), false),
        ("title", []) => (format!("{arg} | title"), false),
        ("printf", [fmt]) => {
            let f = fmt.trim_matches('"');
            match f {
                "%s" | "%v" => (arg, false),
                "%d" => (format!("{arg} | int"), false),
                _ => {
                    let digits = f
                        .strip_prefix("%.")
                        .and_then(|r| r.strip_suffix('f').or_else(|| r.strip_suffix('g')))
                        .and_then(|n| n.parse::<u32>().ok());
                    match digits {
                        Some(n) => (format!("{arg} | round({n})"), true),
                        None => return Err(format!("the format `printf {fmt}`")),
                    }
                }
            }
        }
        (f, _) => return Err(format!("the template function `{f}`")),
    })
}

/// A Go pipeline `cmd | cmd | …` as one minijinja expression.
fn pipeline(action: &str) -> Result<(String, bool), String> {
    let mut approx = false;
    let mut value: Option<String> = None;
    for cmd in action.split('|') {
        let w = words(cmd)?;
        let Some((head, args)) = w.split_first() else {
            return Err("an empty template action".into());
        };
        value = Some(match value.take() {
            None if args.is_empty() => operand(head)?,
            None => {
                // A call: the last word is the argument, the others the function's own.
                let (last, own) = args.split_last().unwrap_or((head, &[]));
                let (v, a) = apply(head, own, format!("({})", operand(last)?))?;
                approx |= a;
                v
            }
            Some(prev) => {
                let (v, a) = apply(head, args, format!("({prev})"))?;
                approx |= a;
                v
            }
        });
    }
    // Go prints a whole float without a fraction (`75`), minijinja as `75.0`.
    let value = value.map(|v| if v == "value" { GO_VALUE.to_string() } else { v });
    value
        .map(|v| (v, approx))
        .ok_or_else(|| "an empty template action".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(src: &str) -> String {
        translate(src).unwrap_or_else(|e| panic!("{src}: {e}")).text
    }

    #[test]
    fn translates_values_labels_and_functions() {
        assert_eq!(
            t("at {{ $labels.instance }}: {{ $value }}"),
            format!("at {{{{ labels.instance }}}}: {{{{ {GO_VALUE} }}}}")
        );
        assert_eq!(t("{{ printf \"%.2f\" $value }}%"), "{{ (value) | round(2) }}%");
        assert_eq!(
            t("{{ $value | humanizePercentage }}"),
            "{{ ((value) * 100) | round(2) ~ \"%\" }}"
        );
        assert_eq!(t("{{ humanize $value }}"), "{{ (value) | round(2) }}");
        assert_eq!(t("{{- .Labels.job -}}"), "{{ labels.job }}");
        assert_eq!(t("{{ $labels.job | toUpper }}"), "{{ (labels.job) | upper }}");
        assert!(translate("{{ $value | humanize }}").unwrap().approximate);
        assert!(!translate("{{ $labels.x }}").unwrap().approximate);
        assert_eq!(t("plain {% text"), "plain {{ \"{%\" }} text");
    }

    #[test]
    fn refuses_control_structures_and_queries() {
        for src in [
            "{{ if gt $value 1.0 }}x{{ end }}",
            "{{ range query \"up\" }}{{ .Value }}{{ end }}",
            "{{ with $externalLabels }}{{ .cluster }}{{ end }}",
            "{{ $value",
            "{{ printf \"%x\" $value }}",
        ] {
            assert!(translate(src).is_err(), "{src}");
        }
    }
}
