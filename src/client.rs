//! `tocsin silence add|list|expire` and `tocsin alerts`: a client of a running daemon's HTTP
//! API (docs/api.md), with amtool's spellings (docs/cli.md).
//!
//! Everything the user typed is checked before any request (a matcher, a regex, a time, the
//! URL), so a typo never reaches the daemon. The daemon decides the rest: its `{"error": …}`
//! message is printed as it is. Exit codes: 0 done, 1 the daemon could not be reached or
//! refused, 2 an unusable invocation (clap's usage errors, which includes every value parser
//! here).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::daemon::now;
use crate::message::SilenceMatcher;
use crate::series::Timestamp;
use crate::time::rfc3339_millis;

/// How long one request may take, connecting included: a daemon that accepts but never
/// answers must not hang a shell script.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the daemon is and how to authenticate: the flags every API command takes.
#[derive(Args, Debug, Clone)]
pub struct Api {
    /// The daemon's API base URL.
    #[arg(
        long,
        global = true,
        env = "TOCSIN_URL",
        default_value = "http://127.0.0.1:9470",
        value_parser = parse_url
    )]
    url: Url,
    /// The daemon's `api_token`, for commands that change something.
    #[arg(long, global = true, env = "TOCSIN_API_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// How a listing is printed.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The daemon's JSON list, pretty-printed, for scripts.
    Json,
}

