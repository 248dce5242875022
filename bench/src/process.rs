//! Child processes measured from outside: CPU time (user + system) from `wait4`'s `rusage`, for
//! exactly one process; peak RSS from `/proc/<pid>/status` (`VmHWM`) while it lives. (`rusage`'s
//! `ru_maxrss` is no use here: it carries over the forking parent's RSS across `exec`.)

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What the kernel accounted to a process over its whole life.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub user: Duration,
    pub system: Duration,
    /// Exit code, or `None` when a signal ended the process.
    pub code: Option<i32>,
}

impl Usage {
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }
}

/// A child that is killed if it is dropped before [`Measured::kill_and_measure`] or
/// [`Measured::wait_and_measure`] reaped it.
pub struct Measured {
    child: Option<Child>,
}

/// Where a measured process's stdout goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Appended to the log, with stderr.
    Log,
    /// A pipe, read by [`Measured::output_and_measure`].
    Piped,
}

impl Measured {
    /// Starts `program` with `envs` added and stdin closed; stderr is appended to `log`, and
    /// stdout too unless `stdout` is [`Stdout::Piped`] (for tools that print their result, read
    /// by [`Measured::output_and_measure`]).
    pub fn spawn(
        program: &Path,
        args: &[&str],
        envs: &[(String, String)],
        log: &Path,
        stdout: Stdout,
    ) -> std::io::Result<Self> {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let out = match stdout {
            Stdout::Log => Stdio::from(err.try_clone()?),
            Stdout::Piped => Stdio::piped(),
        };
        let child = Command::new(program)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        Ok(Self { child: Some(child) })
    }

    /// The process's peak resident set so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> std::io::Result<u64> {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| std::io::Error::other("already reaped"))?;
        peak_rss_kib(&format!("/proc/{pid}/status"))
    }

    /// Reads the piped stdout to its end (the process closing it), then reaps the process.
    pub fn output_and_measure(mut self) -> std::io::Result<(String, Usage)> {
        let mut text = String::new();
        if let Some(out) = self.child.as_mut().and_then(|c| c.stdout.as_mut()) {
            std::io::Read::read_to_string(out, &mut text)?;
        }
        let usage = self.reap()?;
        Ok((text, usage))
    }

    /// Waits for the process to exit by itself.
    pub fn wait_and_measure(mut self) -> std::io::Result<Usage> {
        self.reap()
    }

    /// Ends the process (SIGKILL: it is idle, waiting for its next event) and reaps it.
    pub fn kill_and_measure(mut self) -> std::io::Result<Usage> {
        if let Some(c) = self.child.as_mut() {
            c.kill()?;
        }
        self.reap()
    }

    fn reap(&mut self) -> std::io::Result<Usage> {
        let child = self
            .child
            .take()
            .ok_or_else(|| std::io::Error::other("already reaped"))?;
        let pid = libc::pid_t::try_from(child.id()).map_err(std::io::Error::other)?;
        // `Child` would reap the process itself on `wait`; it is forgotten here instead, and its
        // pipes close when it drops.
        drop(child);
        let mut status: libc::c_int = 0;
        // SAFETY: `rusage` is plain data that `wait4` fills in; `status` is a valid out-pointer.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let reaped = loop {
            // SAFETY: as above; `pid` is our own unreaped child.
            let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            }
            break r;
        };
        if reaped != pid {
            return Err(std::io::Error::last_os_error());
        }
        let tv = |t: libc::timeval| {
            Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
                + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
        };
        Ok(Usage {
            user: tv(usage.ru_utime),
            system: tv(usage.ru_stime),
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        })
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `VmHWM` of a `/proc/.../status` file, in KiB.
pub fn peak_rss_kib(status_file: &str) -> std::io::Result<u64> {
    std::fs::read_to_string(status_file)?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no VmHWM in {status_file}")))
}
