//! The `logs` source: follows a log file like `tail -F` and counts the lines that
//! match each configured regex into `log_matches_total{pattern=<name>, path=<path>}`.
//!
//! Semantics:
//!
//! * **History is not counted.** The first poll opens the file at its end: only lines appended
//!   after tocsin started are counted, so a restart does not replay last week's OOM kills.
//!   A file that does not exist at the first poll is read from its start once it appears.
//! * **Counts** are per line: a line matching a pattern adds 1 to it however often the pattern
//!   occurs in the line; a line may match several patterns. Counts start at 0 and only grow
//!   (across rotations and truncations), and every pattern is emitted at every poll, 0 included,
//!   so `increase()` works from the first sample.
//! * **Missing file**: not an error; the counts are still emitted and the file is retried at the
//!   next poll.
//! * **Rotation by rename** (the path now names another file, by device and inode): the old file
//!   is read to its end (an unterminated last line there counts as a line), then the new file is
//!   read from its start.
//! * **Truncation in place** (`copytruncate`: the file is shorter than what was read): reading
//!   restarts at offset 0. Lines written between the last poll and the truncation are lost, and
//!   a truncation followed by more writes than were read before is not detectable (the same
//!   limits as `tail -F`).
//! * **Partial lines** (no newline yet) are held until completed. A line is capped at
//!   [`MAX_LINE`] bytes: when it reaches that length its first `MAX_LINE` bytes are matched and
//!   counted once, and the rest of it is skipped up to the next newline.
//! * **Encoding**: lines are matched as UTF-8, invalid bytes replaced by U+FFFD; a trailing `\r`
//!   is dropped.
//! * A poll reads at most [`MAX_READ_PER_POLL`] bytes and continues where it stopped at the next
//!   poll, so a huge backlog cannot stall the caller.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use regex::RegexSet;

use crate::series::Labels;
use crate::series::Timestamp;
use crate::sources::{CONFIGURED_MAX_SERIES, Context, ParsedSample, Sink, Source};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The longest line matched; longer lines are truncated to this many bytes.
pub const MAX_LINE: usize = 1 << 20;

/// The most bytes one poll reads.
pub const MAX_READ_PER_POLL: u64 = 64 << 20;

/// Bytes read at a time.
const READ_CHUNK: usize = 64 << 10;

/// Rotations followed within one poll (a file rotated faster than that waits for the next).
const MAX_SWITCHES_PER_POLL: usize = 4;

/// Follows one file and counts regex matches. See the module documentation.
pub struct LogTailer {
    path: PathBuf,
    /// One label set per pattern: `pattern=<name>`, `path=<path>`.
    labels: Vec<Labels>,
    scanner: Scanner,
    file: Option<Tailed>,
    /// Whether a poll happened: the first one starts at the end of an existing file.
    started: bool,
    /// Read buffer, allocated at the first read.
    buf: Vec<u8>,
    /// Bytes one poll may read ([`MAX_READ_PER_POLL`]; smaller in tests).
    read_limit: u64,
}

/// The file being read.
struct Tailed {
    file: File,
    /// (device, inode), to recognise a rotation.
    id: Option<(u64, u64)>,
    /// Bytes consumed so far.
    offset: u64,
}

/// Splits bytes into lines and counts matches.
struct Scanner {
    set: RegexSet,
    counts: Vec<u64>,
    /// The current line so far, at most `MAX_LINE` bytes.
    line: Vec<u8>,
    /// The current line passed `MAX_LINE` and was counted: skip to the next newline.
    overlong: bool,
}