/// `tocsin silence …`.
#[derive(Subcommand, Debug)]
pub enum SilenceCommand {
    /// Create a silence and print its id.
    Add {
        /// Matchers: NAME=VALUE, NAME!=VALUE, NAME=~REGEX, NAME!~REGEX (the value may be
        /// double-quoted; a regex is anchored at both ends). An alert is muted when all match.
        #[arg(required = true, value_name = "MATCHER", value_parser = parse_matcher)]
        matchers: Vec<SilenceMatcher>,
        /// Why the silence exists.
        #[arg(short, long, default_value = "")]
        comment: String,
        /// Who creates it.
        #[arg(short, long, env = "USER")]
        author: Option<String>,
        /// How long it lasts from now (`2h`, `30m`, `1d`).
        #[arg(short, long, value_parser = parse_duration, default_value = "1h", conflicts_with = "end")]
        duration: Duration,
        /// When it ends instead: an RFC 3339 time (`2026-11-23T12:00:00Z`).
        #[arg(short, long, value_name = "TIME", value_parser = crate::silence::parse_time)]
        end: Option<Timestamp>,
    },
    /// List the daemon's silences (expired ones until pruned).
    #[command(visible_alias = "query")]
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Expire silences now.
    Expire {
        /// The ids to expire.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
}

/// Runs a `tocsin silence` subcommand against the daemon at `api`.
pub fn silence(api: &Api, cmd: SilenceCommand) -> ExitCode {
    match cmd {
        SilenceCommand::Add {
            matchers,
            comment,
            author,
            duration,
            end,
        } => {
            let Some(author) = author.filter(|a| !a.trim().is_empty()) else {
                eprintln!("tocsin silence add: --author is required (USER is not set)");
                return ExitCode::from(2);
            };
            let ends_at = match end {
                Some(t) => t,
                None => {
                    let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
                    Timestamp(now().0.saturating_add(ms))
                }
            };
            let body = json!({
                "matchers": matchers,
                "ends_at": rfc3339_millis(ends_at),
                "created_by": author,
                "comment": comment,
            });
            run("silence add", || {
                let answer = Session::new(api)?.call(Method::POST, &["api", "v1", "silences"], Some(&body))?;
                let id = answer["silence_id"]
                    .as_str()
                    .ok_or_else(|| format!("the daemon's answer has no `silence_id`: {answer}"))?;
                println!("{id}");
                Ok(())
            })
        }
        SilenceCommand::List { output } => run("silence list", || {
            let answer = Session::new(api)?.call(Method::GET, &["api", "v1", "silences"], None)?;
            let list = listed(&answer, "silences")?;
            match output {
                Output::Json => print_json(list),
                Output::Table => print!("{}", silence_table(list)),
            }
            Ok(())
        }),
        SilenceCommand::Expire { ids } => run("silence expire", || {
            // Every id is tried, so one unknown id does not leave the others active.
            let session = Session::new(api)?;
            let mut failed = Vec::new();
            for id in &ids {
                if let Err(e) = session.call(Method::DELETE, &["api", "v1", "silences", id], None) {
                    failed.push(format!("{id}: {e}"));
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(failed.join("\ntocsin silence expire: "))
            }
        }),
    }
}

/// Runs `tocsin alerts`: the daemon's pending and firing alerts.
pub fn alerts(api: &Api, output: Output) -> ExitCode {
    run("alerts", || {
        let answer = Session::new(api)?.call(Method::GET, &["api", "v1", "alerts"], None)?;
        let list = listed(&answer, "alerts")?;
        match output {
            Output::Json => print_json(list),
            Output::Table => print!("{}", alert_table(list)),
        }
        Ok(())
    })
}

/// `tocsin ack FINGERPRINT …`.
#[derive(Args, Debug)]
pub struct AckArgs {
    /// The alert's fingerprint, as `tocsin alerts` and `/api/v1/alerts` list it.
    #[arg(value_name = "FINGERPRINT", value_parser = parse_fingerprint)]
    fingerprint: String,
    /// What you are doing about it.
    #[arg(short, long, default_value = "")]
    comment: String,
    /// Who acknowledges.
    #[arg(short, long, env = "USER")]
    by: Option<String>,
    /// When the acknowledgement lapses by itself: an RFC 3339 time (default: when the alert
    /// changes severity or resolves).
    #[arg(short, long, value_name = "TIME", value_parser = crate::silence::parse_time)]
    until: Option<Timestamp>,
    /// Clear the acknowledgement instead.
    #[arg(long, conflicts_with_all = ["comment", "until"])]
    clear: bool,
}

/// Runs `tocsin ack`: acknowledges a firing alert (or, with `--clear`, takes the
/// acknowledgement back).
pub fn ack(api: &Api, a: AckArgs) -> ExitCode {
    let path = ["api", "v1", "alerts", a.fingerprint.as_str(), "ack"];
    if a.clear {
        return run("ack", || {
            Session::new(api)?.call(Method::DELETE, &path, None)?;
            println!("{}: acknowledgement cleared", a.fingerprint);
            Ok(())
        });
    }
    let Some(by) = a.by.filter(|b| !b.trim().is_empty()) else {
        eprintln!("tocsin ack: --by is required (USER is not set)");
        return ExitCode::from(2);
    };
    let mut body = json!({ "by": by, "comment": a.comment });
    if let Some(u) = a.until {
        body["until"] = json!(rfc3339_millis(u));
    }
    run("ack", || {
        Session::new(api)?.call(Method::POST, &path, Some(&body))?;
        println!("{}: acknowledged by {by}", a.fingerprint);
        Ok(())
    })
}

/// A fingerprint: 16 hex digits.
fn parse_fingerprint(s: &str) -> Result<String, String> {
    if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{s}` is not a fingerprint (16 hex digits, as `tocsin alerts` lists them)"
        ))
    }
}

/// Runs `f`, printing its error after `tocsin NAME:` and exiting 1 on one.
fn run(name: &str, f: impl FnOnce() -> Result<(), String>) -> ExitCode {
    match f() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tocsin {name}: {e}");
            ExitCode::from(1)
        }
    }
}

/// A connection to the daemon for one command: a current-thread runtime (the CLI makes a
/// few requests in a row and nothing else runs concurrently) and one HTTP client, so
/// `silence expire A B C` reuses its connection.
struct Session<'a> {
    api: &'a Api,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl<'a> Session<'a> {
    fn new(api: &'a Api) -> Result<Session<'a>, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
        let http = crate::http_client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Session { api, rt, http })
    }

    /// One request to `path` under the base URL (its segments percent-encoded, so an id
    /// cannot reach another endpoint). Answers the JSON body of a 2xx, or what went wrong:
    /// the daemon unreachable (naming the URL) or its `{"error": …}` message.
    fn call(&self, method: Method, path: &[&str], body: Option<&Value>) -> Result<Value, String> {
        let base = &self.api.url;
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|()| format!("{base}: cannot hold a path"))?
            .pop_if_empty()
            .extend(path);
        let mut req = self.http.request(method.clone(), url.clone());
        if let Some(token) = self.api.token.as_deref().filter(|t| !t.is_empty()) {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.rt.block_on(async {
            let resp = req.send().await.map_err(|e| unreachable(base, &e))?;
            let status = resp.status();
            let text = resp
                .text()
                .await
                .map_err(|e| format!("{method} {url}: reading the answer: {}", chain(&e)))?;
            answer(status, &text).map_err(|e| format!("{method} {url}: {e}"))
        })
    }
}

/// The message for a request that got no answer.
fn unreachable(base: &Url, e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "no answer in time from"
    } else {
        "cannot reach"
    };
    format!(
        "{what} the daemon at {base}: {} (is `tocsin run` running there? set --url or TOCSIN_URL)",
        chain(e)
    )
}

/// An error and its causes on one line: reqwest's own message alone ("error sending
/// request") does not say "connection refused".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let _ = write!(s, ": {c}");
        cur = c.source();
    }
    s
}

/// The JSON of a 2xx answer, or the daemon's error: its `error` message when the body is
/// `{"error": …}`, else the start of the body.
fn answer(status: StatusCode, text: &str) -> Result<Value, String> {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    if status.is_success() {
        return parsed.ok_or_else(|| format!("the daemon answered {status} with a body that is not JSON"));
    }
    let message = match parsed.as_ref().and_then(|v| v["error"].as_str()) {
        Some(m) => m.to_string(),
        None => text.chars().take(200).collect::<String>().trim().to_string(),
    };
    let hint = if status == StatusCode::UNAUTHORIZED {
        " (pass --token or set TOCSIN_API_TOKEN)"
    } else {
        ""
    };
    Err(format!("the daemon answered {status}: {message}{hint}"))
}

/// The list under `key` of a daemon's answer.
fn listed<'a>(answer: &'a Value, key: &str) -> Result<&'a [Value], String> {
    answer[key]
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| format!("the daemon's answer has no `{key}` list: {answer}"))
}

fn print_json(list: &[Value]) {
    println!("{}", serde_json::to_string_pretty(list).expect("JSON values serialize"));
}

/// `--url`: an absolute http(s) URL with a host.
fn parse_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{s}` must be an http:// or https:// URL with a host"));
    }
    Ok(url)
}

/// `--duration`: humantime's spelling (`90m`, `2h 30m`, `1d`), more than zero.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration (e.g. 2h, 30m, 1d): {e}"))?;
    if d.is_zero() {
        return Err("must be longer than zero".to_string());
    }
    Ok(d)
}

