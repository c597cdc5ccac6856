//! The user documentation under `docs/` against the code it describes:
//!
//! * every fenced `yaml` block that is a complete file is checked through the loaders
//!   `tocsin check` uses (and a complete test file is run as `tocsin test` runs it); a block
//!   preceded by `<!-- fragment -->` is an excerpt and is skipped, and one preceded by
//!   `<!-- file: PATH -->` is written at PATH so that other blocks of its page can name it;
//! * every function the expression compiler knows has a row in `docs/rules.md` whose example
//!   compiles;
//! * every key of the JSON Schemas is documented in `docs/configuration.md`, in the section
//!   of its file kind;
//! * `dist/tocsin.service` passes `systemd-analyze verify`;
//! * every `docs/…` page a message in `src/` points to exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tocsin::cli::DiskFiles;
use tocsin::config::{FileKind, detect_kind, schema};
use tocsin::diag::Severity;
use tocsin::expr::Expr;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn doc_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

/// A fenced block of a page: its language, its text, the line it starts on and the HTML
/// comment (if any) on the line before its fence.
struct Block {
    lang: String,
    text: String,
    line: usize,
    marker: Option<String>,
}

fn blocks(page: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let lines: Vec<&str> = page.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let marker = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.trim().strip_prefix("<!--"))
            .and_then(|l| l.strip_suffix("-->"))
            .map(|m| m.trim().to_owned());
        let start = i;
        let mut text = String::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            text.push_str(lines[i]);
            text.push('\n');
            i += 1;
        }
        out.push(Block {
            lang: lang.trim().to_owned(),
            text,
            line: start + 1,
            marker,
        });
        i += 1;
    }
    out
}

/// Secrets and URLs of documented receivers come from the environment; any value does.
fn doc_env(name: &str) -> Option<String> {
    Some(if name.ends_with("URL") {
        "http://127.0.0.1:9/placeholder".to_owned()
    } else if name.ends_with("PORT") {
        "587".to_owned()
    } else {
        format!("value-of-{name}")
    })
}

#[test]
fn complete_yaml_files_in_the_docs_are_valid() {
    let mut checked = 0;
    let mut cases_run = 0;
    let mut problems = Vec::new();
    for page in doc_pages() {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&page).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (n, block) in blocks(&text).into_iter().enumerate() {
            if block.lang != "yaml" || block.marker.as_deref() == Some("fragment") {
                continue;
            }
            let rel = match block.marker.as_deref().and_then(|m| m.strip_prefix("file:")) {
                Some(path) => path.trim().to_owned(),
                None => format!("block-{n}.yaml"),
            };
            let path = dir.path().join(&rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &block.text).unwrap();
            files.push((path, block.line));
        }
        let mut sources = Vec::new();
        for (path, line) in &files {
            let source = tocsin::reload::read_source(path).unwrap();
            if detect_kind(&source).is_none() {
                problems.push(format!(
                    "docs/{name}:{line}: not a tocsin file; mark it <!-- fragment --> if it is an excerpt"
                ));
            }
            sources.push(source);
        }
        for d in tocsin::check::check(&sources, &doc_env, &DiskFiles) {
            if d.severity == Severity::Error {
                let at = files
                    .iter()
                    .find(|(p, _)| p.to_string_lossy() == d.file)
                    .map_or(0, |(_, line)| *line);
                problems.push(format!(
                    "docs/{name}: block at line {at}: {}:{}: {}",
                    d.line, d.column, d.message
                ));
            }
        }
        // A documented test file must also pass, as `tocsin test` runs it.
        for (source, (_, line)) in sources.iter().zip(&files) {
            if detect_kind(source) != Some(FileKind::Test) {
                continue;
            }
            let Ok(test) = tocsin::config::parse_test(source) else {
                continue;
            };
            let result = tocsin::ruletest::run_file(source.path(), &test, &DiskFiles, None);
            cases_run += result.cases.len();
            for case in result.cases.iter().filter(|c| !c.failures.is_empty()) {
                problems.push(format!(
                    "docs/{name}: test at line {line}, `{}` fails: {:?}",
                    case.name, case.failures
                ));
            }
        }
        checked += files.len();
    }
    assert!(checked >= 8, "only {checked} complete YAML files found in docs/");
    assert!(cases_run > 0, "no documented rule test ran");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The function names the expression compiler accepts, read from its table in the source,
