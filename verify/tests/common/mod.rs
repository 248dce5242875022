//! Shared by the verifier's tests: keys, a scratch directory, running the binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use activity_log::testing::signed::Signer;
use chrono::{DateTime, Utc};

pub const PARTNER: &str = "partner-1";

/// The service's key in the tests.
pub fn service_key() -> Signer {
    Signer::new(
        [7; 32],
        "arn:aws:kms:ap-northeast-1:111122223333:key/service",
    )
    .unwrap()
}

/// Someone else's key.
pub fn other_key() -> Signer {
    Signer::new([9; 32], "arn:aws:kms:ap-northeast-1:444455556666:key/other").unwrap()
}

pub fn ts(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// A directory of its own under the system's temporary directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "activity-log-verify-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run of the binary printed and its exit code.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs `activity-log-verify` with `args`.
pub fn verify<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_activity-log-verify"))
        .args(args)
        .env_remove("ACTIVITY_LOG_TOKEN")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

pub fn path_arg(p: &Path) -> &std::ffi::OsStr {
    p.as_os_str()
}
