//! Loading: bytes → [`Source`] → typed file, or located [`Diagnostic`]s.
//!
//! Pure: no file or environment access. YAML is parsed by serde-saphyr under explicit
//! resource limits (alias expansion, depth, node and event counts), so a hostile file yields
//! an error quickly instead of a hang, a panic or a stack overflow.

use serde::de::DeserializeOwned;
use serde_saphyr::{DuplicateKeyPolicy, Error as YamlError, NonFiniteFloatPolicy, Options};

use super::env::{self, EnvError};
use super::receivers::KIND_HINT;
use super::validate::{self, HeaderAt};
use super::{EngineConfig, Env, Parsed, ReceiverDef, ReceiverFile, ReceiverKindDef, RuleFile, Sp, TestFile};
use super::{plain, walk};
use crate::diag::Diagnostic;

/// Largest file tocsin reads: policy files are small, and the cap bounds parse time.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Nesting depth limit; the deepest legitimate path (a header of a webhook action in a rule)
/// is 9 levels.
const MAX_DEPTH: usize = 32;

/// A YAML input file: its path as the user named it and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    path: String,
    text: String,
}

impl Source {
    /// Checks size and encoding of a file's bytes. A UTF-8 byte-order mark is dropped.
    pub fn new(path: &str, bytes: Vec<u8>) -> Result<Source, Diagnostic> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(Diagnostic::error(
                path,
                0,
                0,
                "too-large",
                format!(
                    "file is {} bytes; tocsin reads files up to {} bytes (4 MiB)",
                    bytes.len(),
                    MAX_FILE_BYTES
                ),
            )
            .with_hint("split it into several files"));
        }
        let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) => rest.to_vec(),
            None => bytes,
        };
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Source {
                path: path.to_string(),
                text,
            }),
            Err(err) => {
                let bytes = err.as_bytes();
                let valid = err.utf8_error().valid_up_to();
                let before = &bytes[..valid];
                let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
                let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                // `before` is valid UTF-8, so its characters can be counted for the column.
                let column = String::from_utf8_lossy(&before[line_start..]).chars().count() as u64 + 1;
                Err(Diagnostic::error(
                    path,
                    line,
                    column,
                    "encoding",
                    format!("file is not valid UTF-8 (byte offset {valid})"),
                )
                .with_hint("save the file as UTF-8"))
            }
        }
    }

    /// A source from text already in memory (tests, `--stdin`).
    pub fn from_text(path: &str, text: impl Into<String>) -> Result<Source, Diagnostic> {
        Source::new(path, text.into().into_bytes())
    }

    /// The path as the user named it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The four kinds of YAML file tocsin reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// `rules/*.yaml`.
    Rules,
    /// `receivers/*.yaml`.
    Receivers,
    /// `tocsin.yaml`.
    Config,
    /// Rule unit tests.
    Test,
}

impl FileKind {
    /// Every kind, in a stable order.
    pub const ALL: [FileKind; 4] = [FileKind::Rules, FileKind::Receivers, FileKind::Config, FileKind::Test];

    /// The kind's name as `tocsin schema` takes it and `schemas/<name>.schema.json` uses it.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Rules => "rules",
            FileKind::Receivers => "receivers",
            FileKind::Config => "config",
            FileKind::Test => "test",
        }
    }
}

/// Top-level keys of tocsin.yaml that no other kind has.
const CONFIG_ONLY_KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "evaluation_interval",
    "history_retention",
    "history_resolution",
    "staleness",
    "api_token",
    "sources",
];

/// Tells a file's kind by its top-level keys: `tests`/`rule_files`/`receiver_files` → test,
/// `groups` → rules, `routes`/`inhibit_rules` or a `receivers` list of mappings → receivers,
/// other tocsin.yaml keys (including `rules`/`receivers` as lists of paths) → config.
/// `None` for an empty file, a file that is not a YAML mapping, or one with none of these keys.
pub fn detect_kind(source: &Source) -> Option<FileKind> {
    detect(source).ok().flatten()
}

