//! The checked-in JSON Schemas (`schemas/*.schema.json`) against the types they are
//! generated from, and every YAML file of the repository against its schema.
//!
//! `TOCSIN_BLESS=1 cargo test --test it schemas` rewrites the schema files.

use std::path::{Path, PathBuf};

use tocsin::config::{FileKind, Source, detect_kind, parse_any, schema};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema_path(kind: FileKind) -> PathBuf {
    root().join("schemas").join(format!("{}.schema.json", kind.name()))
}

fn generated(kind: FileKind) -> String {
    let mut text = serde_json::to_string_pretty(&schema(kind)).expect("schema serializes");
    text.push('\n');
    text
}

#[test]
fn checked_in_schemas_match_the_types() {
    let bless = std::env::var_os("TOCSIN_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for kind in FileKind::ALL {
        let path = schema_path(kind);
        let want = generated(kind);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "these schemas differ from the ones generated from the Rust types: {stale:?}\n\
         run `TOCSIN_BLESS=1 cargo test --test it schemas` to regenerate them, and commit the result"
    );
}

/// Compiles the four schemas.
fn compile() -> (boon::Schemas, Vec<(FileKind, boon::SchemaIndex)>) {
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let mut indexes = Vec::new();
    for kind in FileKind::ALL {
        let url = format!("https://tocsin.invalid/{}.schema.json", kind.name());
        compiler.add_resource(&url, schema(kind)).unwrap();
        indexes.push((kind, compiler.compile(&url, &mut schemas).unwrap()));
    }
    (schemas, indexes)
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// YAML → JSON value, the way an editor's language server sees the file.
fn as_json(source: &Source) -> serde_json::Value {
    serde_saphyr::from_str(source.text()).expect("a file that loads is valid YAML")
}

fn echo_env(name: &str) -> Option<String> {
    // URLs are checked after substitution, so `*_URL` variables hold one.
    if name.ends_with("_URL") {
        Some(format!("https://hooks.example.com/<{name}>"))
    } else {
        Some(format!("<{name}>"))
    }
}

/// Every YAML file the loader accepts must also satisfy its schema, or editors would flag
/// files that `tocsin check` passes. Files the loader rejects (deliberately broken
/// fixtures) are skipped, except this module's own valid fixtures, which must load.
#[test]
fn every_yaml_file_in_the_repository_validates_against_its_schema() {
    let (schemas, indexes) = compile();
    let mut files = Vec::new();
    for dir in ["rules", "receivers", "examples", "tests"] {
        yaml_files(&root().join(dir), &mut files);
    }
    if root().join("tocsin.yaml").exists() {
        files.push(root().join("tocsin.yaml"));
    }
    files.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in &files {
        let shown = path.strip_prefix(root()).unwrap().display().to_string();
        let must_load = shown.starts_with("tests/fixtures/config/")
            && !shown.contains("/invalid/")
            && !shown.ends_with("valid-empty.yaml");
        let Ok(source) = Source::new(&shown, std::fs::read(path).unwrap()) else {
            continue;
        };
        let kind = detect_kind(&source).or((shown.ends_with("tocsin.yaml")).then_some(FileKind::Config));
        let Some(kind) = kind else {
            assert!(!must_load, "{shown}: kind not detected");
            continue;
        };
        if let Err(diags) = parse_any(&source, &echo_env) {
            assert!(!must_load, "{shown} does not load: {diags:#?}");
            continue;
        }
        let index = indexes.iter().find(|(k, _)| *k == kind).unwrap().1;
        if let Err(err) = schemas.validate(&as_json(&source), index) {
            failures.push(format!("{shown} ({}): {err:#}", kind.name()));
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "files that load but fail their schema:\n{}",
        failures.join("\n")
    );
    assert!(checked >= 6, "only {checked} files checked");
}

/// The schemas are as strict as the loader on keys, durations and shapes.
#[test]
fn schemas_reject_what_the_loader_rejects() {
    let (schemas, indexes) = compile();
    let rules = indexes[0].1;
    for yaml in [
        "groups:\n  - name: m\n    rules:\n      - alert: A\n        expr: x\n        severty: high\n",
        "groups:\n  - name: m\n    interval: 15\n",
        "groups:\n  - name: m\n    rules:\n      - alert: A\n",
        "groups:\n  - name: m\n    rules:\n      - { alert: A, expr: x, no_data: maybe }\n",
    ] {
        let value: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
        assert!(schemas.validate(&value, rules).is_err(), "schema accepts:\n{yaml}");
    }
    let receivers = indexes[1].1;
    let value: serde_json::Value =
        serde_saphyr::from_str("receivers:\n  - name: c\n    console: { verbose: true }\n").unwrap();
    assert!(schemas.validate(&value, receivers).is_err());
}
