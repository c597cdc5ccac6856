//! Runs every rule unit-test file shipped in the repository (the default policy's, the
//! examples' and the SPEC fixtures') through the same runner as `tocsin test`, and checks
//! every shipped YAML file with the same code as `tocsin check`.

use std::path::{Path, PathBuf};

use tocsin::config::{self, FileKind, RuleFile, Source};
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

fn load(p: &str) -> Result<RuleFile, Vec<Diagnostic>> {
    let bytes = std::fs::read(p).map_err(|e| vec![Diagnostic::error(p, 0, 0, "io", e.to_string())])?;
    config::parse_rules(&Source::new(p, bytes).map_err(|d| vec![d])?)
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
        let r = tocsin::ruletest::run_file(&name, &test, &load, None);
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

#[test]
fn every_shipped_file_checks_clean() {
    let sources: Vec<Source> = yaml_files().iter().map(|p| source(p)).collect();
    let diags = tocsin::check::check(&sources, &|_| None, &load);
    let errors: Vec<Diagnostic> = diags.into_iter().filter(|d| d.severity == Severity::Error).collect();
    assert!(errors.is_empty(), "{}", show(&errors));
}