/// The kind from the block-style top-level keys alone (`key:` at column 0), when they
/// decide it. Parsing a large rule file into a generic value just to read its first key
/// cost a third of `tocsin check`; the typed parse that follows reports any YAML error.
/// Flow-style documents and the ambiguous `receivers:` (a receiver file's definitions or
/// tocsin.yaml's paths) fall back to the full parse.
fn detect_by_top_level_keys(text: &str) -> Option<FileKind> {
    let mut kind = None;
    for line in text.lines() {
        let Some(first) = line.chars().next() else { continue };
        if first.is_whitespace() || first == '#' || first == '-' || line.starts_with("...") {
            continue;
        }
        let key = line.split(':').next().unwrap_or("").trim();
        let k = match key {
            "tests" | "rule_files" | "receiver_files" => FileKind::Test,
            "groups" => FileKind::Rules,
            "routes" | "inhibit_rules" => FileKind::Receivers,
            _ => continue,
        };
        // Test files win over everything they may also contain; otherwise the first decides.
        if k == FileKind::Test {
            return Some(k);
        }
        kind = kind.or(Some(k));
    }
    kind
}

/// [`detect_kind`], keeping the YAML error of a file that does not parse.
fn detect(source: &Source) -> Result<Option<FileKind>, YamlError> {
    if is_blank(&source.text) {
        return Ok(None);
    }
    if let Some(kind) = detect_by_top_level_keys(&source.text) {
        return Ok(Some(kind));
    }
    // Non-finite floats are read as strings here: the kind must still be found so that the
    // typed parse can report them with their location.
    let mut opts = options();
    opts.non_finite_float_policy = NonFiniteFloatPolicy::AsString;
    let top = serde_saphyr::from_str_with_options::<serde_json::Value>(&source.text, opts)?;
    let serde_json::Value::Object(top) = top else {
        return Ok(None);
    };
    let has = |key: &str| top.contains_key(key);
    if has("tests") || has("rule_files") || has("receiver_files") {
        return Ok(Some(FileKind::Test));
    }
    if has("groups") {
        return Ok(Some(FileKind::Rules));
    }
    let receivers_are_defs = match top.get("receivers") {
        Some(serde_json::Value::Array(items)) => items.iter().any(serde_json::Value::is_object),
        _ => false,
    };
    if has("routes") || has("inhibit_rules") || receivers_are_defs {
        return Ok(Some(FileKind::Receivers));
    }
    if has("rules") || has("receivers") || CONFIG_ONLY_KEYS.iter().any(|k| has(k)) {
        return Ok(Some(FileKind::Config));
    }
    // A misspelt key must get the engine config's "did you mean" (as `run` gives it), not
    // "cannot tell": a file named tocsin.yaml is the engine config, and so is one whose keys
    // are mostly engine keys.
    let config_keys = top_level_keys(FileKind::Config);
    let known = top.keys().filter(|k| config_keys.contains(k.as_str())).count();
    if is_engine_config_name(&source.path) || (known > 0 && 2 * known > top.len()) {
        return Ok(Some(FileKind::Config));
    }
    Ok(None)
}

/// Whether the file is named like the engine config, `tocsin.yaml` or `tocsin.yml`.
fn is_engine_config_name(path: &str) -> bool {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    matches!(name, "tocsin.yaml" | "tocsin.yml")
}

/// The top-level keys a kind of file takes, read from its schema so that they cannot drift
/// from the types.
fn top_level_keys(kind: FileKind) -> std::collections::BTreeSet<String> {
    super::schema(kind)
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

/// For a file whose kind cannot be told: the known top-level key closest to one of its
/// keys, with that key's position, when it is close enough to be a typo.
fn misspelt_top_level_key(source: &Source) -> Option<(u64, String, &'static str)> {
    let known: Vec<(String, FileKind)> = FileKind::ALL
        .into_iter()
        .flat_map(|k| top_level_keys(k).into_iter().map(move |key| (key, k)))
        .collect();
    let names: Vec<&str> = known.iter().map(|(k, _)| k.as_str()).collect();
    source.text.lines().enumerate().find_map(|(i, line)| {
        let (key, _) = line.split_once(':')?;
        if key.is_empty() || key.starts_with(|c: char| c.is_whitespace() || c == '#' || c == '-') {
            return None;
        }
        let best = suggest(key.trim(), &names)?;
        let kind = known
            .iter()
            .find(|(k, _)| k == best)
            .map_or("", |(_, kind)| kind.name());
        Some((i as u64 + 1, best.to_string(), kind))
    })
}

/// A parsed file of any kind.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyFile {
    /// A rule file.
    Rules(RuleFile),
    /// A receivers file.
    Receivers(ReceiverFile),
    /// tocsin.yaml.
    Config(Box<EngineConfig>),
    /// A rule test file.
    Test(TestFile),
}

