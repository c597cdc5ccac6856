//! The `system` source: host metrics read through sysinfo, plus the cgroup memory
//! limit read straight from the cgroup file system.
//!
//! One [`SystemCollector`] lives as long as the daemon and keeps one `sysinfo::System`, one
//! `Disks` and one `Networks`, because CPU percentages are computed from the difference between
//! two refreshes. Each [`SystemCollector::collect`] refreshes only what the wanted metrics need:
//! an idle daemon checking memory every second must not walk `/proc` for every process.
//!
//! Decisions an operator may want to know:
//!
//! * **First CPU sample.** `cpu_percent` (machine and per core) and `process_cpu_percent` are
//!   differences between two refreshes. The first `collect` that refreshes them only primes the
//!   counters and emits no CPU sample; the next one does. `collect` never sleeps. Two calls less
//!   than sysinfo's `MINIMUM_CPU_UPDATE_INTERVAL` (200 ms) apart repeat the previous values. A
//!   process that started since the previous collect reports 0 % for its first sample.
//! * **Processes** are matched by exact name, as the kernel reports it (`comm`, what `ps -e`
//!   and `pgrep` show). The kernel truncates that name to 15 bytes, so a configured name longer
//!   than 15 bytes matches a process whose name is its first 15 bytes. All processes (not
//!   threads) with that name are summed; `process_count` is emitted even when it is 0.
//!   `process_cpu_percent` is top's: 100 is one core fully busy, so it can exceed 100.
//! * **Disks** skip pseudo and read-only-image file systems by type ([`SKIPPED_FILE_SYSTEMS`]),
//!   and mount points under `/proc`, `/sys`, `/dev` and `/run` (except `/run/media`).
//!   `overlay` is kept: it is the root file system of a container. When one mount point is
//!   listed twice (stacked mounts), the last one, the one visible, wins.
//! * **Networks**: every interface, loopback included; the counters are totals since boot
//!   (monotonic until the interface is recreated), not deltas since the previous collect. On
//!   Linux they are read from `/proc/net/dev` in one read (what sysinfo's `total_received()`
//!   reports, at a fraction of the cost); elsewhere from sysinfo's `Networks`.
//! * **cgroup memory**: the limit that applies to this process, found from `/proc/self/cgroup`
//!   by walking from its own cgroup up to the root and keeping the level with the least headroom
//!   (limit − usage), v2 first, then v1. No sample where no limit applies (`max`, or the v1
//!   "unlimited" value near 2^63).

use std::path::{Path, PathBuf};

use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, Pid, ProcessRefreshKind, ProcessesToUpdate,
    System,
};

use crate::config::SystemSource;
use crate::series::Labels;
use crate::series::Timestamp;
use crate::sources::{CONFIGURED_MAX_SERIES, Context, ParsedSample, Sink, Source};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// File system types whose mounts are not reported as disks: kernel pseudo file systems,
/// memory-backed ones, and read-only images that are always 100 % full.
pub const SKIPPED_FILE_SYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Where the cgroup file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Limits at or above this are "no limit" (cgroup v1 writes 2^63 − 4096 for unlimited).
const NO_LIMIT: u64 = 1 << 62;

/// The kernel keeps at most this many bytes of a process name (`TASK_COMM_LEN` − 1).
const COMM_LEN: usize = 15;

/// A configured process name and its label set.
struct Watched {
    name: String,
    labels: Labels,
}

/// Per-name sums over the matching processes of one collect.
#[derive(Clone, Copy, Default)]
struct ProcSum {
    count: u64,
    rss: u64,
    virt: u64,
    cpu: f64,
}

/// Collects the `system` source's metrics. See the module documentation for the semantics.
pub struct SystemCollector {
    sys: System,
    disks: Disks,
    networks: Networks,
    watched: Vec<Watched>,
    /// `cpu="N"` label sets, built once per core.
    cpu_labels: Vec<Labels>,
    /// Whether machine CPU times were read at least once (so usage is a real difference).
    cpu_primed: bool,
    /// Whether process CPU times were read at least once.
    procs_primed: bool,
    /// Reused between collects: pids of the watched processes, and per-name sums.
    matched: Vec<Pid>,
    sums: Vec<ProcSum>,
    /// This process's own cgroup, read once at construction.
    cgroup: CgroupPaths,
}

