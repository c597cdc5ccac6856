//! The HTTP listener against real sockets on 127.0.0.1: slow clients that never finish
//! their headers cannot exhaust the daemon. Past `max_connections` new connections are
//! closed at once, header-less connections are closed after the 10 s header timeout (so
//! this test takes about 11 s), idle keep-alive connections are closed, and running out of
//! file descriptors neither spins nor floods the log.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Whether the server closed `s` (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn half_header(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n").unwrap();
    s
}

#[test]
fn slow_clients_are_capped_and_timed_out() {
    let env = Env::new(
        "max_connections: 20\n",
        Some("sources: {}\n"),
        &rules_file("      - alert: A\n        expr: v > 5\n"),
    );
    let d = env.spawn(&[]);
    // A kept-alive connection that goes idle after one answer.
    let mut idle = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    idle.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..19).map(|_| half_header(d.port)).collect();
    // Every slot is taken (19 slow + 1 idle): the next connection is closed at once.
    let mut extra = wait_for(Duration::from_secs(5), || {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).ok()?;
        let _ = s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n");
        closed_within(&mut s, Duration::from_secs(1)).then_some(s)
    });
    assert!(
        extra.is_some(),
        "a connection past max_connections should be closed at once"
    );
    drop(extra.take());
    // The header timeout (10 s) frees the slots: the slow clients and the idle one are
    // closed, not before 9 s and by 13 s.
    assert!(
        !closed_within(&mut slow[0], Duration::from_secs(8)),
        "closed before the header timeout"
    );
    for s in &mut slow {
        let left = Duration::from_secs(13).saturating_sub(started.elapsed());
        assert!(closed_within(s, left), "a header-less connection outlived the timeout");
    }
    assert!(closed_within(
        &mut idle,
        Duration::from_secs(13).saturating_sub(started.elapsed())
    ));
    // And a new connection is served again, promptly.
    let asked = Instant::now();
    let r = get(d.port, "/-/healthy").expect("healthy answers");
    assert_eq!(r.status, 200);
    assert!(asked.elapsed() < Duration::from_secs(2), "took {:?}", asked.elapsed());
    let log = d.stderr();
    let lines = log.lines().filter(|l| l.contains("connection limit reached")).count();
    assert!((1..=2).contains(&lines), "refusals are logged, rate-limited:\n{log}");
}

/// CPU time (user + system) the process has used so far.
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

#[test]
fn running_out_of_file_descriptors_neither_spins_nor_floods_the_log() {
    let env = Env::new(
        "max_connections: 1000\n",
        Some("sources: {}\n"),
        &rules_file("      - alert: A\n        expr: v > 5\n"),
    );
    let d = env.spawn(&[]);
    // Leave the daemon a handful of descriptors beyond those it holds: the fault is real.
    let open = std::fs::read_dir(format!("/proc/{}/fd", d.pid())).unwrap().count();
    let limit = format!("--nofile={}", open + 6);
    let st = std::process::Command::new("prlimit")
        .args([&limit, "--pid", &d.pid()])
        .status()
        .unwrap();
    assert!(st.success());
    let slow: Vec<TcpStream> = (0..30).map(|_| half_header(d.port)).collect();
    // Let the accept loop hit EMFILE, then measure it for 3 s.
    let hit = wait_for(Duration::from_secs(5), || {
        d.stderr().contains("accept failed").then_some(())
    });
    assert!(hit.is_some(), "accept never failed; stderr:\n{}", d.stderr());
    let cpu = cpu_time(&d.pid());
    std::thread::sleep(Duration::from_secs(3));
    let spent = cpu_time(&d.pid()) - cpu;
    assert!(spent < Duration::from_millis(500), "spun: {spent:?} of CPU in 3 s");
    let log = d.stderr();
    let lines = log.lines().filter(|l| l.contains("accept failed")).count();
    assert_eq!(lines, 1, "accept errors are rate-limited:\n{log}");
    // Once the clients go, the descriptors come back and the daemon answers again.
    drop(slow);
    let healthy = wait_for(Duration::from_secs(15), || {
        get(d.port, "/-/healthy").ok().filter(|r| r.status == 200)
    });
    assert!(healthy.is_some(), "stderr:\n{}", d.stderr());
}