/// Detects the kind of `source` and parses it; a file whose kind cannot be told yields its
/// YAML error, or a `kind` diagnostic naming the keys that tell kinds apart.
pub fn parse_any(source: &Source, env: Env<'_>) -> Parsed<AnyFile> {
    match detect(source) {
        Ok(Some(FileKind::Rules)) => parse_rules(source).map(AnyFile::Rules),
        Ok(Some(FileKind::Receivers)) => parse_receivers(source, env).map(AnyFile::Receivers),
        Ok(Some(FileKind::Config)) => parse_config(source, env).map(|c| AnyFile::Config(Box::new(c))),
        Ok(Some(FileKind::Test)) => parse_test(source).map(AnyFile::Test),
        Err(err) => Err(vec![yaml_diagnostic(source, &err)]),
        Ok(None) => {
            let diag = match misspelt_top_level_key(source) {
                Some((line, best, kind)) => {
                    Diagnostic::error(&source.path, line, 1, "kind", "cannot tell what kind of tocsin file this is")
                        .with_hint(format!("did you mean `{best}`? (a key of {kind} files)"))
                }
                None => Diagnostic::error(&source.path, 0, 0, "kind", "cannot tell what kind of tocsin file this is")
                    .with_hint("a rule file has `groups:`, a receivers file `receivers:`/`routes:`, a test file `tests:`; tocsin.yaml has engine keys such as `listen:`"),
            };
            Err(vec![diag])
        }
    }
}

/// Parses a rule file. An empty file is a file without groups.
pub fn parse_rules(source: &Source) -> Parsed<RuleFile> {
    let file: RuleFile = parse(source, FileKind::Rules)?;
    let mut diags = non_finite_numbers(&source.path, &file);
    diags.extend(action_webhooks(&source.path, &file));
    if diags.is_empty() { Ok(file) } else { Err(diags) }
}

/// Action webhooks' URLs and headers, as the HTTP client will need them. Their headers keep
/// no position, so they are reported at the webhook's `url`.
fn action_webhooks(path: &str, file: &RuleFile) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let hooks = file
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .flat_map(|r| &r.actions)
        .filter_map(|a| a.webhook.as_ref());
    for hook in hooks {
        diags.extend(validate::sp_url(path, "url", &hook.url));
        let at = (hook.url.line(), hook.url.column());
        for (name, value) in &hook.headers {
            diags.extend(validate::header(
                path,
                name,
                value,
                false,
                HeaderAt { name: at, value: at },
            ));
        }
    }
    diags
}

/// serde-saphyr rejects `.nan`/`.inf` only where the type is not known; typed `f64` fields
/// take them, so thresholds and factors are checked here, at their own position.
fn non_finite_numbers(path: &str, file: &RuleFile) -> Vec<Diagnostic> {
    let mut numbers: Vec<(&str, &Sp<f64>)> = Vec::new();
    for rule in file.groups.iter().flat_map(|g| &g.rules) {
        numbers.extend(rule.hysteresis.iter().map(|n| ("hysteresis", n)));
        numbers.extend(rule.repeat_backoff.iter().map(|n| ("repeat_backoff", n)));
        for tier in rule.tiers.iter().flatten() {
            numbers.extend(tier.above.iter().map(|n| ("above", n)));
            numbers.extend(tier.below.iter().map(|n| ("below", n)));
            numbers.extend(tier.clear.iter().map(|n| ("clear", n)));
        }
    }
    numbers
        .into_iter()
        .filter(|(_, n)| !n.value.is_finite())
        .map(|(key, n)| {
            Diagnostic::error(
                path,
                n.line(),
                n.column(),
                "non-finite",
                format!("`{key}` must be a finite number, not {}", n.value),
            )
            .with_hint("thresholds and factors are ordinary numbers such as `90` or `2.5`")
        })
        .collect()
}

