//! Property tests: no input makes the loaders or the renderers panic.

use proptest::prelude::*;
use tocsin::config::*;
use tocsin::diag::{Diagnostic, render_github, render_json, render_text};

fn env(name: &str) -> Option<String> {
    name.len().is_multiple_of(2).then(|| format!("v{name}"))
}

/// Runs every loader on `source` and renders whatever they report.
fn load_everything(source: &Source) {
    let _ = detect_kind(source);
    let mut diags: Vec<Diagnostic> = Vec::new();
    diags.extend(parse_rules(source).err().into_iter().flatten());
    diags.extend(parse_receivers(source, &env).err().into_iter().flatten());
    diags.extend(parse_config(source, &env).err().into_iter().flatten());
    diags.extend(parse_test(source).err().into_iter().flatten());
    diags.extend(parse_any(source, &env).err().into_iter().flatten());
    let text = source.text().to_string();
    let _ = render_text(&diags, &|_| Some(text.clone()));
    let _ = render_json(&diags);
    let _ = render_github(&diags);
}

fn spec_files() -> Vec<String> {
    [
        "spec-rules.yaml",
        "spec-receivers.yaml",
        "spec-config.yaml",
        "spec-test.yaml",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(format!("{}/tests/fixtures/config/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap())
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        match Source::new("fuzz.yaml", bytes) {
            Ok(source) => load_everything(&source),
            Err(d) => prop_assert!(d.line >= 1),
        }
    }

    #[test]
    fn yaml_like_text_never_panics(text in "([-a-z_:{},\\[\\]&*!|>'\" \n#%@.0-9$~]|groups|receivers|rules|tiers|name|expr|\\$\\{|:-|\n  ){0,120}") {
        load_everything(&Source::from_text("fuzz.yaml", text).unwrap());
    }

    #[test]
    fn edited_spec_files_never_panic(file in 0usize..4, at in any::<prop::sample::Index>(), cut in 0usize..40, insert in "[-a-z:{}\\[\\] \n&*$]{0,8}") {
        let original = &spec_files()[file];
        let mut start = at.index(original.len());
        while !original.is_char_boundary(start) { start -= 1; }
        let mut end = (start + cut).min(original.len());
        while !original.is_char_boundary(end) { end -= 1; }
        let edited = format!("{}{}{}", &original[..start], insert, &original[end..]);
        load_everything(&Source::from_text("edited.yaml", edited).unwrap());
    }
}
