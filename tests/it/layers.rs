//! The layering of ARCHITECTURE.md, enforced: every `crate::module` a module names (outside
//! comments and tests) must sit below it. Cargo already keeps the core crate free of I/O
//! crates and of the shell crate; this keeps the modules inside each crate from importing
//! upwards, where cycles start. A new module must be given its place here (and in
//! ARCHITECTURE.md's code map).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The core crate's modules, lowest first.
const CORE: &[&str] = &[
    "series",
    "diag",
    "template",
    "time",
    "expr",
    "exposition",
    "push_json",
    "config",
    "promql",
    "alert",
    "rules",
    "message",
    "silence",
    "engine",
    "history",
    "receivers",
    "route",
    "policy",
    "pipeline",
    "ruletest",
    "backtest",
    "check",
    "import",
];

/// The shell crate's modules, lowest first; modules in one entry may name each other.
/// The HTTP API sits below the daemon: it holds a handle (`http::Daemon`) that the daemon
/// implements, never the daemon's state.
const SHELL: &[&[&str]] = &[
    &["memory"],
    &["http_client"],
    &["datasource"],
    &["sources"],
    &["store"],
    &["actions"],
    &["outbox"],
    &["listener"],
    &["reload"],
    &["remote_write"],
    &["acks"],
    &["http"],
    &["daemon"],
    &["eval"],
    &["client"],
    &["backtest"],
    &["cli"],
    &["main"],
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, but test modules in files of their own.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "tests.rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`route/dispatch.rs` → `route`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The modules `text` names as `crate::name` or inside `crate::{…}` (top-level names of
/// the braces, over as many lines as they take), with the line, skipping comments and
/// everything from the first `#[cfg(test)]` on (test modules sit at the end of a file).
fn named(text: &str) -> Vec<(usize, String)> {
    let mut code = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if !t.starts_with("//") {
            code.push_str(line);
        }
        code.push('\n');
    }
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at + "crate::".len();
        let line = code[..start].matches('\n').count() + 1;
        let after = &code[start..];
        if let Some(inner) = after.strip_prefix('{') {
            // Top-level names: split at commas outside nested braces.
            let (mut depth, mut part) = (0usize, String::new());
            for c in inner.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push((line, ident(part.trim())));
                        part.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 || c != '{' {
                    part.push(c);
                }
            }
            out.push((line, ident(part.trim())));
        } else {
            out.push((line, ident(after)));
        }
        from = start;
    }
    out.retain(|(_, n)| !n.is_empty());
    out
}

/// Checks one crate: `rank` gives each module's floor; a module may name modules of a lower
/// floor (or its own, when `same_floor_ok`), and `below` (the crate underneath) freely.
fn check_crate(
    src: &Path,
    rank: &BTreeMap<&str, usize>,
    below: &[&str],
    same_floor_ok: bool,
    problems: &mut Vec<String>,
) -> usize {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut checked = 0;
    for file in files {
        let module = module_of(src, &file);
        if module == "lib" {
            continue;
        }
        let Some(&own) = rank.get(module.as_str()) else {
            problems.push(format!(
                "{}: module `{module}` has no place in tests/layers.rs",
                file.display()
            ));
            continue;
        };
        checked += 1;
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, dep) in named(&text) {
            if dep == module || below.contains(&dep.as_str()) {
                continue;
            }
            match rank.get(dep.as_str()) {
                Some(&r) if r < own || (same_floor_ok && r == own) => {}
                Some(_) => problems.push(format!(
                    "{}:{line}: `{module}` uses `{dep}`, which sits above it",
                    file.display()
                )),
                None => problems.push(format!(
                    "{}:{line}: `{module}` uses `{dep}`, which is no module of this crate's layers",
                    file.display()
                )),
            }
        }
    }
    checked
}

#[test]
fn modules_only_use_modules_below_them() {
    let mut problems = Vec::new();
    let core: BTreeMap<&str, usize> = CORE.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let core_files = check_crate(&root().join("crates/tocsin-core/src"), &core, &[], false, &mut problems);
    let shell: BTreeMap<&str, usize> = SHELL
        .iter()
        .enumerate()
        .flat_map(|(i, floor)| floor.iter().map(move |m| (*m, i)))
        .collect();
    let shell_files = check_crate(&root().join("src"), &shell, CORE, true, &mut problems);
    assert!(
        problems.is_empty(),
        "imports pointing up the layers:\n{}",
        problems.join("\n")
    );
    // The walk must have looked at something: a moved tree must not pass by finding nothing.
    assert!(
        core_files > 40 && shell_files > 15,
        "{core_files} core and {shell_files} shell files checked"
    );
}

#[test]
fn the_check_sees_an_import_pointing_up() {
    let text = "use crate::series::Labels;\n// crate::engine in a comment\nfn f() { crate::route::x(); }\n#[cfg(test)]\nmod tests { use crate::pipeline; }\n";
    let names: Vec<String> = named(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["series", "route"]);
    let multi = "use crate::{\n    config::{A, B},\n    engine,\n};\n";
    assert_eq!(
        named(multi).into_iter().map(|(_, n)| n).collect::<Vec<_>>(),
        ["config", "engine"]
    );
    assert_eq!(
        named("use crate::{config, route::Dispatcher};")
            .into_iter()
            .map(|(_, n)| n)
            .collect::<Vec<_>>(),
        ["config", "route"]
    );
}