impl LogTailer {
    /// A tailer of `path` counting `patterns`: (pattern name, regex source) pairs.
    ///
    /// Errors name the pattern whose regex does not compile, or a name given twice. Opens
    /// nothing: the first [`poll`](Self::poll) does.
    pub fn new(path: PathBuf, patterns: &[(String, String)]) -> Result<LogTailer, String> {
        for (i, (name, src)) in patterns.iter().enumerate() {
            if patterns[..i].iter().any(|(n, _)| n == name) {
                return Err(format!("log pattern {name:?} given twice for {}", path.display()));
            }
            if let Err(e) = regex::Regex::new(src) {
                return Err(format!("log pattern {name:?}: invalid regex {src:?}: {e}"));
            }
        }
        let set = RegexSet::new(patterns.iter().map(|(_, src)| src.as_str()))
            .map_err(|e| format!("log patterns for {}: {e}", path.display()))?;
        let path_label = path.to_string_lossy().into_owned();
        let labels = patterns
            .iter()
            .map(|(name, _)| Labels::from_pairs([("pattern", name.as_str()), ("path", path_label.as_str())]))
            .collect();
        Ok(LogTailer {
            path,
            labels,
            scanner: Scanner {
                set,
                counts: vec![0; patterns.len()],
                line: Vec::new(),
                overlong: false,
            },
            file: None,
            started: false,
            buf: Vec::new(),
            read_limit: MAX_READ_PER_POLL,
        })
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what was appended since the last poll and emits `log_matches_total` (the running
    /// count) for every pattern, every poll, even 0 and even when reading failed.
    ///
    /// A missing file is not an error. Other I/O errors (permissions, ...) are returned after
    /// the counts were emitted; the next poll retries.
    pub fn poll(&mut self, emit: &mut dyn FnMut(&str, Labels, f64)) -> io::Result<()> {
        let result = self.advance();
        if self.scanner.line.capacity() > READ_CHUNK && self.scanner.line.len() <= READ_CHUNK {
            self.scanner.line.shrink_to(READ_CHUNK);
        }
        for (labels, count) in self.labels.iter().zip(&self.scanner.counts) {
            emit("log_matches_total", labels.clone(), *count as f64);
        }
        result
    }

    /// Reads the file (and its successors after rotations) as far as the budget allows.
    fn advance(&mut self) -> io::Result<()> {
        let first = !self.started;
        self.started = true;
        if self.file.is_none() {
            let Some(mut t) = open(&self.path)? else {
                return Ok(());
            };
            if first {
                t.offset = t.file.metadata()?.len();
            }
            self.file = Some(t);
        }
        if self.buf.is_empty() {
            self.buf = vec![0; READ_CHUNK];
        }
        let mut budget = self.read_limit;
        for _ in 0..MAX_SWITCHES_PER_POLL {
            // Look at the path before draining the open file: whatever the writer appended to
            // the old file before the rotation is then read before switching.
            let at_path = match std::fs::metadata(&self.path) {
                Ok(m) => file_id(&m),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            let Some(t) = self.file.as_mut() else { return Ok(()) };
            if t.file.metadata()?.len() < t.offset {
                t.offset = 0;
                self.scanner.reset();
            }
            if !read_available(t, &mut self.buf, &mut self.scanner, &mut budget)? {
                return Ok(());
            }
            let rotated = matches!((at_path, t.id), (Some(new), Some(old)) if new != old);
            if !rotated {
                return Ok(());
            }
            self.scanner.finish_line();
            match open(&self.path)? {
                Some(next) => self.file = Some(next),
                None => return Ok(()),
            }
        }
        Ok(())
    }
}

/// Opens `path` at offset 0; `None` when it does not exist.
fn open(path: &Path) -> io::Result<Option<Tailed>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let id = file_id(&file.metadata()?);
    Ok(Some(Tailed { file, id, offset: 0 }))
}

#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// Reads `t` from its offset to its end, or until `budget` bytes were read (then `false`).
fn read_available(t: &mut Tailed, buf: &mut [u8], scanner: &mut Scanner, budget: &mut u64) -> io::Result<bool> {
    t.file.seek(SeekFrom::Start(t.offset))?;
    loop {
        if *budget == 0 {
            return Ok(false);
        }
        let want = buf.len().min(usize::try_from(*budget).unwrap_or(usize::MAX));
        let n = match t.file.read(&mut buf[..want]) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        t.offset += n as u64;
        *budget -= n as u64;
        scanner.feed(&buf[..n]);
    }
}

impl Scanner {
    /// Consumes bytes read from the file.
    fn feed(&mut self, mut data: &[u8]) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            if self.line.is_empty() && !self.overlong && i <= MAX_LINE {
                // The whole line is in the chunk: match it in place.
                self.count(&data[..i]);
            } else {
                self.push(&data[..i]);
                self.end_line();
            }
            data = &data[i + 1..];
        }
        self.push(data);
    }