/// Parses a rule unit-test file. An empty file is a file without tests.
pub fn parse_test(source: &Source) -> Parsed<TestFile> {
    parse(source, FileKind::Test)
}

/// Parses a receivers file, substituting `${NAME}` / `${NAME:-default}` from `env`. That
/// each receiver has exactly one kind is the type's (`ReceiverDef`) to say.
pub fn parse_receivers(source: &Source, env: Env<'_>) -> Parsed<ReceiverFile> {
    let file: ReceiverFile = parse_with_env(source, env, FileKind::Receivers)?;
    let mut diags = Vec::new();
    for receiver in &file.receivers {
        diags.extend(delivery_settings(&source.path, receiver));
        diags.extend(receiver_endpoints(source, receiver));
    }
    if diags.is_empty() { Ok(file) } else { Err(diags) }
}

/// The receiver's delivery settings that must be positive: a budget of 0 sends nothing and
/// a cool-off of 0 is no breaker at all.
fn delivery_settings(path: &str, receiver: &ReceiverDef) -> Vec<Diagnostic> {
    let zero = |key: &str, line: u64, column: u64| {
        Diagnostic::error(
            path,
            line,
            column,
            "invalid-value",
            format!("`{key}` of receiver `{}` must be more than 0", receiver.name),
        )
    };
    let mut diags = Vec::new();
    if let Some(n) = receiver.max_in_flight.as_ref().filter(|n| ***n == 0) {
        diags.push(
            zero("max_in_flight", n.line(), n.column())
                .with_hint("1 sends one notification at a time; the default is 128"),
        );
    }
    for (key, value) in [
        ("breaker_cool_off", &receiver.breaker_cool_off),
        ("breaker_max_cool_off", &receiver.breaker_max_cool_off),
    ] {
        if let Some(d) = value.as_ref().filter(|d| d.0.is_zero()) {
            diags.push(zero(key, d.line(), d.column()).with_hint("write e.g. `1s` or `1m`"));
        }
    }
    diags
}

/// The URLs a receiver sends to and the headers it adds, checked as the HTTP client will
/// need them (after `${ENV}` substitution).
fn receiver_endpoints(source: &Source, receiver: &ReceiverDef) -> Vec<Diagnostic> {
    let path = source.path.as_str();
    let mut diags = Vec::new();
    for (key, url) in receiver.kind.urls() {
        diags.extend(validate::text_url(path, key, url));
    }
    if let ReceiverKindDef::Webhook(hook) = &receiver.kind {
        for (name, value) in &hook.headers {
            let value_at = (value.line(), value.column());
            let name_at = validate::key_position(&source.text, name, value.line(), value.column());
            let at = HeaderAt {
                name: name_at,
                value: value_at,
            };
            diags.extend(validate::header(path, name, value.expose(), value.is_secret(), at));
        }
    }
    if let ReceiverKindDef::Alertmanager(am) = &receiver.kind {
        diags.extend(super::receivers::alertmanager_endpoints(
            path,
            &source.text,
            am,
            &receiver.name,
        ));
    }
    diags
}

/// Parses tocsin.yaml, substituting `${NAME}` / `${NAME:-default}` from `env`. An empty file
/// is the default configuration; an empty `api_token` is unset.
pub fn parse_config(source: &Source, env: Env<'_>) -> Parsed<EngineConfig> {
    let mut config: EngineConfig = parse_with_env(source, env, FileKind::Config)?;
    if config.api_token.as_ref().is_some_and(|t| t.expose().is_empty()) {
        config.api_token = None;
    }
    let mut diags: Vec<Diagnostic> = validate::listen(&source.path, &config.listen).into_iter().collect();
    for target in &config.sources.scrape {
        diags.extend(validate::text_url(&source.path, "url", &target.url));
    }
    if let Some(url) = &config.external_url {
        diags.extend(validate::text_url(&source.path, "external_url", url));
    }
    for (name, value) in &config.external_labels {
        diags.extend(validate::external_label(&source.path, name, value));
    }
    diags.extend(super::engine::check_history_resolution(
        &source.path,
        &config.history_resolution,
    ));
    diags.extend(super::engine::validate_scale(&source.path, &source.text, &config));
    if diags.is_empty() { Ok(config) } else { Err(diags) }
}