impl SystemCollector {
    /// Every metric name this collector can emit.
    pub const METRICS: &'static [&'static str] = &[
        "mem_total_bytes",
        "mem_available_bytes",
        "mem_used_percent",
        "swap_total_bytes",
        "swap_used_bytes",
        "cpu_percent",
        "load1",
        "load5",
        "load15",
        "disk_total_bytes",
        "disk_available_bytes",
        "disk_used_percent",
        "disk_free_percent",
        "net_rx_bytes_total",
        "net_tx_bytes_total",
        "uptime_seconds",
        "process_rss_bytes",
        "process_virtual_bytes",
        "process_cpu_percent",
        "process_count",
        "cgroup_memory_limit_bytes",
        "cgroup_memory_usage_bytes",
        "cgroup_memory_used_percent",
    ];

    /// A collector watching the processes named in `processes` (`sources.system`).
    ///
    /// Reads nothing but `/proc/self/cgroup`; the first [`collect`](Self::collect) does the
    /// first refresh.
    pub fn new(processes: Vec<String>) -> SystemCollector {
        let mut watched: Vec<Watched> = Vec::with_capacity(processes.len());
        for name in processes {
            if !watched.iter().any(|w| w.name == name) {
                let labels = Labels::from_pairs([("process", name.as_str())]);
                watched.push(Watched { name, labels });
            }
        }
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .map(|s| CgroupPaths::parse(&s))
            .unwrap_or_default();
        SystemCollector {
            sys: System::new(),
            disks: Disks::new(),
            networks: Networks::new(),
            sums: vec![ProcSum::default(); watched.len()],
            watched,
            cpu_labels: Vec::new(),
            cpu_primed: false,
            procs_primed: false,
            matched: Vec::new(),
            cgroup,
        }
    }

    /// Refreshes only what is needed for metrics where `wanted(name)` is true, and emits them.
    ///
    /// Never blocks on a timer. The first call emits no CPU percentages (see the module docs).
    pub fn collect(&mut self, wanted: &dyn Fn(&str) -> bool, emit: &mut dyn FnMut(&str, Labels, f64)) {
        self.collect_memory(wanted, emit);
        self.collect_cpu(wanted, emit);
        if wanted("load1") || wanted("load5") || wanted("load15") {
            let load = System::load_average();
            for (name, v) in [("load1", load.one), ("load5", load.five), ("load15", load.fifteen)] {
                if wanted(name) {
                    emit(name, Labels::new(), v);
                }
            }
        }
        if wanted("uptime_seconds") {
            emit("uptime_seconds", Labels::new(), System::uptime() as f64);
        }
        self.collect_disks(wanted, emit);
        self.collect_networks(wanted, emit);
        self.collect_processes(wanted, emit);
        self.collect_cgroup(wanted, emit);
    }

    fn collect_memory(&mut self, wanted: &dyn Fn(&str) -> bool, emit: &mut dyn FnMut(&str, Labels, f64)) {
        let ram = wanted("mem_total_bytes") || wanted("mem_available_bytes") || wanted("mem_used_percent");
        let swap = wanted("swap_total_bytes") || wanted("swap_used_bytes");
        if !ram && !swap {
            return;
        }
        let mut kind = MemoryRefreshKind::nothing();
        if ram {
            kind = kind.with_ram();
        }
        if swap {
            kind = kind.with_swap();
        }
        self.sys.refresh_memory_specifics(kind);
        if ram {
            let total = self.sys.total_memory();
            let available = self.sys.available_memory();
            if wanted("mem_total_bytes") {
                emit("mem_total_bytes", Labels::new(), total as f64);
            }
            if wanted("mem_available_bytes") {
                emit("mem_available_bytes", Labels::new(), available as f64);
            }
            if wanted("mem_used_percent") && total > 0 {
                emit(
                    "mem_used_percent",
                    Labels::new(),
                    percent(total.saturating_sub(available), total),
                );
            }
        }
        if swap {
            if wanted("swap_total_bytes") {
                emit("swap_total_bytes", Labels::new(), self.sys.total_swap() as f64);
            }
            if wanted("swap_used_bytes") {
                emit("swap_used_bytes", Labels::new(), self.sys.used_swap() as f64);
            }
        }
    }

    fn collect_cpu(&mut self, wanted: &dyn Fn(&str) -> bool, emit: &mut dyn FnMut(&str, Labels, f64)) {
        if !wanted("cpu_percent") {
            return;
        }
        self.sys
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        if !self.cpu_primed {
            self.cpu_primed = true;
            return;
        }
        emit("cpu_percent", Labels::new(), f64::from(self.sys.global_cpu_usage()));
        let cpus = self.sys.cpus();
        while self.cpu_labels.len() < cpus.len() {
            let i = self.cpu_labels.len().to_string();
            self.cpu_labels.push(Labels::from_pairs([("cpu", i)]));
        }
        for (cpu, labels) in cpus.iter().zip(&self.cpu_labels) {
            emit("cpu_percent", labels.clone(), f64::from(cpu.cpu_usage()));
        }
    }

    fn collect_disks(&mut self, wanted: &dyn Fn(&str) -> bool, emit: &mut dyn FnMut(&str, Labels, f64)) {
        let (total, avail, used, free) = (
            wanted("disk_total_bytes"),
            wanted("disk_available_bytes"),
            wanted("disk_used_percent"),
            wanted("disk_free_percent"),
        );
        if !total && !avail && !used && !free {
            return;
        }
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        let list = self.disks.list();
        for (i, disk) in list.iter().enumerate() {
            let fs = disk.file_system().to_string_lossy();
            let mount = disk.mount_point();
            if !reported_mount(&fs, mount) || list[i + 1..].iter().any(|d| d.mount_point() == mount) {
                continue;
            }
            let labels = Labels::from_pairs([("mount", mount.to_string_lossy())]);
            let (t, a) = (disk.total_space(), disk.available_space());
            if total {
                emit("disk_total_bytes", labels.clone(), t as f64);
            }
            if avail {
                emit("disk_available_bytes", labels.clone(), a as f64);
            }
            if used && t > 0 {
                emit("disk_used_percent", labels.clone(), percent(t.saturating_sub(a), t));
            }
            if free
                && let Some((df_used, df_avail)) = df_usage(mount)
                && let Some(p) = df_free_percent(df_used, df_avail)
            {
                emit("disk_free_percent", labels, p);
            }
        }
    }

    fn collect_networks(&mut self, wanted: &dyn Fn(&str) -> bool, emit: &mut dyn FnMut(&str, Labels, f64)) {
        let (rx, tx) = (wanted("net_rx_bytes_total"), wanted("net_tx_bytes_total"));
        if !rx && !tx {
            return;
        }
        // On Linux one read of /proc/net/dev gives every counter; sysinfo would open seven
        // sysfs files per interface and call getifaddrs (about 25x the cost).
        if let Ok(content) = std::fs::read_to_string("/proc/net/dev") {
            for (name, rx_bytes, tx_bytes) in parse_net_dev(&content) {
                let labels = Labels::from_pairs([("interface", name)]);
                if rx {
                    emit("net_rx_bytes_total", labels.clone(), rx_bytes as f64);
                }
                if tx {
                    emit("net_tx_bytes_total", labels, tx_bytes as f64);
                }
            }
            return;
        }
        self.networks.refresh(true);
        for (name, data) in self.networks.list() {
            let labels = Labels::from_pairs([("interface", name.as_str())]);
            if rx {
                emit("net_rx_bytes_total", labels.clone(), data.total_received() as f64);
            }
            if tx {
                emit("net_tx_bytes_total", labels, data.total_transmitted() as f64);
            }
        }
    }

    fn collect_processes(&mut self, wanted: &dyn Fn(&str) -> bool, emit: &mut dyn FnMut(&str, Labels, f64)) {
        let (rss, virt, cpu, count) = (
            wanted("process_rss_bytes"),
            wanted("process_virtual_bytes"),
            wanted("process_cpu_percent"),
            wanted("process_count"),
        );
        if self.watched.is_empty() || !(rss || virt || cpu || count) {
            return;
        }
        // Pass 1: list every process (one read of /proc/<pid>/stat each, which also carries
        // the CPU times), without threads and without the per-process memory file.
        let mut kind = ProcessRefreshKind::nothing().without_tasks();
        if cpu {
            kind = kind.with_cpu();
        }
        self.sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
        self.matched.clear();
        self.sums.iter_mut().for_each(|s| *s = ProcSum::default());
        for (pid, p) in self.sys.processes() {
            let comm = p.name().as_encoded_bytes();
            if let Some(i) = self.watched.iter().position(|w| name_matches(&w.name, comm)) {
                self.matched.push(*pid);
                self.sums[i].count += 1;
            }
        }
        // Pass 2: memory of the matching processes only.
        if (rss || virt) && !self.matched.is_empty() {
            let mem = ProcessRefreshKind::nothing().without_tasks().with_memory();
            self.sys
                .refresh_processes_specifics(ProcessesToUpdate::Some(&self.matched), false, mem);
        }
        for pid in &self.matched {
            let Some(p) = self.sys.process(*pid) else { continue };
            let comm = p.name().as_encoded_bytes();
            if let Some(i) = self.watched.iter().position(|w| name_matches(&w.name, comm)) {
                let s = &mut self.sums[i];
                s.rss += p.memory();
                s.virt += p.virtual_memory();
                s.cpu += f64::from(p.cpu_usage());
            }
        }
        let cpu_ready = cpu && self.procs_primed;
        if cpu {
            self.procs_primed = true;
        }
        for (w, s) in self.watched.iter().zip(&self.sums) {
            if rss {
                emit("process_rss_bytes", w.labels.clone(), s.rss as f64);
            }
            if virt {
                emit("process_virtual_bytes", w.labels.clone(), s.virt as f64);
            }
            if cpu_ready {
                emit("process_cpu_percent", w.labels.clone(), s.cpu);
            }
            if count {
                emit("process_count", w.labels.clone(), s.count as f64);
            }
        }
    }

    fn collect_cgroup(&mut self, wanted: &dyn Fn(&str) -> bool, emit: &mut dyn FnMut(&str, Labels, f64)) {
        let (limit, usage, used) = (
            wanted("cgroup_memory_limit_bytes"),
            wanted("cgroup_memory_usage_bytes"),
            wanted("cgroup_memory_used_percent"),
        );
        if !limit && !usage && !used {
            return;
        }
        let Some(m) = read_cgroup_memory(Path::new(CGROUP_ROOT), &self.cgroup) else {
            return;
        };
        if limit {
            emit("cgroup_memory_limit_bytes", Labels::new(), m.limit_bytes as f64);
        }
        if usage {
            emit("cgroup_memory_usage_bytes", Labels::new(), m.usage_bytes as f64);
        }
        if used {
            emit(
                "cgroup_memory_used_percent",
                Labels::new(),
                percent(m.usage_bytes, m.limit_bytes),
            );
        }
    }
}

