//! `scripts/load`: the bounded load run against a running stack (e.g. `scripts/dev`).
//!
//!   load <api-url> <writer-token> <reader-token> [clients] [records] [batch]
//!
//! Prints throughput and latency figures and exits non-zero unless the log and its export hold
//! every record exactly once.

use std::process::ExitCode;

use activity_log_tests::load::{LoadPlan, run};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| {
        args.get(i)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let (Some(base), Some(writer), Some(reader)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!(
            "usage: load <api-url> <writer-token> <reader-token> [clients] [records] [batch] [customers]"
        );
        return ExitCode::from(2);
    };
    let plan = LoadPlan {
        base: base.trim_end_matches('/').to_owned(),
        writer_token: writer.clone(),
        reader_token: reader.clone(),
        clients: number(3, 20).max(1),
        records: number(4, 10_000),
        batch: number(5, 25).clamp(1, 50),
        customers: number(6, 7).max(1),
        run_id: format!("load-{}", ulid::Ulid::generate().to_string().to_lowercase()),
    };
    println!(
        "load: {} clients, {} records in batches of {} against {} (run {})",
        plan.clients, plan.records, plan.batch, plan.base, plan.run_id
    );
    match run(&plan).await {
        Ok(report) => {
            println!("{report}");
            let exact = report.read_back == plan.records
                && report.read_back_unique == plan.records
                && report.exported_rows == plan.records
                && report.exported_unique == plan.records
                && report.chains_are_gapless();
            if exact {
                println!("every record is in the log and in the export exactly once");
                ExitCode::SUCCESS
            } else {
                eprintln!("MISMATCH: expected exactly {} records", plan.records);
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("load run failed: {e}");
            ExitCode::FAILURE
        }
    }
}