    /// Appends part of the current line, counting it once when it reaches `MAX_LINE`.
    fn push(&mut self, part: &[u8]) {
        if self.overlong || part.is_empty() {
            return;
        }
        let room = MAX_LINE - self.line.len();
        if part.len() <= room {
            self.line.extend_from_slice(part);
            return;
        }
        self.line.extend_from_slice(&part[..room]);
        let line = std::mem::take(&mut self.line);
        self.count(&line);
        self.line = line;
        self.line.clear();
        self.overlong = true;
    }

    /// A newline ended the current line.
    fn end_line(&mut self) {
        if !self.overlong {
            let line = std::mem::take(&mut self.line);
            self.count(&line);
            self.line = line;
        }
        self.reset();
    }

    /// The file ended for good (rotated away): its unterminated last line counts as a line.
    fn finish_line(&mut self) {
        if !self.line.is_empty() {
            self.end_line();
        }
        self.reset();
    }

    /// Forgets the current partial line.
    fn reset(&mut self) {
        self.line.clear();
        self.overlong = false;
    }

    /// Counts one complete line against every pattern.
    fn count(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        if self.set.is_match(&text) {
            for i in self.set.matches(&text).iter() {
                self.counts[i] += 1;
            }
        }
    }
}

/// How often log files are polled.
pub const POLL: Duration = Duration::from_secs(1);

/// One `logs` entry: a [`LogTailer`] polled every [`POLL`], its counts stored as the
/// `logs` source.
pub struct Logs {
    tailer: LogTailer,
}

/// One `logs` source per `sources.logs` entry whose patterns compile.
pub fn configured(ctx: &Context<'_>) -> Vec<Box<dyn Source>> {
    let mut out: Vec<Box<dyn Source>> = Vec::new();
    for l in &ctx.cfg.sources.logs {
        let patterns: Vec<(String, String)> = l
            .patterns
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect();
        match LogTailer::new((ctx.path)(l.path.expose()), &patterns) {
            Ok(tailer) => out.push(Box::new(Logs { tailer })),
            Err(e) => tracing::error!("log source {}: {e}", l.path.expose()),
        }
    }
    out
}

impl Source for Logs {
    fn name(&self) -> String {
        format!("logs:{}", self.tailer.path().display())
    }

    fn every(&self) -> Duration {
        POLL
    }

    fn run(
        mut self: Box<Self>,
        sink: Arc<dyn Sink>,
        clock: fn() -> Timestamp,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut tick = tokio::time::interval(POLL);
            let mut samples = Vec::new();
            loop {
                tick.tick().await;
                samples.clear();
                let res = self.tailer.poll(&mut |name, labels, value| {
                    samples.push(ParsedSample {
                        name: name.to_string(),
                        labels,
                        value,
                        timestamp_ms: None,
                    });
                });
                if let Err(e) = res {
                    tracing::warn!("log source: {e}");
                }
                sink.ingest("logs", CONFIGURED_MAX_SERIES, &samples, clock());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Write;

    fn pats(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(n, r)| (n.to_string(), r.to_string())).collect()
    }

    /// Polls once and returns pattern name → count, checking the metric name and path label.
    fn poll(t: &mut LogTailer) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let path = t.path().to_string_lossy().into_owned();
        t.poll(&mut |m, l, v| {
            assert_eq!(m, "log_matches_total");
            assert_eq!(l.get("path"), Some(path.as_str()));
            assert_eq!(l.len(), 2);
            out.insert(l.get("pattern").unwrap().to_string(), v);
        })
        .unwrap();
        out
    }

    fn count(t: &mut LogTailer, pattern: &str) -> f64 {
        poll(t)[pattern]
    }

    fn append(path: &Path, data: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(data).unwrap();
    }

