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

use crate::config::{self, Source};
use crate::diag::{Diagnostic, Severity};
use crate::policy::Policy;
use crate::rules::RuleSet;

/// A validated rule and receiver set, ready to run.
#[derive(Debug)]
pub struct PolicySet {
    /// The compiled rules.
    pub rules: Arc<RuleSet>,
    /// The compiled receiver files (receivers, routes, inhibit rules).
    pub policy: Policy,
    /// Hash of every file's path and content: equal hashes mean nothing changed.
    pub hash: u64,
    /// Warnings found while validating (errors would have prevented the set).
    pub warnings: Vec<Diagnostic>,
}

/// How far [`expand`] looks into a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Only the directory's own entries: what the daemon loads and watches.
    Flat,
    /// Every subdirectory too, except hidden ones (`.git`, Kubernetes' `..data`): what
    /// `tocsin check` searches.
    Recursive,
}

/// The files under the configured paths, in order: a directory means its `*.yaml`/`*.yml`
/// entries, sorted; a named file is taken whatever it is, so that [`read_source`] can say
/// why it cannot be read. A path that does not exist is an error.
pub fn expand(paths: &[PathBuf], depth: Depth) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(expand_one(p, depth)?);
    }
    Ok(out)
}

/// [`expand`] for one path.
pub fn expand_one(path: &Path, depth: Depth) -> Result<Vec<PathBuf>, Diagnostic> {
    let name = path.to_string_lossy();
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let mut out = Vec::new();
            walk(path, depth, &mut out)?;
            Ok(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && std::fs::symlink_metadata(path).is_err() => {
            Err(Diagnostic::error(&name, 0, 0, "io", "does not exist").with_hint("check the path for typos"))
        }
        // Files of any type, dangling symlinks and loops: reading them reports what they are.
        _ => Ok(vec![path.to_path_buf()]),
    }
}

fn walk(dir: &Path, depth: Depth, out: &mut Vec<PathBuf>) -> Result<(), Diagnostic> {
    let io = |e: std::io::Error| Diagnostic::error(&dir.to_string_lossy(), 0, 0, "io", format!("cannot list: {e}"));
    let mut entries: Vec<(PathBuf, std::fs::FileType)> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.and_then(|e| Ok((e.path(), e.file_type()?))))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind) in entries {
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        // Symlinked directories are not followed: a link back up would recurse forever.
        if kind.is_dir() {
            if depth == Depth::Recursive && !hidden {
                walk(&path, depth, out)?;
            }
        } else if matches!(path.extension().and_then(|x| x.to_str()), Some("yaml" | "yml"))
            && !(kind.is_symlink() && path.is_dir())
        {
            // Not only regular files: a FIFO or a broken link named like a policy file is
            // an error to report, not a file to skip in silence.
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a file for the config loader (which rejects over-large or non-UTF-8 input). Anything
/// but a regular file (a FIFO, a device, a directory, a symlink loop) is refused by name
/// before it is opened, so that reading can neither block nor run without end.
pub fn read_source(path: &Path) -> Result<Source, Diagnostic> {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let name = path.to_string_lossy().into_owned();
    let refuse = |what: &str| {
        Diagnostic::error(&name, 0, 0, "io", format!("cannot read: {what}"))
            .with_hint("policy files must be regular files (or symlinks to them)")
    };
    let kind_of = |meta: &std::fs::Metadata| -> Option<&'static str> {
        let t = meta.file_type();
        if t.is_file() {
            None
        } else if t.is_dir() {
            Some("it is a directory, not a file")
        } else if t.is_fifo() {
            Some("it is a FIFO (named pipe), not a regular file")
        } else if t.is_char_device() {
            Some("it is a character device, not a regular file")
        } else if t.is_block_device() {
            Some("it is a block device, not a regular file")
        } else if t.is_socket() {
            Some("it is a socket, not a regular file")
        } else {
            Some("it is not a regular file")
        }
    };
    let meta = std::fs::metadata(path).map_err(|e| refuse(&io_reason(path, &e)))?;
    if let Some(what) = kind_of(&meta) {
        return Err(refuse(what));
    }
    // O_NONBLOCK: should the path be swapped for a FIFO between the check and the open, the
    // open returns at once instead of waiting for a writer; the type is checked again on the
    // opened file.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| refuse(&io_reason(path, &e)))?;
    let meta = file.metadata().map_err(|e| refuse(&e.to_string()))?;
    if let Some(what) = kind_of(&meta) {
        return Err(refuse(what));
    }
    let mut bytes = Vec::new();
    // The cap holds even for a file that grows while it is read.
    file.by_ref()
        .take(config::MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(&e.to_string()))?;
    Source::new(&name, bytes)
}

/// An I/O error in words that name the problem.
fn io_reason(path: &Path, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ELOOP) => "it is a symbolic link loop (too many levels of symbolic links)".to_string(),
        Some(libc::ENOENT) if std::fs::symlink_metadata(path).is_ok() => {
            "it is a symbolic link to a file that does not exist".to_string()
        }
        Some(libc::ENOENT) => "no such file or directory".to_string(),
        _ => e.to_string(),
    }
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
    for f in expand(rule_paths, Depth::Flat)
        .map_err(|d| vec![d])?
        .into_iter()
        .chain(expand(receiver_paths, Depth::Flat).map_err(|d| vec![d])?)
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
    // What validating needed beyond the compiled set (the parsed trees, the diagnostics'
    // scratch, the source texts) is free now, in pages interleaved with what stays: without
    // a trim the process would keep the whole high-water mark of the load resident.
    drop(sources);
    crate::memory::give_back();
    diags.extend(checked.diagnostics);
    let set = match checked.rules {
        Some(set) if !diags.iter().any(|d| d.severity == Severity::Error) => set,
        _ => return Err(diags),
    };
    Ok(Some(PolicySet {
        rules: Arc::new(set),
        policy: checked.policy,
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
