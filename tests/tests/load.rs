//! The bounded load run (20 concurrent clients, 10,000 records in batches of 25, client retries
//! on 429/5xx) against the local stack over real HTTP; afterwards the log and its CSV export hold
//! exactly the 10,000 records, none twice. `ACTIVITY_LOG_LOAD_RECORDS` scales it.
//! The figures are printed (run with `--nocapture`), not asserted: this machine is shared.

use activity_log_tests::load::{LoadPlan, run};
use activity_log_tests::{emulator, local_stack, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_clients_record_ten_thousand_activities_exactly_once() {
    let s3 = emulator().await;
    // Several instances per function, as Lambda would scale out under concurrent calls.
    let stack = local_stack(&s3, &[], 4).await;
    let records = std::env::var("ACTIVITY_LOG_LOAD_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let plan = LoadPlan {
        base: stack.base.clone(),
        writer_token: token("load", &["ActivityWriter"], "load", 3600),
        reader_token: token("load", &["GlobalAdmin"], "load", 3600),
        clients: 20,
        records,
        batch: 25,
        run_id: "load".into(),
    };
    let report = run(&plan)
        .await
        .unwrap_or_else(|e| panic!("load run failed: {e}"));
    eprintln!("{report}");
    assert_eq!(report.read_back, records, "records read back");
    assert_eq!(
        report.read_back_unique, records,
        "distinct records read back"
    );
    assert_eq!(report.exported_rows, records, "rows exported");
    assert_eq!(report.exported_unique, records, "distinct rows exported");
    assert!(report.requests >= records.div_ceil(plan.batch));
}
