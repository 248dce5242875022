//! The bounded load runs against the local stack over real HTTP (client retries on 429/5xx):
//! 20 concurrent clients record 10,000 activities of 7 customers in batches of 25, then 2,000 of
//! just 3 customers, whose chains they all append to at once. Afterwards the log and its CSV
//! export hold exactly the records, none twice, each customer's sequences are exactly 1..n, the
//! tenant's feed (placed by the sequencer from the table's stream) holds them at consecutive
//! positions, each once, and the verifier passes every chain through the API. `ACTIVITY_LOG_LOAD_RECORDS` scales the first.
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
        customers: 7,
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
    assert!(report.chains_are_gapless(), "{:?}", report.sequences);
    // The feed: every record once, at consecutive positions, late ones included.
    assert_eq!(
        (report.feed.rows, report.feed.unique, report.feed.foreign),
        (records, records, 0),
        "{report}"
    );
    assert!(report.feed.consecutive, "{report}");
    // Read while it was being written, from the last position each time: each record once.
    assert_eq!(
        (report.feed.followed, report.feed.followed_twice),
        (records, 0),
        "{report}"
    );

    // Few customers, long chains: every client appends to the same three heads.
    let plan = LoadPlan {
        records: 2_000,
        customers: 3,
        run_id: "chain".into(),
        ..plan
    };
    let report = run(&plan)
        .await
        .unwrap_or_else(|e| panic!("chain load run failed: {e}"));
    eprintln!("three chains:\n{report}");
    assert_eq!(
        (
            report.read_back,
            report.read_back_unique,
            report.exported_unique
        ),
        (2_000, 2_000, 2_000)
    );
    assert_eq!((report.feed.rows, report.feed.unique), (2_000, 2_000));
    assert!(report.feed.consecutive, "{report}");
    assert_eq!(report.sequences.len(), 3);
    for (customer, sequences) in &report.sequences {
        let n = sequences.len() as u64;
        assert!(
            sequences.iter().copied().eq(1..=n),
            "{customer}: not exactly 1..{n}"
        );
        let options =
            activity_log_verify::ApiOptions::new(&stack.base, &plan.reader_token, customer);
        let lines = activity_log_verify::verify_api(&options)
            .await
            .map(|r| r.lines())
            .unwrap_or_else(|e| panic!("{customer}: {e}"));
        eprintln!("{}", lines.join("\n"));
        assert!(lines[0].contains(&format!("sequences 1–{n}")), "{lines:?}");
    }
}