/// What `df` counts on the file system mounted at `mount`, in bytes: used (`f_blocks −
/// f_bfree`) and available to unprivileged users (`f_bavail`). The blocks reserved for root
/// are in neither, which is why `df`'s percentages differ from `disk_used_percent` (used
/// against the total). sysinfo reports only the total and the available space, hence statvfs.
fn df_usage(mount: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::ffi::CString::new(mount.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `st` is writable memory of the struct's size;
    // statvfs fills it completely when it returns 0, and it is read only then.
    let st = unsafe {
        if libc::statvfs(path.as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    let frsize = st.f_frsize as u64;
    let used = (st.f_blocks as u64)
        .saturating_sub(st.f_bfree as u64)
        .saturating_mul(frsize);
    Some((used, (st.f_bavail as u64).saturating_mul(frsize)))
}

/// `df`'s free share: available / (used + available) · 100, none for an empty file system.
fn df_free_percent(used: u64, available: u64) -> Option<f64> {
    let seen = used.saturating_add(available);
    (seen > 0).then(|| percent(available, seen))
}

/// `part / whole · 100`, for `whole > 0`.
fn percent(part: u64, whole: u64) -> f64 {
    part as f64 / whole as f64 * 100.0
}

/// Whether the kernel's process name `comm` is the configured `name` (see the module docs on
/// the 15-byte truncation).
fn name_matches(name: &str, comm: &[u8]) -> bool {
    let name = name.as_bytes();
    name == comm || (name.len() > COMM_LEN && comm.len() == COMM_LEN && name[..COMM_LEN] == *comm)
}

/// (interface, received bytes, transmitted bytes) from the content of Linux's `/proc/net/dev`.
fn parse_net_dev(content: &str) -> impl Iterator<Item = (&str, u64, u64)> {
    content.lines().filter_map(|line| {
        let (name, counters) = line.split_once(':')?;
        let mut fields = counters.split_whitespace();
        let rx = fields.next()?.parse().ok()?;
        let tx = fields.nth(7)?.parse().ok()?;
        Some((name.trim(), rx, tx))
    })
}

/// Whether a mount of file system type `fs` at `mount` is reported as a disk.
fn reported_mount(fs: &str, mount: &Path) -> bool {
    if SKIPPED_FILE_SYSTEMS.contains(&fs) {
        return false;
    }
    let under = |dir: &str| mount.starts_with(dir);
    !(under("/proc") || under("/sys") || under("/dev") || (under("/run") && !under("/run/media")))
}

/// This process's cgroup, as listed in `/proc/self/cgroup`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupPaths {
    /// The unified (v2) hierarchy path, from the `0::<path>` line.
    pub v2: Option<String>,
    /// The v1 memory controller's path, from the `<n>:...memory...:<path>` line.
    pub v1_memory: Option<String>,
}

impl CgroupPaths {
    /// Parses the content of `/proc/self/cgroup`.
    pub fn parse(content: &str) -> CgroupPaths {
        let mut out = CgroupPaths::default();
        for line in content.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if id == "0" && controllers.is_empty() {
                out.v2 = Some(path.to_string());
            } else if controllers.split(',').any(|c| c == "memory") {
                out.v1_memory = Some(path.to_string());
            }
        }
        out
    }

    /// The root cgroup in both hierarchies (what a process in a cgroup namespace sees).
    pub fn root() -> CgroupPaths {
        CgroupPaths {
            v2: Some("/".to_string()),
            v1_memory: Some("/".to_string()),
        }
    }
}

/// A cgroup's memory limit and current usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupMemory {
    /// The limit, in bytes.
    pub limit_bytes: u64,
    /// The memory charged to the cgroup, in bytes.
    pub usage_bytes: u64,
}