/// so a function added there without a documentation row fails this test.
fn compiler_functions() -> Vec<String> {
    let src = read("crates/tocsin-core/src/expr/compile.rs");
    let start = src.find("const FUNCTIONS").expect("the compiler's function table");
    let table = &src[start..start + src[start..].find("];").unwrap()];
    let re = regex::Regex::new(r#"\(\s*"([a-z_0-9]+)",\s*Func::"#).unwrap();
    let names: Vec<String> = re.captures_iter(table).map(|c| c[1].to_owned()).collect();
    assert!(names.len() > 30, "function table not understood: {names:?}");
    names
}

/// `(function cell, example)` of each row of the function table in docs/rules.md.
fn function_rows() -> Vec<(String, String)> {
    let page = read("docs/rules.md");
    let start = page
        .find("## Functions")
        .expect("docs/rules.md has a Functions section");
    let section = &page[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            let code = |c: &str| c.trim_matches('`').replace("\\|", "|");
            (code(cells[0]), code(cells[cells.len() - 1]))
        })
        .collect()
}

#[test]
fn every_function_has_a_documented_example_that_compiles() {
    let rows = function_rows();
    let mut problems = Vec::new();
    for (function, example) in &rows {
        if let Err(e) = Expr::compile(example) {
            problems.push(format!("`{function}`: example `{example}` does not compile: {e}"));
        }
    }
    for name in compiler_functions() {
        let call = format!("{name}(");
        match rows.iter().find(|(f, _)| f.starts_with(&call)) {
            None => problems.push(format!("`{name}` has no row in the function table of docs/rules.md")),
            Some((_, example)) if !example.contains(&call) => {
                problems.push(format!("the example of `{name}` does not call it: `{example}`"))
            }
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every property name anywhere in a schema.
fn schema_keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            map.values().for_each(|v| schema_keys(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| schema_keys(v, out)),
        _ => {}
    }
}

#[test]
fn every_schema_key_is_documented_in_its_section_of_configuration_md() {
    let page = read("docs/configuration.md");
    let mut problems = Vec::new();
    for kind in FileKind::ALL {
        let heading = format!("<!-- schema: {} -->", kind.name());
        let Some(start) = page.find(&heading) else {
            problems.push(format!("docs/configuration.md has no section marked {heading}"));
            continue;
        };
        let rest = &page[start + heading.len()..];
        let section = &rest[..rest.find("<!-- schema:").unwrap_or(rest.len())];
        let mut keys = BTreeSet::new();
        schema_keys(&schema(kind), &mut keys);
        for key in keys {
            if !section.contains(&format!("`{key}`")) {
                problems.push(format!("{}: key `{key}` is not documented", kind.name()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        assert!(std::env::var_os("CI").is_none(), "systemd-analyze is missing");
        eprintln!("skipped: no systemd-analyze");
        return;
    }
    let unit = read("dist/tocsin.service");
    for directive in [
        "ProtectSystem=strict",
        "StateDirectory=tocsin",
        "NoNewPrivileges=yes",
        "DynamicUser=yes",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == directive),
            "dist/tocsin.service lacks {directive}"
        );
    }
    // verify checks that ExecStart's program exists: point it at the binary just built, and
    // change nothing else.
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart");
    let program = exec.split_whitespace().next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tocsin.service");
    std::fs::write(&copy, unit.replace(program, env!("CARGO_BIN_EXE_tocsin"))).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify also loads the units it depends on; messages about those are the machine's,
    // not ours.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("tocsin.service")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
}

#[test]
fn pages_that_messages_point_to_exist() {
    let re = regex::Regex::new(r"docs/[a-z0-9-]+\.md").unwrap();
    let mut named = BTreeSet::new();
    let mut stack = vec![root().join("src"), root().join("crates")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                named.extend(re.find_iter(&text).map(|m| m.as_str().to_owned()));
            }
        }
    }
    let missing: Vec<_> = named.iter().filter(|p| !root().join(p).is_file()).collect();
    assert!(
        missing.is_empty(),
        "the code points to pages that do not exist: {missing:?}"
    );
}

#[test]
fn the_service_kpis_example_has_a_config_that_check_passes() {
    let dir = root().join("examples/service-kpis");
    let mut sources = Vec::new();
    let paths = tocsin::reload::expand(
        &[
            dir.join("tocsin.yaml"),
            dir.join("rules"),
            dir.join("receivers"),
            dir.join("tests"),
        ],
        tocsin::reload::Depth::Recursive,
    )
    .expect("the example's files exist");
    for path in &paths {
        sources.push(tocsin::reload::read_source(path).unwrap());
    }
    let errors: Vec<String> = tocsin::check::check(&sources, &|_| None, &DiskFiles)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{}:{}: {}", d.file, d.line, d.message))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // The config's own paths lead to the example's files.
    let loaded = tocsin::daemon::load_config(Some(&dir.join("tocsin.yaml"))).expect("the config loads");
    for p in loaded.cfg.rules.iter().chain(&loaded.cfg.receivers) {
        assert!(loaded.path(p.expose()).is_dir(), "{} is not a directory", p.expose());
    }
}
