//! Runs every rule unit-test file shipped in the repository (the default policy's, the
//! examples' and the contract fixtures') through the same runner as `tocsin test`, and checks
//! every shipped YAML file with the same code as `tocsin check`.

use std::path::{Path, PathBuf};

use tocsin::config::{self, FileKind, Source};
use tocsin::diag::{Diagnostic, Severity, render_text};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every YAML file under the shipped folders, sorted.
fn yaml_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = ["rules", "receivers", "examples", "tests/rules", "tests/spec"]
        .iter()
        .map(|d| root().join(d))
        .filter(|d| d.is_dir())
        .collect();
    if root().join("tocsin.yaml").is_file() {
        out.push(root().join("tocsin.yaml"));
    }
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn source(p: &Path) -> Source {
    Source::new(&p.to_string_lossy(), std::fs::read(p).unwrap()).unwrap()
}

fn show(diags: &[Diagnostic]) -> String {
    render_text(diags, &|f: &str| std::fs::read_to_string(f).ok())
}

#[test]
fn every_shipped_rule_test_passes() {
    let tests: Vec<PathBuf> = yaml_files()
        .into_iter()
        .filter(|p| config::detect_kind(&source(p)) == Some(FileKind::Test))
        .collect();
    assert!(tests.len() >= 2, "expected shipped rule tests, found {tests:?}");
    let mut problems = String::new();
    let mut cases = 0;
    for p in &tests {
        let name = p.to_string_lossy().into_owned();
        let test = config::parse_test(&source(p)).unwrap_or_else(|d| panic!("{}", show(&d)));
        let r = tocsin::ruletest::run_file(&name, &test, &tocsin::cli::DiskFiles, None);
        if r.diagnostics.iter().any(|d| d.severity == Severity::Error) {
            problems += &show(&r.diagnostics);
        }
        assert!(
            !r.cases.is_empty() || !r.diagnostics.is_empty(),
            "{name} has no test case"
        );
        for c in &r.cases {
            cases += 1;
            for f in &c.failures {
                problems += &format!("{name}: {}\n{f}\n", c.name);
            }
        }
    }
    assert!(problems.is_empty(), "{problems}");
    assert!(cases >= 2);
}

/// The policy sets shipped in the repository, each checked on its own as an operator would
/// (`tocsin check rules receivers tests/rules` in its folder): the default policy, the contract
/// fixtures, and every example (except `examples/ci`, which holds a GitHub workflow).
fn policy_sets() -> Vec<PathBuf> {
    let mut sets = vec![root(), root().join("tests/spec")];
    for e in std::fs::read_dir(root().join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "ci") {
            sets.push(p);
        }
    }
    sets.sort();
    sets
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = yaml_files().into_iter().filter(|p| p.starts_with(dir)).collect();
    // The default policy's set is the top-level folders, not the fixtures and examples below.
    if dir == root() {
        out.retain(|p| {
            ["rules", "receivers", "tests/rules", "tocsin.yaml"]
                .iter()
                .any(|d| p.starts_with(root().join(d)))
        });
    }
    out
}

#[test]
fn every_shipped_policy_checks_clean() {
    for set in policy_sets() {
        let files = files_under(&set);
        assert!(!files.is_empty(), "{} holds no YAML", set.display());
        let sources: Vec<Source> = files.iter().map(|p| source(p)).collect();
        let mut diags = tocsin::check::check(&sources, &|_| None, &tocsin::cli::DiskFiles);
        // The verbatim worked example feeds a disk series its memory rules never read:
        // exactly that one warning is expected of it.
        if set == root().join("tests/spec") {
            let before = diags.len();
            diags.retain(|d| !(d.code == "unread-series" && d.message.contains("`disk_used_percent{mount=\"/\"}`")));
            assert_eq!(before - diags.len(), 1, "{}", show(&diags));
        }
        assert!(diags.is_empty(), "{}", show(&diags));
    }
}
