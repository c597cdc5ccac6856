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

/// `expr: <encoded>` parsed by the real parser: the value and where it starts.
fn parse_expr(yaml: &str) -> Sp<String> {
    let map: std::collections::BTreeMap<String, Sp<String>> = serde_saphyr::from_str(yaml).expect("valid YAML");
    map["expr"].clone()
}

/// The character at a 1-based `line:column` of `text`.
fn char_at(text: &str, (line, column): (u64, u64)) -> Option<char> {
    text.split('\n')
        .nth(line as usize - 1)?
        .chars()
        .nth(column as usize - 1)
}

/// The double-quoted YAML form of `value`, escaping what must be escaped.
fn double_quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            'é' => out.push_str("\\u00e9"),
            c => out.push(c),
        }
    }
    out + "\""
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every character of a scalar's value maps to the source character that produced it,
    /// whatever the quoting style: itself, the first `'` of `''`, or the `\` of an escape.
    #[test]
    fn value_offsets_map_to_the_characters_that_produced_them(
        value in "[a-z0-9 ()>&|'\"\\\\\té]{1,30}",
        style in 0usize..4,
    ) {
        let trimmed = value.trim().to_string();
        let (yaml, value) = match style {
            0 => (format!("expr: '{}'\n", value.replace('\'', "''")), value.clone()),
            1 => (format!("expr: {}\n", double_quoted(&value)), value.clone()),
            2 => (format!("expr: |\n  {}\n  {}\n", trimmed, trimmed), format!("{trimmed}\n{trimmed}\n")),
            _ => {
                // A plain scalar cannot start with an indicator or hold `: `, ` #`, `'` or `"`.
                let plain: String = trimmed.chars().filter(|c| c.is_ascii_alphanumeric() || *c == ' ').collect();
                let plain = plain.trim().to_string();
                prop_assume!(!plain.is_empty());
                (format!("expr: {plain}\n"), plain)
            }
        };
        prop_assume!(style != 2 || !trimmed.is_empty() && !trimmed.starts_with(['\t', '#']));
        let sp = parse_expr(&yaml);
        prop_assert_eq!(&sp.value, &value, "{}", yaml);
        for (i, c) in value.chars().enumerate() {
            let at = scalar_position(&yaml, sp.line(), sp.column(), i);
            let found = char_at(&yaml, at).unwrap_or('\n');
            let escaped = style == 1 && matches!(c, '"' | '\\' | '\t' | 'é');
            let expected = if escaped { '\\' } else { c };
            prop_assert_eq!(found, expected, "offset {} of {:?} in {:?} -> {:?}", i, value, yaml, at);
        }
    }
}