/// Reads the memory limit that applies to the cgroup `paths` under the cgroup mount `root`
/// (normally `/sys/fs/cgroup`).
///
/// Walks from the cgroup up to the root and returns the limited level with the least headroom;
/// v2 (`<root>/<path>/memory.max`, `memory.current`) is tried first, then v1
/// (`<root>/memory/<path>/memory.limit_in_bytes`, `memory.usage_in_bytes`). `None` when no level
/// has a limit (`max`, or a v1 value of 2^62 or more) or nothing is readable.
pub fn read_cgroup_memory(root: &Path, paths: &CgroupPaths) -> Option<CgroupMemory> {
    if let Some(p) = &paths.v2
        && let Some(m) = tightest(root, p, "memory.max", "memory.current")
    {
        return Some(m);
    }
    let v1 = root.join("memory");
    paths
        .v1_memory
        .as_deref()
        .and_then(|p| tightest(&v1, p, "memory.limit_in_bytes", "memory.usage_in_bytes"))
}

/// The limited level with the least headroom, from `cgroup` up to `/`, under `base`.
fn tightest(base: &Path, cgroup: &str, limit_file: &str, usage_file: &str) -> Option<CgroupMemory> {
    let mut best: Option<CgroupMemory> = None;
    let mut dir = PathBuf::from(base);
    dir.push(cgroup.trim_start_matches('/'));
    loop {
        if let Some(limit) = read_u64(&dir.join(limit_file)).filter(|l| *l < NO_LIMIT)
            && let Some(usage) = read_u64(&dir.join(usage_file))
        {
            let m = CgroupMemory {
                limit_bytes: limit,
                usage_bytes: usage,
            };
            let headroom = |m: &CgroupMemory| m.limit_bytes.saturating_sub(m.usage_bytes);
            if best.is_none_or(|b| headroom(&m) < headroom(&b)) {
                best = Some(m);
            }
        }
        if dir.as_path() == base || !dir.pop() || !dir.starts_with(base) {
            break;
        }
    }
    best
}

