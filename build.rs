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
    for p in watched {
        println!("cargo:rerun-if-changed={}", p.display());
    }
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