/// Parses one matcher in amtool's spelling: `NAME=VALUE`, `NAME!=VALUE`, `NAME=~REGEX`,
/// `NAME!~REGEX`. The value may be wrapped in double quotes (with `\"` and `\\` escapes
/// inside), as amtool prints it; a regex must compile (anchored at both ends, as the daemon
/// applies it).
pub fn parse_matcher(s: &str) -> Result<SilenceMatcher, String> {
    let expected = "expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX";
    let name_len = s
        .char_indices()
        .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(s.len(), |(i, _)| i);
    let (name, rest) = s.split_at(name_len);
    if name.is_empty() {
        return Err(format!(
            "`{s}` does not start with a label name ([a-zA-Z_][a-zA-Z0-9_]*); {expected}"
        ));
    }
    let (is_equal, is_regex, value) = if let Some(v) = rest.strip_prefix("=~") {
        (true, true, v)
    } else if let Some(v) = rest.strip_prefix("!~") {
        (false, true, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        (false, false, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (true, false, v)
    } else {
        return Err(format!("`{s}`: no operator after `{name}`; {expected}"));
    };
    let value = unquote(value).map_err(|e| format!("`{s}`: {e}"))?;
    // Compiled as the daemon applies it, anchored; the error quotes the regex as typed
    // when that fails too, not the anchored form the user never wrote.
    if is_regex && let Err(e) = crate::series::anchored_regex(&value) {
        return Err(format!("`{s}`: invalid regex: {e}"));
    }
    Ok(SilenceMatcher {
        name: name.to_string(),
        value,
        is_regex,
        is_equal,
    })
}

/// A value as typed: bare, or double-quoted with `\"` and `\\` escapes.
fn unquote(v: &str) -> Result<String, String> {
    let Some(inner) = v.strip_prefix('"') else {
        return Ok(v.to_string());
    };
    let Some(inner) = inner.strip_suffix('"') else {
        return Err("the value's opening `\"` is not closed".to_string());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('"' | '\\')) => out.push(e),
                Some('n') => out.push('\n'),
                _ => return Err("inside quotes, `\\` escapes only `\"`, `\\` or `n`".to_string()),
            },
            '"' => return Err("a `\"` inside a quoted value must be escaped as `\\\"`".to_string()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A matcher as amtool prints it: `name=~"value"`, quoted with escapes, so it can be
/// pasted back into `silence add`.
pub fn format_matcher(m: &SilenceMatcher) -> String {
    let op = match (m.is_equal, m.is_regex) {
        (true, false) => "=",
        (false, false) => "!=",
        (true, true) => "=~",
        (false, true) => "!~",
    };
    let value = m.value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    format!("{}{op}\"{value}\"", m.name)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// `silence list`'s table: id, matchers, when, who, why, status.
fn silence_table(list: &[Value]) -> String {
    let rows = list
        .iter()
        .map(|s| {
            let matchers = s["matchers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| serde_json::from_value::<SilenceMatcher>(m.clone()).ok())
                .map(|m| format_matcher(&m))
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                text(&s["id"]),
                matchers,
                text(&s["starts_at"]),
                text(&s["ends_at"]),
                text(&s["created_by"]),
                text(&s["comment"]),
                text(&s["status"]),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "ID",
            "MATCHERS",
            "STARTS AT",
            "ENDS AT",
            "CREATED BY",
            "COMMENT",
            "STATUS",
        ],
        &rows,
    )
}

/// `alerts`' table: name, state, severity, since, value, fingerprint (for `ack`), labels.
fn alert_table(list: &[Value]) -> String {
    let rows = list
        .iter()
        .map(|a| {
            // alertname and severity have columns of their own.
            let labels = a["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != "alertname" && k.as_str() != "severity")
                .map(|(k, v)| format!("{k}={:?}", text(v)))
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                text(&a["alertname"]),
                text(&a["state"]),
                text(&a["severity"]),
                text(&a["starts_at"]),
                text(&a["value"]),
                text(&a["fingerprint"]),
                labels,
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "ALERTNAME",
            "STATE",
            "SEVERITY",
            "STARTS AT",
            "VALUE",
            "FINGERPRINT",
            "LABELS",
        ],
        &rows,
    )
}

/// Left-aligned columns two spaces apart; the last column is not padded. Newlines and tabs
/// in cells (a comment may hold them) are shown escaped so each row stays one line.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let clean = |s: &str| s.replace('\n', "\\n").replace('\t', "\\t");
    let cells: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows.iter().map(|r| r.iter().map(|c| clean(c)).collect()))
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| cells.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &cells {
        let last = row.len() - 1;
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(name: &str, value: &str, is_regex: bool, is_equal: bool) -> SilenceMatcher {
        SilenceMatcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    #[test]
    fn amtool_spellings_parse() {
        assert_eq!(parse_matcher("alertname=Foo"), Ok(m("alertname", "Foo", false, true)));
        assert_eq!(
            parse_matcher("instance=~\"web.*\""),
            Ok(m("instance", "web.*", true, true))
        );
        assert_eq!(parse_matcher("x!=y"), Ok(m("x", "y", false, false)));
        assert_eq!(parse_matcher("x!~a|b"), Ok(m("x", "a|b", true, false)));
        // Only the first `=` is the operator; the value may hold more.
        assert_eq!(parse_matcher("q=a=b"), Ok(m("q", "a=b", false, true)));
        assert_eq!(parse_matcher("q="), Ok(m("q", "", false, true)));
        assert_eq!(
            parse_matcher(r#"q="say \"hi\"""#),
            Ok(m("q", "say \"hi\"", false, true))
        );
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        for (input, needle) in [
            ("alertname", "no operator"),
            ("=Foo", "does not start with a label name"),
            ("1x=y", "does not start with a label name"),
            ("a-b=c", "no operator after `a`"),
            ("x=~(", "invalid regex"),
            ("x=\"open", "not closed"),
            ("x=\"a\"b\"", "must be escaped"),
            ("", "does not start with a label name"),
        ] {
            let e = parse_matcher(input).expect_err(input);
            assert!(e.contains(needle), "{input}: {e}");
        }
        // The regex is quoted as typed, not in the anchored form the daemon compiles.
        let e = parse_matcher("x=~(").unwrap_err();
        assert!(!e.contains("^(?:"), "{e}");
    }

    #[test]
    fn errors_print_the_daemons_message() {
        let e = answer(StatusCode::UNAUTHORIZED, r#"{"error": "needs a token"}"#).unwrap_err();
        assert_eq!(
            e,
            "the daemon answered 401 Unauthorized: needs a token (pass --token or set TOCSIN_API_TOKEN)"
        );
        let e = answer(StatusCode::BAD_GATEWAY, "<html>proxy down</html>").unwrap_err();
        assert_eq!(e, "the daemon answered 502 Bad Gateway: <html>proxy down</html>");
        assert_eq!(answer(StatusCode::OK, r#"{"a": 1}"#), Ok(json!({"a": 1})));
        assert!(answer(StatusCode::OK, "nope").is_err());
    }

    #[test]
    fn urls_are_absolute_http() {
        assert!(parse_url("http://127.0.0.1:9470").is_ok());
        assert!(parse_url("https://tocsin.example/prefix/").is_ok());
        assert!(parse_url("127.0.0.1:9470").is_err());
        assert!(parse_url("ftp://host/").is_err());
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn tables_align_and_keep_rows_on_one_line() {
        let t = table(
            &["A", "BB", "C"],
            &[
                vec!["long".into(), "x".into(), "last\nline".into()],
                vec!["s".into(), "yyy".into(), "z".into()],
            ],
        );
        assert_eq!(t, "A     BB   C\nlong  x    last\\nline\ns     yyy  z\n");
    }

    proptest! {
        /// What `silence list` prints for a matcher reads back as the same matcher, whatever
        /// its value holds (quotes, backslashes, operators, newlines).
        #[test]
        fn printed_matchers_parse_back(
            name in "[a-zA-Z_][a-zA-Z0-9_]{0,10}",
            value in "[a-z=~!\"\\\\\n .*]{0,12}",
            is_regex in any::<bool>(),
            is_equal in any::<bool>(),
        ) {
            let original = m(&name, &value, is_regex, is_equal);
            let compiles = crate::series::anchored_regex(&value).is_ok();
            match parse_matcher(&format_matcher(&original)) {
                Ok(parsed) => prop_assert_eq!(parsed, original),
                Err(e) => prop_assert!(is_regex && !compiles, "{}", e),
            }
        }

        /// No input makes the parser panic; an accepted one has a valid label name.
        #[test]
        fn any_input_parses_or_errs(s in "\\PC{0,30}") {
            if let Ok(parsed) = parse_matcher(&s) {
                prop_assert!(crate::rules::valid_name(&parsed.name));
            }
        }
    }
}