/// A file holding one unsigned integer; `None` for `max`, a missing file or garbage.
fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Default `sources.system.interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// The `system` source: one [`SystemCollector`] collecting every `every`.
pub struct Host {
    collector: SystemCollector,
    every: Duration,
}

impl Host {
    /// One collection of the metrics `sink` wants, stored at `now` as the `system` source.
    pub fn collect(&mut self, sink: &dyn Sink, samples: &mut Vec<ParsedSample>, now: Timestamp) {
        let wanted = sink.wanted();
        samples.clear();
        self.collector
            .collect(&|m| wanted.contains(m), &mut |name, labels, value| {
                samples.push(ParsedSample {
                    name: name.to_string(),
                    labels,
                    value,
                    timestamp_ms: None,
                });
            });
        sink.ingest("system", CONFIGURED_MAX_SERIES, samples, now);
    }
}

/// The `system` source when `sources.system` is set.
pub fn configured(ctx: &Context<'_>) -> Vec<Box<dyn Source>> {
    ctx.cfg
        .sources
        .system
        .as_ref()
        .map_or_else(Vec::new, |sys| vec![Box::new(from_config(sys)) as Box<dyn Source>])
}

/// The `system` source of `sources.system`.
pub fn from_config(sys: &SystemSource) -> Host {
    let processes = sys.processes.iter().map(|p| p.expose().to_string()).collect();
    Host {
        collector: SystemCollector::new(processes),
        every: sys.interval.as_ref().map(|d| d.value.0).unwrap_or(DEFAULT_INTERVAL),
    }
}

impl Source for Host {
    fn name(&self) -> String {
        "system".into()
    }

    fn every(&self) -> Duration {
        self.every
    }

    fn run(
        mut self: Box<Self>,
        sink: Arc<dyn Sink>,
        clock: fn() -> Timestamp,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut tick = tokio::time::interval(self.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut samples = Vec::new();
            loop {
                tick.tick().await;
                self.collect(&*sink, &mut samples, clock());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Runs one collect and returns (metric, labels, value) triples.
    fn run(c: &mut SystemCollector, wanted: &dyn Fn(&str) -> bool) -> Vec<(String, Labels, f64)> {
        let mut out = Vec::new();
        c.collect(wanted, &mut |m, l, v| out.push((m.to_string(), l, v)));
        out
    }

    fn by_name(samples: &[(String, Labels, f64)]) -> BTreeMap<String, Vec<(Labels, f64)>> {
        let mut m: BTreeMap<String, Vec<(Labels, f64)>> = BTreeMap::new();
        for (n, l, v) in samples {
            m.entry(n.clone()).or_default().push((l.clone(), *v));
        }
        m
    }

    fn unlabelled(m: &BTreeMap<String, Vec<(Labels, f64)>>, name: &str) -> f64 {
        let v = m.get(name).unwrap_or_else(|| panic!("{name} not emitted"));
        let found: Vec<f64> = v.iter().filter(|(l, _)| l.is_empty()).map(|(_, v)| *v).collect();
        assert_eq!(found.len(), 1, "{name}: {v:?}");
        found[0]
    }

    /// The kernel's name for this test binary (its file name, which may exceed 15 bytes).
    fn own_name() -> String {
        let exe = std::env::current_exe().unwrap();
        exe.file_name().unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn everything_wanted_emits_plausible_values() {
        let me = own_name();
        let mut c = SystemCollector::new(vec![me.clone(), "no-such-process-tocsin".to_string()]);
        let first = by_name(&run(&mut c, &|_| true));
        assert!(!first.contains_key("cpu_percent"), "first collect only primes CPU");
        assert!(!first.contains_key("process_cpu_percent"));
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let samples = run(&mut c, &|_| true);
        for (n, _, _) in &samples {
            assert!(SystemCollector::METRICS.contains(&n.as_str()), "{n} not in METRICS");
        }
        let m = by_name(&samples);

        let total = unlabelled(&m, "mem_total_bytes");
        let avail = unlabelled(&m, "mem_available_bytes");
        assert!(total > 0.0 && avail >= 0.0 && avail <= total, "{total} {avail}");
        let used = unlabelled(&m, "mem_used_percent");
        assert!((0.0..=100.0).contains(&used));
        assert!((used - (total - avail) / total * 100.0).abs() < 1.0);
        assert!(unlabelled(&m, "swap_total_bytes") >= unlabelled(&m, "swap_used_bytes"));

        let cpu = unlabelled(&m, "cpu_percent");
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
        let cores: Vec<_> = m["cpu_percent"]
            .iter()
            .filter(|(l, _)| l.get("cpu").is_some())
            .collect();
        assert!(!cores.is_empty());
        assert!(cores.iter().all(|(_, v)| (0.0..=100.0).contains(v)));
        assert_eq!(cores[0].0.get("cpu"), Some("0"));

        for n in ["load1", "load5", "load15"] {
            assert!(unlabelled(&m, n) >= 0.0);
        }
        assert!(unlabelled(&m, "uptime_seconds") > 0.0);
        #[cfg(target_os = "linux")]
        assert!(
            m["net_rx_bytes_total"]
                .iter()
                .any(|(l, _)| l.get("interface") == Some("lo"))
        );

        if let Some(disks) = m.get("disk_used_percent") {
            for (l, v) in disks {
                assert!(l.get("mount").is_some());
                assert!((0.0..=100.0).contains(v), "{l:?} {v}");
            }
        }
        if let Some(nets) = m.get("net_rx_bytes_total") {
            assert!(nets.iter().all(|(l, v)| l.get("interface").is_some() && *v >= 0.0));
        }

        let proc = |name: &str, who: &str| {
            m.get(name)
                .and_then(|v| v.iter().find(|(l, _)| l.get("process") == Some(who)).map(|(_, v)| *v))
                .unwrap_or_else(|| panic!("{name}{{process={who}}} not emitted"))
        };
        assert!(proc("process_count", &me) >= 1.0);
        assert!(proc("process_rss_bytes", &me) > 0.0);
        assert!(proc("process_virtual_bytes", &me) >= proc("process_rss_bytes", &me));
        assert!(proc("process_cpu_percent", &me) >= 0.0);
        assert_eq!(proc("process_count", "no-such-process-tocsin"), 0.0);
        assert_eq!(proc("process_rss_bytes", "no-such-process-tocsin"), 0.0);
    }

    #[test]
    fn free_percent_leaves_reserved_blocks_out_as_df_does() {
        // 100 GB, 20 GB free of which 5 GB reserved for root: df shows 80 used, 15 available.
        let gb = 1_000_000_000u64;
        assert_eq!(df_free_percent(80 * gb, 15 * gb), Some(15.0 / 95.0 * 100.0));
        // disk_used_percent keeps counting against the total: (100 − 15) / 100.
        assert_eq!(percent(100 * gb - 15 * gb, 100 * gb), 85.0);
        assert_eq!(df_free_percent(0, 0), None);
    }

    /// The root file system as `df` itself reports it (its used and available columns).
    #[cfg(target_os = "linux")]
    #[test]
    fn free_percent_agrees_with_df() {
        let out = std::process::Command::new("df")
            .args(["-B1", "--output=used,avail", "/"])
            .output()
            .expect("df runs");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let cols: Vec<f64> = text
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|c| c.parse().unwrap())
            .collect();
        let df = cols[1] / (cols[0] + cols[1]) * 100.0;
        let mut c = SystemCollector::new(Vec::new());
        let m = by_name(&run(&mut c, &|n| n == "disk_free_percent"));
        let root = m["disk_free_percent"]
            .iter()
            .find(|(l, _)| l.get("mount") == Some("/"))
            .map(|(_, v)| *v)
            .expect("disk_free_percent{mount=\"/\"}");
        // Files written between the two readings move it by a hair, never by a reserve's 5 %.
        assert!((root - df).abs() < 0.1, "tocsin {root} vs df {df}");
    }

    #[test]
    fn wanted_restricts_to_one_metric() {
        let mut c = SystemCollector::new(vec!["init".to_string()]);
        for _ in 0..2 {
            let s = run(&mut c, &|n| n == "mem_available_bytes");
            assert_eq!(s.len(), 1, "{s:?}");
            assert_eq!(s[0].0, "mem_available_bytes");
            assert!(s[0].1.is_empty() && s[0].2 > 0.0);
        }
        let s = run(&mut c, &|n| n == "process_count");
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].1.get("process"), Some("init"));
        let s = run(&mut c, &|_| false);
        assert!(s.is_empty());
    }

    #[test]
    fn process_names_match_exactly_or_by_kernel_truncation() {
        assert!(name_matches("postgres", b"postgres"));
        assert!(!name_matches("postgres", b"postgres: writer"));
        assert!(!name_matches("postgre", b"postgres"));
        assert!(name_matches("tocsin-0123456789abcdef", b"tocsin-01234567"));
        assert!(!name_matches("tocsin-012345678", b"tocsin-01234"));
    }

    #[test]
    fn parses_proc_net_dev() {
        let content = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456     100    0    0    0     0          0         0   123456     100    0    0    0     0       0          0
  eth0: 98765432109 5000    1    2    0     0          0         3 1234567890 4000    0    0    0     0       0          0
";
        let parsed: Vec<_> = parse_net_dev(content).collect();
        assert_eq!(parsed, vec![("lo", 123456, 123456), ("eth0", 98765432109, 1234567890)]);
    }

    #[test]
    fn pseudo_file_systems_are_skipped() {
        assert!(reported_mount("ext4", Path::new("/")));
        assert!(reported_mount("overlay", Path::new("/")));
        assert!(reported_mount("xfs", Path::new("/run/media/usb")));
        assert!(!reported_mount("tmpfs", Path::new("/tmp")));
        assert!(!reported_mount("squashfs", Path::new("/snap/core/1")));
        assert!(!reported_mount("ext4", Path::new("/run/user/1000")));
        assert!(!reported_mount("proc", Path::new("/proc")));
    }

    fn write(dir: &Path, rel: &str, content: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    #[test]
    fn parses_proc_self_cgroup() {
        let v2 = CgroupPaths::parse("0::/system.slice/tocsin.service\n");
        assert_eq!(v2.v2.as_deref(), Some("/system.slice/tocsin.service"));
        assert_eq!(v2.v1_memory, None);
        let hybrid = CgroupPaths::parse("5:cpu,cpuacct:/\n4:memory:/docker/abc\n0::/\n");
        assert_eq!(hybrid.v1_memory.as_deref(), Some("/docker/abc"));
        assert_eq!(hybrid.v2.as_deref(), Some("/"));
    }

    #[test]
    fn cgroup_v2_limit() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "memory.max", "1073741824\n");
        write(d.path(), "memory.current", "268435456\n");
        let m = read_cgroup_memory(d.path(), &CgroupPaths::root()).unwrap();
        assert_eq!(m.limit_bytes, 1 << 30);
        assert_eq!(m.usage_bytes, 1 << 28);
    }

    #[test]
    fn cgroup_v2_max_is_no_limit() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "memory.max", "max\n");
        write(d.path(), "memory.current", "268435456\n");
        assert_eq!(read_cgroup_memory(d.path(), &CgroupPaths::root()), None);
        assert_eq!(
            read_cgroup_memory(tempfile::tempdir().unwrap().path(), &CgroupPaths::root()),
            None
        );
    }

    #[test]
    fn cgroup_v2_limit_on_a_parent_applies() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "memory.max", "max\n");
        write(d.path(), "memory.current", "9000000000\n");
        write(d.path(), "app.slice/memory.max", "2000\n");
        write(d.path(), "app.slice/memory.current", "1500\n");
        write(d.path(), "app.slice/tocsin.service/memory.max", "max\n");
        write(d.path(), "app.slice/tocsin.service/memory.current", "1000\n");
        let paths = CgroupPaths {
            v2: Some("/app.slice/tocsin.service".to_string()),
            v1_memory: None,
        };
        let m = read_cgroup_memory(d.path(), &paths).unwrap();
        assert_eq!((m.limit_bytes, m.usage_bytes), (2000, 1500));
    }

    #[test]
    fn cgroup_v1_limit_and_unlimited() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "memory/memory.limit_in_bytes", "9223372036854771712\n");
        write(d.path(), "memory/memory.usage_in_bytes", "4096\n");
        write(d.path(), "memory/docker/abc/memory.limit_in_bytes", "536870912\n");
        write(d.path(), "memory/docker/abc/memory.usage_in_bytes", "134217728\n");
        let paths = CgroupPaths {
            v2: Some("/".to_string()),
            v1_memory: Some("/docker/abc".to_string()),
        };
        let m = read_cgroup_memory(d.path(), &paths).unwrap();
        assert_eq!((m.limit_bytes, m.usage_bytes), (512 << 20, 128 << 20));
        // Only the unlimited root: no limit applies.
        let root_only = CgroupPaths {
            v2: None,
            v1_memory: Some("/".to_string()),
        };
        assert_eq!(read_cgroup_memory(d.path(), &root_only), None);
    }

    /// Cost of one full collect (everything wanted, one watched process), after priming, with
    /// the CPU interval elapsed before each call as in the daemon, then per group of metrics.
    /// Run with `cargo test --release --lib -- --ignored collect_cost --nocapture`.
    #[test]
    #[ignore]
    fn collect_cost() {
        let mut c = SystemCollector::new(vec![own_name()]);
        let mut n = 0usize;
        c.collect(&|_| true, &mut |_, _, _| n += 1);
        let mut timed = |wanted: &dyn Fn(&str) -> bool| {
            let rounds = 10u32;
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..rounds {
                std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
                let start = std::time::Instant::now();
                c.collect(wanted, &mut |_, _, _| n += 1);
                spent += start.elapsed();
            }
            spent / rounds
        };
        eprintln!("full collect: {:?}/call", timed(&|_| true));
        let groups: [(&str, &[&str]); 7] = [
            ("memory", &["mem_", "swap_"]),
            ("cpu", &["cpu_"]),
            ("load+uptime", &["load", "uptime_"]),
            ("disks", &["disk_"]),
            ("networks", &["net_"]),
            ("processes", &["process_"]),
            ("cgroup", &["cgroup_"]),
        ];
        for (group, prefixes) in groups {
            eprintln!(
                "  {group}: {:?}/call",
                timed(&|m| prefixes.iter().any(|p| m.starts_with(p)))
            );
        }
        eprintln!("({n} samples in all)");
    }
}