    #[test]
    fn counts_appended_lines_not_history() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, b"error: before start\nerror: also before\n");
        let mut t = LogTailer::new(p.clone(), &pats(&[("err", "^error"), ("warn", "warn")])).unwrap();
        let first = poll(&mut t);
        assert_eq!(first, BTreeMap::from([("err".into(), 0.0), ("warn".into(), 0.0)]));
        append(&p, b"error: one\ninfo: fine\nerror: two warn\n");
        assert_eq!(
            poll(&mut t),
            BTreeMap::from([("err".into(), 2.0), ("warn".into(), 1.0)])
        );
        assert_eq!(count(&mut t, "err"), 2.0, "nothing new, count stays");
        append(&p, b"error error error: one line\n");
        assert_eq!(count(&mut t, "err"), 3.0, "a line counts once");
    }

    #[test]
    fn partial_line_waits_for_its_newline() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, b"");
        let mut t = LogTailer::new(p.clone(), &pats(&[("oom", "Out of memory: Kill process")])).unwrap();
        poll(&mut t);
        append(&p, b"kernel: Out of mem");
        assert_eq!(count(&mut t, "oom"), 0.0);
        append(&p, b"ory: Kill process 1234");
        assert_eq!(count(&mut t, "oom"), 0.0);
        append(&p, b" (postgres)\nnext");
        assert_eq!(count(&mut t, "oom"), 1.0);
        append(&p, b" line Out of memory: Kill process 1\r\n");
        assert_eq!(count(&mut t, "oom"), 2.0);
    }

    #[test]
    fn rotation_by_rename_counts_both_files_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, b"");
        let mut t = LogTailer::new(p.clone(), &pats(&[("hit", "hit")])).unwrap();
        poll(&mut t);
        append(&p, b"hit 1\nhit 2\n");
        assert_eq!(count(&mut t, "hit"), 2.0);
        append(
            &p,
            b"hit 3 (written before rotation, not yet polled)\nhit 4 unterminated",
        );
        std::fs::rename(&p, d.path().join("app.log.1")).unwrap();
        // The writer still has the old file open for a moment.
        append(&d.path().join("app.log.1"), b" end\nhit 5 late in old\n");
        assert_eq!(count(&mut t, "hit"), 5.0, "path missing: keep reading the old file");
        append(&p, b"hit 6 new file\nhit 7\n");
        append(&d.path().join("app.log.1"), b"hit 8 very late in old\n");
        assert_eq!(count(&mut t, "hit"), 8.0);
        append(&p, b"hit 9\n");
        assert_eq!(count(&mut t, "hit"), 9.0);
        assert_eq!(count(&mut t, "hit"), 9.0);

        // A second rotation where the new file appears before the poll; the old file ends
        // without a newline.
        append(&p, b"hit 10 unterminated");
        std::fs::rename(&p, d.path().join("app.log.2")).unwrap();
        append(&p, b"hit 11\n");
        assert_eq!(count(&mut t, "hit"), 11.0);
    }

    #[test]
    fn copytruncate_restarts_from_the_beginning() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, b"");
        let mut t = LogTailer::new(p.clone(), &pats(&[("hit", "hit")])).unwrap();
        poll(&mut t);
        append(
            &p,
            b"hit one, a fairly long line to be truncated later\nhit two, also long enough\npartial hit",
        );
        assert_eq!(count(&mut t, "hit"), 2.0);
        std::fs::copy(&p, d.path().join("app.log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&p, b"hit three\n");
        assert_eq!(
            count(&mut t, "hit"),
            3.0,
            "the partial line before truncation is dropped"
        );
        append(&p, b"hit four\n");
        assert_eq!(count(&mut t, "hit"), 4.0);
        // Truncated to empty and polled before any new write.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        assert_eq!(count(&mut t, "hit"), 4.0);
        append(&p, b"hit five\n");
        assert_eq!(count(&mut t, "hit"), 5.0);
    }

    #[test]
    fn missing_file_is_retried_and_read_from_its_start() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("later.log");
        let mut t = LogTailer::new(p.clone(), &pats(&[("hit", "hit")])).unwrap();
        assert_eq!(count(&mut t, "hit"), 0.0);
        assert_eq!(count(&mut t, "hit"), 0.0);
        append(&p, b"hit created after start\n");
        assert_eq!(count(&mut t, "hit"), 1.0);
        // Deleted: counts stay; recreated: read from the start.
        std::fs::remove_file(&p).unwrap();
        assert_eq!(count(&mut t, "hit"), 1.0);
        append(&p, b"filler to change the size and the inode, probably\nhit again\n");
        assert_eq!(count(&mut t, "hit"), 2.0);
    }

    #[test]
    fn many_patterns_in_one_pass() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, b"");
        let specs: Vec<(String, String)> = (0..50).map(|i| (format!("p{i}"), format!(r"\bcode={i}\b"))).collect();
        let mut t = LogTailer::new(p.clone(), &specs).unwrap();
        assert_eq!(poll(&mut t).len(), 50);
        let mut data = String::new();
        for i in 0..50 {
            for _ in 0..i {
                data.push_str(&format!("request failed code={i}\n"));
            }
        }
        data.push_str("code=3 code=4 code=3\n");
        append(&p, data.as_bytes());
        let c = poll(&mut t);
        for i in 0..50 {
            let extra = if i == 3 || i == 4 { 1.0 } else { 0.0 };
            assert_eq!(c[&format!("p{i}")], i as f64 + extra, "p{i}");
        }
    }

    #[test]
    fn long_lines_are_counted_once_and_not_buffered() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, b"");
        let mut t = LogTailer::new(
            p.clone(),
            &pats(&[("head", "^HEAD"), ("tail", "TAIL$"), ("n", "^next")]),
        )
        .unwrap();
        poll(&mut t);
        // 3 MiB in one line, written in pieces across polls, then a normal line.
        append(&p, b"HEAD");
        for _ in 0..3 {
            append(&p, &vec![b'x'; MAX_LINE]);
            let c = poll(&mut t);
            assert!(t.scanner.line.capacity() <= MAX_LINE);
            assert!(c["head"] <= 1.0);
        }
        append(&p, b"TAIL\nnext line TAIL\n");
        let c = poll(&mut t);
        assert_eq!(c["head"], 1.0, "counted once, from its first MiB");
        assert_eq!(c["tail"], 1.0, "only the short line: the long one was truncated");
        assert_eq!(c["n"], 1.0, "the line after the long one is intact");
        assert!(t.scanner.line.capacity() <= READ_CHUNK, "buffer shrinks back");
        // Exactly MAX_LINE bytes in one chunk is still a whole line.
        let mut exact = vec![b'y'; MAX_LINE - 4];
        exact.extend_from_slice(b"TAIL\n");
        append(&p, &exact);
        assert_eq!(count(&mut t, "tail"), 2.0);
    }

    #[test]
    fn invalid_utf8_is_matched_lossily() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, b"");
        let mut t = LogTailer::new(p.clone(), &pats(&[("err", "bad \u{FFFD} byte: error")])).unwrap();
        poll(&mut t);
        append(&p, b"bad \xff byte: error\n");
        assert_eq!(count(&mut t, "err"), 1.0);
    }

    #[test]
    fn bad_regex_and_duplicate_names_are_errors() {
        let p = PathBuf::from("/nonexistent/x.log");
        let e = LogTailer::new(p.clone(), &pats(&[("ok", "fine"), ("broken", "(unclosed")]))
            .err()
            .unwrap();
        assert!(e.contains("\"broken\"") && e.contains("(unclosed"), "{e}");
        let e = LogTailer::new(p.clone(), &pats(&[("a", "x"), ("a", "y")]))
            .err()
            .unwrap();
        assert!(e.contains("\"a\""), "{e}");
        let mut t = LogTailer::new(p, &[]).unwrap();
        assert!(poll(&mut t).is_empty());
    }

    #[test]
    fn a_large_backlog_is_read_over_several_polls() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        let mut t = LogTailer::new(p.clone(), &pats(&[("hit", "hit")])).unwrap();
        t.read_limit = 10 * 1024;
        poll(&mut t); // missing at start: the file will be read from its beginning
        let line = format!("hit {}\n", "z".repeat(1018)); // 1 KiB
        append(&p, line.repeat(25).as_bytes());
        assert_eq!(count(&mut t, "hit"), 10.0);
        assert_eq!(count(&mut t, "hit"), 20.0);
        // Rotated while behind: the rest of the old file first, then the new one.
        std::fs::rename(&p, d.path().join("app.log.1")).unwrap();
        append(&p, line.repeat(8).as_bytes());
        assert_eq!(
            count(&mut t, "hit"),
            30.0,
            "5 left in the old file, then 5 of the new one"
        );
        assert_eq!(count(&mut t, "hit"), 33.0);
    }
}