/// The parser options: serde-saphyr's defaults (duplicate keys rejected, merge keys allowed)
/// with tighter budgets sized for policy files of at most [`MAX_FILE_BYTES`].
pub(super) fn options() -> Options {
    let budget = serde_saphyr::budget! {
        max_depth: MAX_DEPTH,
        flow_nesting_limit: MAX_DEPTH,
        max_documents: 1,
        max_events: 2_000_000,
        max_nodes: 1_000_000,
        max_aliases: 10_000,
        max_anchors: 10_000,
        max_total_scalar_bytes: 16 * 1024 * 1024,
        max_recorded_anchor_events: 100_000,
        max_recorded_anchor_bytes: 16 * 1024 * 1024,
        max_merge_keys: 10_000,
    };
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 100_000;
    alias_limits.max_replay_stack_depth = MAX_DEPTH;
    serde_saphyr::options! {
        budget: budget,
        duplicate_keys: DuplicateKeyPolicy::Error,
        non_finite_float_policy: NonFiniteFloatPolicy::Reject,
        alias_limits: alias_limits,
        with_snippet: false,
    }
}

/// Whether the text holds no YAML node: only blanks, comments and document markers.
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    })
}

/// The typed parse of a file of `kind`. When it fails, the error it stopped at comes with
/// every other structural error of the file (see [`walk`](super::walk)), in file order.
fn parse<T: DeserializeOwned>(source: &Source, kind: FileKind) -> Parsed<T> {
    let text = if is_blank(&source.text) {
        "{}"
    } else {
        source.text.as_str()
    };
    // Plain files are read by the quick reader; whatever it refuses, serde-saphyr reads
    // (and words the diagnostics of).
    let mark = env::errors_so_far();
    if let Some(value) = plain::from_str(text) {
        return Ok(value);
    }
    env::forget_since(mark);
    serde_saphyr::from_str_with_options(text, options()).map_err(|err| {
        let mut diags = vec![yaml_diagnostic(source, &err)];
        // As in detection, non-finite floats are read as strings: the typed parse locates them.
        let mut opts = options();
        opts.non_finite_float_policy = NonFiniteFloatPolicy::AsString;
        // Replaying aliases into the generic tree is costly: a file that needs more than
        // this keeps only its first error rather than making a failing check slow.
        opts.alias_limits.max_total_replayed_events = 1_000;
        for d in walk::structural_errors(&source.path, text, kind, opts) {
            // The first error is the typed parse's own, worded by it; the walk finds it too.
            if !diags.iter().any(|k| (k.line, k.column) == (d.line, d.column)) {
                diags.push(d);
            }
        }
        diags.sort_by_key(|d| (d.line, d.column));
        diags
    })
}

fn parse_with_env<T: DeserializeOwned>(source: &Source, env: Env<'_>, kind: FileKind) -> Parsed<T> {
    let (parsed, env_errors) = env::with_env(&source.text, env, || parse::<T>(source, kind));
    let mut diags: Vec<Diagnostic> = env_errors
        .into_iter()
        .map(|e| env_diagnostic(&source.path, e))
        .collect();
    match parsed {
        Ok(file) if diags.is_empty() => Ok(file),
        Ok(_) => Err(diags),
        Err(mut errs) => {
            diags.append(&mut errs);
            Err(diags)
        }
    }
}

fn env_diagnostic(path: &str, err: EnvError) -> Diagnostic {
    Diagnostic::error(path, err.line, err.column, "env", err.message)
        .with_hint("set the variable, or give a default with `${NAME:-default}`")
}

