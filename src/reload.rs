//! Reload: reading the policy files from disk, validating them as one set, and watching
//! their directories for changes.
//!
//! Owns the rule that a broken file never replaces a working set: a new
//! [`PolicySet`] exists only when every rule and receiver file parses, compiles and passes
//! the same cross-file checks as `tocsin check`. It watches *directories*, never files,
//! because editors save by renaming a temporary file over the old one and Kubernetes swaps
//! a `..data` symlink; both replace the file a file watch would be holding. It does not
//! decide when to apply a set or what happens to running alerts (that is the daemon's and
//! the engine's business).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use crate::config::{self, ReceiverFile, Source};
use crate::diag::{Diagnostic, Severity};
use crate::rules::RuleSet;

/// A validated rule and receiver set, ready to run.
#[derive(Debug)]
pub struct PolicySet {
    /// The compiled rules.
    pub rules: Arc<RuleSet>,
    /// The parsed receiver files (receiver definitions).
    pub receivers: Vec<(String, ReceiverFile)>,
    /// Hash of every file's path and content: equal hashes mean nothing changed.
    pub hash: u64,
    /// Warnings found while validating (errors would have prevented the set).
    pub warnings: Vec<Diagnostic>,
}

/// The files under the configured paths: a directory means its `*.yaml`/`*.yml` files
/// (not recursively), sorted; a missing path is an error.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries =
                std::fs::read_dir(p).map_err(|e| Diagnostic::error(&p.to_string_lossy(), 0, 0, "io", e.to_string()))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && matches!(f.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
                .collect();
            files.sort();
            out.extend(files);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Diagnostic::error(
                &p.to_string_lossy(),
                0,
                0,
                "io",
                "no such file or directory",
            ));
        }
    }
    Ok(out)
}

/// Reads files for the config loader (which rejects over-large or non-UTF-8 input).
pub fn read_source(path: &Path) -> Result<Source, Diagnostic> {
    use std::io::Read as _;
    let name = path.to_string_lossy().into_owned();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(config::MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| Diagnostic::error(&name, 0, 0, "io", format!("cannot read: {e}")))?;
    Source::new(&name, bytes)
}

/// Reads and parses one rule file (the loader for rule files that test files name).
pub fn load_rule_file(path: &str) -> Result<config::RuleFile, Vec<Diagnostic>> {
    let src = read_source(Path::new(path)).map_err(|d| vec![d])?;
    config::parse_rules(&src)
}

/// Reads every file under `rule_paths` and `receiver_paths` and validates them as one set.
/// When their content hash equals `unchanged`, nothing is validated and `Ok(None)` says so:
/// the periodic re-read and duplicate file events cost a read and a hash, not a compile.
pub fn load(
    rule_paths: &[PathBuf],
    receiver_paths: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
    unchanged: Option<u64>,
) -> Result<Option<PolicySet>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut sources = Vec::new();
    for f in expand(rule_paths)
        .map_err(|d| vec![d])?
        .into_iter()
        .chain(expand(receiver_paths).map_err(|d| vec![d])?)
    {
        match read_source(&f) {
            Ok(s) => sources.push(s),
            Err(d) => diags.push(d),
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for s in &sources {
        s.path().hash(&mut h);
        s.text().hash(&mut h);
    }
    let hash = h.finish();
    if unchanged == Some(hash) && diags.is_empty() {
        return Ok(None);
    }
    let checked = crate::check::validate(&sources, env, &load_rule_file);
    diags.extend(checked.diagnostics);
    let set = match checked.rules {
        Some(set) if !diags.iter().any(|d| d.severity == Severity::Error) => set,
        _ => return Err(diags),
    };
    let receiver_files = checked.receivers;
    Ok(Some(PolicySet {
        rules: Arc::new(set),
        receivers: receiver_files,
        hash,
        warnings: diags,
    }))
}

/// The directories to watch for `paths`: a directory itself, a file's parent.
pub fn watch_dirs(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = paths
        .iter()
        .map(|p| {
            if p.is_dir() {
                p.clone()
            } else {
                p.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
            }
        })
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p
            }
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// A running directory watcher; dropping it stops watching.
pub struct Watcher {
    _debouncer: Debouncer<notify_debouncer_full::notify::RecommendedWatcher, RecommendedCache>,
}

/// Watches `dirs` and calls `changed` (from the watcher's thread) after each debounced burst
/// of file-system events.
pub fn watch(dirs: &[PathBuf], debounce: Duration, changed: impl Fn() + Send + 'static) -> Result<Watcher, String> {
    let mut debouncer = new_debouncer(debounce, None, move |res: DebounceEventResult| {
        // Reading the files (as every reload does) raises access events: reacting to them
        // would make each reload trigger the next, forever.
        let changes = |events: &Vec<notify_debouncer_full::DebouncedEvent>| {
            events
                .iter()
                .any(|e| !matches!(e.event.kind, EventKind::Access(_) | EventKind::Other))
        };
        if matches!(&res, Ok(events) if changes(events)) {
            changed();
        }
    })
    .map_err(|e| format!("cannot watch: {e}"))?;
    for d in dirs {
        debouncer
            .watch(d, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", d.display()))?;
    }
    Ok(Watcher { _debouncer: debouncer })
}
