//! What an editor offers: the real yaml-language-server (npm, pinned and installed by
//! `.ci/run` into `target/yaml-language-server`) completes rule files against the checked-in
//! `schemas/rules.schema.json`, driven here over its stdio LSP protocol.
//!
//! The server is found through `TOCSIN_YAML_LANGUAGE_SERVER` (the path of its
//! `yaml-language-server` executable) or at `target/yaml-language-server/node_modules/.bin/`.
//! Without it the test is skipped, unless `CI` is set: there a missing server fails it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one answer of the server may take; its first completion loads the schema.
const ANSWER: Duration = Duration::from_secs(30);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn server_path() -> Option<PathBuf> {
    let path = match std::env::var_os("TOCSIN_YAML_LANGUAGE_SERVER") {
        Some(p) => PathBuf::from(p),
        None => root().join("target/yaml-language-server/node_modules/.bin/yaml-language-server"),
    };
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "yaml-language-server not found at {} (.ci/run installs it)",
        path.display()
    );
    eprintln!("skipped: yaml-language-server not found at {}", path.display());
    None
}

/// One language-server child and the messages it sent, read by a thread so that every
/// wait is bounded.
struct Lsp {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
}

impl Drop for Lsp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads Content-Length framed JSON-RPC messages until the stream ends.
fn read_messages(stdout: impl Read, out: std::sync::mpsc::Sender<Value>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length:") {
                length = v.trim().parse::<usize>().ok();
            }
        }
        let Some(length) = length else { return };
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let Ok(message) = serde_json::from_slice(&body) else {
            return;
        };
        if out.send(message).is_err() {
            return;
        }
    }
}

/// The settings the server asks for: no schema store (no network), completion on.
fn yaml_settings() -> Value {
    json!({ "schemaStore": { "enable": false }, "completion": true, "validate": true, "hover": true })
}

impl Lsp {
    fn start(server: &Path) -> Lsp {
        let mut child = Command::new(server)
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("yaml-language-server starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, messages) = channel();
        std::thread::spawn(move || read_messages(stdout, tx));
        let mut lsp = Lsp {
            child,
            stdin,
            messages,
            next_id: 1,
        };
        let root_uri = format!("file://{}", root().display());
        lsp.request(
            "initialize",
            json!({
                "processId": std::process::id(),
                "rootUri": root_uri,
                "capabilities": {
                    "workspace": { "configuration": true },
                    "textDocument": { "completion": { "completionItem": { "snippetSupport": true } } }
                },
            }),
        );
        lsp.notify("initialized", json!({}));
        lsp.notify(
            "workspace/didChangeConfiguration",
            json!({ "settings": { "yaml": yaml_settings() } }),
        );
        lsp
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and returns its result, answering the server's own requests
    /// (configuration, registrations) meanwhile.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        let deadline = Instant::now() + ANSWER;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match self.messages.recv_timeout(left) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => panic!("no answer to {method} within {ANSWER:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("the server exited while answering {method}"),
            };
            if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
                assert!(message.get("error").is_none(), "{method} failed: {message}");
                return message["result"].clone();
            }
            if let (Some(their_id), Some(their_method)) = (message.get("id"), message.get("method")) {
                let result = if their_method == "workspace/configuration" {
                    let items = message["params"]["items"].as_array().map_or(0, Vec::len);
                    let answers: Vec<Value> = message["params"]["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|item| {
                            if item["section"] == "yaml" {
                                yaml_settings()
                            } else {
                                Value::Null
                            }
                        })
                        .collect();
                    assert_eq!(answers.len(), items);
                    Value::Array(answers)
                } else {
                    Value::Null
                };
                self.send(json!({ "jsonrpc": "2.0", "id": their_id.clone(), "result": result }));
            }
        }
    }

    /// The labels the server offers at `line`/`character` of a document holding `text`.
    fn completions(&mut self, uri: &str, version: i64, text: &str, line: usize, character: usize) -> Vec<String> {
        if version == 1 {
            self.notify(
                "textDocument/didOpen",
                json!({ "textDocument": { "uri": uri, "languageId": "yaml", "version": version, "text": text } }),
            );
        } else {
            self.notify(
                "textDocument/didChange",
                json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }),
            );
        }
        let result = self.request(
            "textDocument/completion",
            json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": character } }),
        );
        let items = match &result {
            Value::Array(items) => items.clone(),
            Value::Object(list) => list.get("items").and_then(Value::as_array).cloned().unwrap_or_default(),
            _ => Vec::new(),
        };
        items
            .iter()
            .filter_map(|i| i["label"].as_str().map(str::to_owned))
            .collect()
    }
}

const MODELINE: &str = "# yaml-language-server: $schema=../schemas/rules.schema.json\n";

#[test]
fn yaml_language_server_completes_every_rule_key_and_tier_keys() {
    let Some(server) = server_path() else { return };
    let mut lsp = Lsp::start(&server);
    // The document lives in rules/ as an operator's file would, so the modeline's relative
    // path resolves to the checked-in schema; it is only opened, never written to disk.
    let uri = format!("file://{}/rules/editor-probe.yaml", root().display());

    let in_rule =
        format!("{MODELINE}groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x > 1\n        \n");
    let offered = lsp.completions(&uri, 1, &in_rule, 6, 8);
    for key in [
        "tiers",
        "for",
        "severity",
        "cooldown",
        "keep_firing_for",
        "no_data",
        "annotations",
        "select",
    ] {
        assert!(
            offered.iter().any(|l| l == key),
            "inside a rule, {key:?} is not offered; offered: {offered:?}"
        );
    }

    let in_tier = format!(
        "{MODELINE}groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x\n        tiers:\n          - \n"
    );
    let offered = lsp.completions(&uri, 2, &in_tier, 7, 12);
    for key in ["severity", "above", "below", "when", "for", "clear"] {
        assert!(
            offered.iter().any(|l| l == key),
            "inside a tier, {key:?} is not offered; offered: {offered:?}"
        );
    }
}

#[test]
fn yaml_language_server_offers_every_top_level_key_of_every_file_kind() {
    let Some(server) = server_path() else { return };
    let mut lsp = Lsp::start(&server);
    for (n, kind) in tocsin::config::FileKind::ALL.into_iter().enumerate() {
        let schema = tocsin::config::schema(kind);
        let keys: Vec<&String> = schema["properties"]
            .as_object()
            .expect("an object schema")
            .keys()
            .collect();
        let uri = format!("file://{}/rules/editor-probe-{}.yaml", root().display(), kind.name());
        let text = format!(
            "# yaml-language-server: $schema=../schemas/{}.schema.json\n\n",
            kind.name()
        );
        let offered = lsp.completions(&uri, 1, &text, 1, 0);
        let missing: Vec<_> = keys.iter().filter(|k| !offered.contains(k)).collect();
        assert!(
            missing.is_empty(),
            "file {n} ({}): {missing:?} not offered; offered: {offered:?}",
            kind.name()
        );
    }
}

/// `default: null` says nothing an absent key does not, and trips yaml-language-server.
#[test]
fn no_schema_carries_a_null_default() {
    fn walk(v: &Value, at: &str, found: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if map.get("default").is_some_and(Value::is_null) {
                    found.push(at.to_owned());
                }
                for (k, v) in map {
                    walk(v, &format!("{at}/{k}"), found);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{at}/{i}"), found);
                }
            }
            _ => {}
        }
    }
    for kind in tocsin::config::FileKind::ALL {
        let mut found = Vec::new();
        walk(&tocsin::config::schema(kind), "", &mut found);
        assert!(found.is_empty(), "{}: null defaults at {found:?}", kind.name());
    }
}
