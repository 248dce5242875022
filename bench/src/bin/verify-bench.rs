//! Verifier throughput (BENCHMARKS.md, "Tamper-evident log"): a JSON Lines export of N rows of
//! ten customers, interleaved as an export holds them, with its signed manifest, checked by
//! `activity-log-verify`'s library on this one thread (SHA-256 of the file, every row's hash,
//! every link, every signature). Prints `{"rows", "bytes", "cpuSeconds": [..], "rowsPerSecond"}`
//! for the median of three checks, measured as this thread's CPU time.
//!   verify-bench [rows, default 200000]

use std::process::ExitCode;
use std::time::Duration;

use activity_log::testing::signed as synthetic;
use activity_log_verify::{Key, verify_export};
use chrono::{TimeDelta, Utc};
use serde_json::json;

const CUSTOMERS: u64 = 10;
const PARTNER: &str = "bench-partner";

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given, which is valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn main() -> ExitCode {
    match run() {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("verify-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<serde_json::Value, String> {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let signer = synthetic::Signer::new([7u8; 32], "bench-key")?;
    let start = Utc::now() - TimeDelta::days(30);
    let mut chains = Vec::new();
    let mut checkpoints = Vec::new();
    for c in 0..CUSTOMERS {
        let customer = format!("customer-{c}");
        let (chain, head) = synthetic::chain(PARTNER, &customer, rows / CUSTOMERS, start)?;
        checkpoints.push(signer.checkpoint(
            PARTNER,
            &customer,
            &head,
            "2026-11-28T10:00:00.000Z",
        )?);
        chains.push(chain);
    }
    // Newest first across customers, as an export of the tenant holds them.
    let mut all = Vec::with_capacity(usize::try_from(rows).unwrap_or(0));
    for i in (0..(rows / CUSTOMERS) as usize).rev() {
        for chain in &chains {
            all.push(chain[i].clone());
        }
    }
    let file = synthetic::jsonl(&all)?;
    let manifest = synthetic::manifest(
        &signer,
        PARTNER,
        &file,
        &all,
        &checkpoints,
        "2026-11-28T10:00:00.000Z",
    )?;
    let manifest = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let key = Key::from_pem(&signer.public_key_pem()?)?;

    let mut runs = Vec::new();
    for _ in 0..3 {
        let before = thread_cpu();
        let report = verify_export(&file, &manifest, &key).map_err(|e| e.to_string())?;
        let spent = thread_cpu() - before;
        if report.rows != all.len() as u64 {
            return Err(format!("checked {} rows of {}", report.rows, all.len()));
        }
        runs.push(spent.as_secs_f64());
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[1];
    Ok(json!({
        "rows": all.len(),
        "bytes": file.len(),
        "cpuSeconds": runs,
        "rowsPerSecond": all.len() as f64 / median,
    }))
}
