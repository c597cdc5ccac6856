//! Records the git commit tocsin is built from, for `tocsin --version`.
//!
//! Sets `TOCSIN_GIT_COMMIT` to `git rev-parse --short HEAD` when the package is the top of a
//! git checkout, else to `unknown`: a build from a tarball (no git, or unpacked inside some
//! other repository) must work and must not claim a commit it is not.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let commit = if is_checkout_top(&dir) {
        git(&dir, &["rev-parse", "--short", "HEAD"])
    } else {
        None
    };
    println!(
        "cargo:rustc-env=TOCSIN_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );

    // Re-run when HEAD moves: HEAD itself (a checkout of another branch or commit), the ref
    // it points to (a commit on the branch) and packed-refs (where `git gc` moves refs).
    // Asked through `git rev-parse --git-path`, since in a worktree `.git` is a file and the
    // refs live in the main repository. Without any of them, only build.rs changes matter;
    // printing nothing would make cargo re-run this on every change to the package.
    let mut watched = vec![dir.join("build.rs")];
    if commit.is_some() {
        let mut names = vec!["HEAD".to_string(), "packed-refs".to_string()];
        names.extend(git(&dir, &["symbolic-ref", "-q", "HEAD"]));
        for name in names {
            if let Some(p) = git(&dir, &["rev-parse", "--git-path", &name]) {
                let p = dir.join(p);
                if p.exists() {
                    watched.push(p);
                }
            }
        }
    }

    // Link order (ARCHITECTURE.md, "Link order"): the functions start-up and the idle loop
    // run, first in `.text`, so the code the idle daemon never runs is never faulted in.
    // A missing file builds the binary in the default order; watched either way (its folder
    // when missing) so that adding, regenerating or removing it relinks.
    let order = dir.join("dist").join("link-order.txt");
    if order.is_file() {
        if lld_orders_symbols(&order) {
            // Names a rebuild no longer has are expected (the file lags the code), hence
            // no warning for them; the path goes through `-Xlinker` as one verbatim
            // argument, since `-Wl,` would split a path with a comma.
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
            println!("cargo:rustc-link-arg-bins=-Xlinker");
            println!("cargo:rustc-link-arg-bins=--symbol-ordering-file={}", order.display());
        }
        watched.push(order);
    } else if let Some(parent) = order.parent().filter(|p| p.is_dir()) {
        watched.push(parent.to_path_buf());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");

    for p in watched {
        println!("cargo:rerun-if-changed={}", p.display());
    }

    // Packed relative relocations (DT_RELR): the loader reads about 10 KiB of them at start
    // instead of 850 KiB, and those pages stay resident for the daemon's whole life. The
    // binary then needs glibc 2.36 or newer, so only when building on such a glibc for it.
    let target_is_host = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    if target_is_host && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu") && glibc_has_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the binary is linked by rustc's own LLD and it reads `order` as a symbol
/// ordering file (GNU ld refuses the option). LLD is the default for
/// x86_64-unknown-linux-gnu since Rust 1.90, so: that target, nothing choosing another
/// linker, which cargo says through `RUSTC_LINKER` (`target.<triple>.linker`,
/// `CARGO_TARGET_<TRIPLE>_LINKER`) and the flags it passes (`RUSTFLAGS`, `build.rustflags`:
/// `-C linker=`, `-C linker-flavor=`, `-C link-self-contained=`, `-Z linker-features=`,
/// `-C link-arg=-fuse-ld=`), and a program linked with the option by the same compiler
/// (an older one, or one built without the LLD default, fails there). Any doubt is a no.
fn lld_orders_symbols(order: &Path) -> bool {
    if std::env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu")
        || std::env::var_os("RUSTC_LINKER").is_some()
    {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').filter(|f| !f.is_empty()).collect();
    if flags
        .iter()
        .any(|f| f.contains("linker") || f.contains("link-self-contained") || f.contains("fuse-ld"))
    {
        return false;
    }
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let probe = out_dir.join("ordering_probe.rs");
    if std::fs::write(&probe, "fn main() {}\n").is_err() {
        return false;
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .args(["--edition", "2021", "--target", "x86_64-unknown-linux-gnu"])
        .args(&flags)
        .args([
            "-C",
            "link-arg=-Wl,--no-warn-symbol-ordering",
            "-C",
            "link-arg=-Xlinker",
            "-C",
        ])
        .arg(format!("link-arg=--symbol-ordering-file={}", order.display()))
        .arg("-o")
        .arg(out_dir.join("ordering_probe"))
        .arg(&probe)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Whether the build machine's glibc (`getconf GNU_LIBC_VERSION`: `glibc 2.36`) loads DT_RELR.
fn glibc_has_relr() -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .trim()
        .trim_start_matches("glibc ")
        .split('.')
        .map(|n| n.parse::<u32>().ok());
    matches!((version.next(), version.next()), (Some(Some(major)), Some(Some(minor))) if (major, minor) >= (2, 36))
}

/// Whether `dir` is the top folder of a git work tree (not merely somewhere inside one).
fn is_checkout_top(dir: &Path) -> bool {
    let Some(top) = git(dir, &["rev-parse", "--show-toplevel"]) else {
        return false;
    };
    match (Path::new(&top).canonicalize(), dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The trimmed standard output of `git ARGS` run in `dir`, when git exists and succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