/// Maps a serde-saphyr error to a diagnostic with a stable code, a message without the
/// position (the diagnostic carries it) and a hint where one helps.
fn yaml_diagnostic(source: &Source, err: &YamlError) -> Diagnostic {
    // The position is the outermost one: for an error inside an alias, where it is used.
    let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
    let err = original(err);
    let at = |code, message: String| Diagnostic::error(&source.path, line, column, code, message);
    match err {
        YamlError::SerdeUnknownField { field, expected, .. } => {
            let diag = at("unknown-key", format!("unknown key `{field}`"));
            match suggest(field, expected) {
                Some(best) => diag.with_hint(format!("did you mean `{best}`?")),
                None if expected.is_empty() => diag.with_hint("this mapping takes no keys"),
                None => diag.with_hint(format!("expected one of: {}", quoted_list(expected))),
            }
        }
        YamlError::SerdeUnknownVariant { variant, expected, .. } => {
            let diag = at("invalid-value", format!("unknown value `{variant}`"));
            match suggest(variant, expected) {
                Some(best) => diag.with_hint(format!("did you mean `{best}`?")),
                None => diag.with_hint(format!("expected one of: {}", quoted_list(expected))),
            }
        }
        YamlError::SerdeMissingField { field, .. } => {
            at("missing-key", format!("missing key `{field}`")).with_hint(format!("add `{field}:` here"))
        }
        YamlError::DuplicateMappingKey { key, .. } => {
            let message = match key {
                Some(key) => format!("duplicate key `{key}`"),
                None => "duplicate key".to_string(),
            };
            at("duplicate-key", message)
                .with_hint("a key may appear once per mapping; remove or merge the repeated one")
        }
        YamlError::NonFiniteFloat { value, .. } => {
            at("non-finite", format!("`{value}` is not a finite number")).with_hint("thresholds must be finite numbers")
        }
        YamlError::SerdeInvalidType {
            unexpected, expected, ..
        } => at("invalid-type", format!("found {unexpected}, expected {expected}")),
        YamlError::SerdeInvalidValue {
            unexpected, expected, ..
        } => at(
            "invalid-value",
            format!("invalid value {unexpected}, expected {expected}"),
        ),
        YamlError::Message { msg, .. } => match msg.split_once(KIND_HINT) {
            // `ReceiverDef`'s own refusal of none or several kinds: its hint goes apart.
            Some((message, kinds)) => {
                at("receiver-kind", message.to_string()).with_hint(format!("give exactly one of {kinds}"))
            }
            None => at("invalid-value", msg.clone()),
        },
        YamlError::Budget { .. }
        | YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. } => at(
            "yaml",
            format!("file exceeds tocsin's YAML limits: {}", plain_message(err)),
        )
        .with_hint("policy files need no deep nesting or large alias expansions; simplify the file"),
        YamlError::Unexpected { expected, .. } => {
            let expected = match *expected {
                "sequence start" => "a list",
                "mapping start" => "a mapping",
                "string scalar" => "a string",
                other => other,
            };
            at("invalid-type", format!("expected {expected} here"))
        }
        other => {
            let diag = at("yaml", plain_message(other));
            // The likeliest syntax error with `${NAME}`: a plain scalar inside `{ }` or `[ ]`
            // ends at the `{`, so the reference must be quoted there.
            let line_text = usize::try_from(line)
                .ok()
                .and_then(|l| source.text.lines().nth(l.checked_sub(1)?));
            if line_text.is_some_and(|t| t.contains("${")) {
                diag.with_hint("inside `{ }` or `[ ]` a `${NAME}` reference must be quoted: write \"${NAME}\"")
            } else {
                diag
            }
        }
    }
}

/// The error itself, without the snippet and alias wrappers serde-saphyr puts around it.
fn original(err: &YamlError) -> &YamlError {
    match err {
        YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } => original(error),
        other => other,
    }
}

/// serde-saphyr's rendering of an error, with its trailing position removed (the diagnostic
/// has its own).
fn plain_message(err: &YamlError) -> String {
    let text = err.to_string();
    let text = text.lines().next().unwrap_or_default().trim();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text.to_string(),
    }
}

/// The expected name closest to `given`, if it is close enough to be a likely typo.
pub(super) fn suggest<'a>(given: &str, expected: &[&'a str]) -> Option<&'a str> {
    expected
        .iter()
        .map(|candidate| (strsim::jaro_winkler(given, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

pub(super) fn quoted_list(items: &[&str]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}
