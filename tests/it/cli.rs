//! The `tocsin` binary as users run it: exit codes, output formats and the test runner's
//! reports, against real files.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::tocsin_in;

fn tocsin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("tocsin runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const BAD_RULES: &str = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rat(cpu, \"5m\") > 1\n";

#[test]
fn check_exit_codes_follow_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.yaml",
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: cpu > 1\n",
    );
    let bad = write(dir.path(), "bad.yaml", BAD_RULES);
    assert_eq!(tocsin(&["check", good.to_str().unwrap()]).status.code(), Some(0));
    let o = tocsin(&["check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("bad.yaml:5:15"), "{text}");
    assert!(text.contains("expr: rat(cpu"), "quotes the line: {text}");
    assert!(text.contains('^'), "{text}");
    assert!(text.contains("did you mean `rate`?"), "{text}");
    assert_eq!(tocsin(&["check", "/nonexistent/tocsin"]).status.code(), Some(2));
    assert_eq!(
        tocsin(&["check", "--format", "xml", good.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn check_reports_every_file_in_json_and_github_formats() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", BAD_RULES);
    write(
        dir.path(),
        "b.yml",
        "groups:\n  - name: g\n    rules:\n      - alert: B\n        expr: m\n        tierz: []\n",
    );
    write(dir.path(), "notes.txt", "not yaml, not read");
    let o = tocsin(&["check", "--format", "json", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON output");
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    for d in list {
        for key in ["file", "line", "column", "severity", "code", "message", "hint"] {
            assert!(d.get(key).is_some(), "{key} missing in {d}");
        }
    }
    assert!(list.iter().any(|d| d["code"] == "unknown-key" && d["line"] == 6));
    let o = tocsin(&["check", "--format", "github", dir.path().to_str().unwrap()]);
    let text = stdout(&o);
    assert!(
        text.lines()
            .any(|l| l.starts_with("::error file=") && l.contains("line=5,col=15")),
        "{text}"
    );
}

#[test]
fn check_warns_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "r.yaml",
        "receivers:\n  - name: a\n    console: {}\n  - name: lonely\n    console: {}\nroutes:\n  - receivers: [a]\n",
    );
    let o = tocsin(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("no route reaches receiver `lonely`"),
        "{}",
        stdout(&o)
    );
    write(
        dir.path(),
        "r.yaml",
        "receivers:\n  - name: a\n    console: {}\nroutes:\n  - receivers: [b]\n",
    );
    let o = tocsin(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("route names receiver `b`"), "{}", stdout(&o));
}

#[test]
fn test_runs_the_spec_example_and_instance_semantics() {
    let o = tocsin(&[
        "test",
        "tests/spec/tests/rules/memory_test.yaml",
        "tests/fixtures/engine/engine_test.yaml",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).ends_with("2 passed, 0 failed\n"), "{}", stdout(&o));
}

#[test]
fn a_failing_test_shows_a_diff_and_exits_1_and_junit_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let test = write(
        dir.path(),
        "t.yaml",
        &format!(
            "rule_files: [{root}/tests/spec/rules/memory.yaml]\nevaluation_interval: 15s\ntests:\n  - name: wrong\n    interval: 1m\n    input_series:\n      - {{ series: mem_used_percent, values: '60 72x10' }}\n    alerts:\n      - {{ at: 6m, firing: [] }}\n  - name: right\n    interval: 1m\n    input_series:\n      - {{ series: mem_used_percent, values: '60x10' }}\n    alerts:\n      - {{ at: 6m, firing: [] }}\n"
        ),
    );
    let junit = dir.path().join("report.xml");
    let o = tocsin(&["test", test.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("FAIL") && text.contains("wrong"), "{text}");
    assert!(text.contains("at 6m: the firing alerts differ"), "{text}");
    assert!(text.contains("+ {alertname=\"MemoryPressure\""), "{text}");
    assert!(text.contains("1 passed, 1 failed"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
    assert!(
        xml.contains("<testcase name=\"wrong\"") && xml.contains("<failure"),
        "{xml}"
    );
    // --run selects by name.
    let o = tocsin(&["test", test.to_str().unwrap(), "--run", "^right$"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("1 passed, 0 failed"));
}

#[test]
fn receiver_files_put_routes_groups_and_inhibition_under_test() {
    let o = tocsin(&["test", "tests/rules/routing_test.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).ends_with("1 passed, 0 failed\n"), "{}", stdout(&o));
    assert_eq!(
        tocsin(&["check", "tests/rules/routing_test.yaml"]).status.code(),
        Some(0)
    );

    // A wrong receiver fails with a diff that names receivers.
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let original = std::fs::read_to_string(Path::new(root).join("tests/rules/routing_test.yaml")).unwrap();
    let absolute = original.replace("../fixtures/", &format!("{root}/tests/fixtures/"));
    let wrong = write(
        dir.path(),
        "wrong.yaml",
        &absolute.replace("receiver: audit", "receiver: pager"),
    );
    let o = tocsin(&["test", wrong.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("- at     3m  pager"), "{text}");
    assert!(text.contains("+ at     3m  audit"), "{text}");

    // With receiver files, an expectation without `receiver` is a located error.
    let unnamed = write(dir.path(), "unnamed.yaml", &absolute.replace("receiver: audit, ", ""));
    let o = tocsin(&["test", unnamed.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("unnamed.yaml:38:11"), "{text}");
    assert!(
        text.contains("every expected notification names its `receiver`"),
        "{text}"
    );
    assert_eq!(tocsin(&["check", unnamed.to_str().unwrap()]).status.code(), Some(1));
}

#[test]
fn malformed_test_input_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let test = write(
        dir.path(),
        "t.yaml",
        &format!(
            "rule_files: [{root}/tests/spec/rules/memory.yaml]\ntests:\n  - name: bad\n    input_series:\n      - {{ series: 'm{{a=\"1\"', values: '1 2 x3' }}\n"
        ),
    );
    let o = tocsin(&["test", test.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("t.yaml:5:") && text.contains("invalid series"), "{text}");
    assert!(text.contains("invalid values"), "{text}");
    // check validates test files the same way, without running them.
    assert_eq!(tocsin(&["check", test.to_str().unwrap()]).status.code(), Some(1));
}

#[test]
fn schema_prints_the_checked_in_schema() {
    for kind in ["rules", "receivers", "config", "test"] {
        let o = tocsin(&["schema", kind]);
        assert_eq!(o.status.code(), Some(0));
        let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let file =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{kind}.schema.json")))
                .unwrap();
        assert_eq!(
            printed,
            serde_json::from_str::<serde_json::Value>(&file).unwrap(),
            "{kind}"
        );
        assert_eq!(printed["$schema"], "http://json-schema.org/draft-07/schema#");
    }
}

#[test]
fn check_and_run_reject_a_bare_port_as_listen_at_the_same_place() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "tocsin.yaml",
        "listen: 9999\ndata_dir: data/\nrules: []\nreceivers: []\nsources: { system: ~ }\n",
    );
    let o = tocsin(&["check", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("tocsin.yaml:1:9"), "{}", stdout(&o));
    assert!(stdout(&o).contains("127.0.0.1:9999"), "{}", stdout(&o));
    let o = tocsin_in(dir.path(), &["run", "-c", "tocsin.yaml"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("tocsin.yaml:1:9"), "run: {}", stderr(&o));
    assert!(
        !dir.path().join("data").exists(),
        "run stopped before opening the store"
    );
}

#[test]
fn check_with_nothing_to_check_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = tocsin(&["check", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no *.yaml or *.yml file"), "{}", stderr(&o));
    // Files under a hidden directory (`.git`) are not policy files.
    common::write(&empty, ".git/config.yaml", "groups: []\n");
    assert_eq!(tocsin(&["check", empty.to_str().unwrap()]).status.code(), Some(2));
    let o = tocsin(&["check", dir.path().join("typo").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    // No argument and none of the default paths: nothing to check either.
    let o = tocsin_in(&empty, &["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to check"), "{}", stderr(&o));
    // One good directory does not hide an empty one named next to it.
    let good = write(dir.path(), "good.yaml", "groups: []\n");
    let o = tocsin(&["check", good.to_str().unwrap(), empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn check_searches_directories_recursively_skipping_hidden_ones() {
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "team/a/deep.yaml", BAD_RULES);
    common::write(dir.path(), ".git/ignored.yaml", "not: [a, tocsin, file\n");
    let o = tocsin(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("deep.yaml:5:"), "{text}");
    assert!(!text.contains("ignored.yaml"), "{text}");
    assert!(stderr(&o).contains("checked 1 file(s)"), "{}", stderr(&o));
}

#[test]
fn a_misspelt_key_in_tocsin_yaml_gets_the_hint_run_gives() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "tocsin.yaml", "listne: 127.0.0.1:9470\n");
    let o = tocsin(&["check", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("tocsin.yaml:1:1"), "{}", stdout(&o));
    assert!(stdout(&o).contains("did you mean `listen`?"), "{}", stdout(&o));
    let o = tocsin_in(dir.path(), &["run", "-c", "tocsin.yaml"]);
    assert!(stderr(&o).contains("did you mean `listen`?"), "run: {}", stderr(&o));
    // Named otherwise, a file whose keys are mostly engine keys is an engine config too.
    let other = write(
        dir.path(),
        "engine.yaml",
        "data_dir: data/\nevaluation_interval: 1m\nlistne: 127.0.0.1:9470\n",
    );
    let o = tocsin(&["check", other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("engine.yaml:3:1"), "{}", stdout(&o));
    assert!(stdout(&o).contains("did you mean `listen`?"), "{}", stdout(&o));
}

#[test]
fn special_files_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let fifo = rules.join("fifo.yaml");
    let st = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(st.success());
    std::os::unix::fs::symlink("loop.yaml", rules.join("loop.yaml")).unwrap();
    // Named one by one and found in a directory, each is an error that says what it is,
    // and nothing blocks on the FIFO.
    let cases = [
        (fifo.to_str().unwrap(), "is a FIFO"),
        ("/dev/zero", "is a character device"),
        (
            rules.join("loop.yaml").to_str().unwrap().to_string().leak(),
            "symbolic links",
        ),
    ];
    for (path, what) in cases {
        let o = tocsin_in(dir.path(), &["check", path]);
        assert_eq!(o.status.code(), Some(1), "{path}: {}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains(what), "{path}: {}", stdout(&o));
        assert!(!stdout(&o).contains("no such file"), "{path}: {}", stdout(&o));
    }
    let o = tocsin_in(dir.path(), &["check", "rules"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("fifo.yaml") && stdout(&o).contains("is a FIFO"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("loop.yaml") && stdout(&o).contains("symbolic links"),
        "{}",
        stdout(&o)
    );
    // A directory where a file is expected (a test file's `rule_files`).
    std::fs::create_dir(dir.path().join("dir.yaml")).unwrap();
    let test = write(dir.path(), "t.yaml", "rule_files: [dir.yaml]\ntests: []\n");
    let o = tocsin_in(dir.path(), &["check", test.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("is a directory"), "{}", stdout(&o));
}

#[test]
fn an_expression_error_puts_its_caret_on_the_offending_character() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "r.yaml",
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: mem_used_percent > 90 && rat(cpu, \"5m\") > 1\n\
         \x20     - alert: B\n        expr: 'mem > 1 && it''s'\n      - alert: C\n        expr: |\n          mem > 1\n            && cpu >>= 2\n",
    );
    let o = tocsin(&["check", rules.to_str().unwrap()]);
    let text = stdout(&o);
    assert!(
        text.contains("at character 26") && text.contains("r.yaml:5:40"),
        "{text}"
    );
    assert!(
        text.contains("at character 12") && text.contains("r.yaml:7:27"),
        "{text}"
    );
    // A literal block scalar: the second line's `>` of `>>=`.
    assert!(
        text.contains("at character 18") && text.contains("r.yaml:11:20"),
        "{text}"
    );
    assert!(text.contains("5 |         expr: mem_used_percent > 90 && rat(cpu, \"5m\") > 1\n  |                                        ^"), "{text}");
}
