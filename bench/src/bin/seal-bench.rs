//! One run of the sealer over many customers whose heads moved, against the AWS emulator
//! (moto: DynamoDB, S3 with Object Lock, KMS) through the real SDK clients. Prints one JSON
//! object.
//!
//!   seal-bench <customers>
//!     Records one activity for each of <customers> customers straight through the store (50
//!     customers per transaction, as a batch may hold), then times one run of
//!     `activity_log::handlers::seal`: the moved heads listed, each customer's latest anchor
//!     listed and links read, the seal signed once and each head's anchor written. Reports the
//!     customers sealed, the seconds, customers per second and the signatures. The emulator is
//!     one Python process: AWS answers each request faster and in parallel, so this is an upper
//!     bound of the run's time against the 900 s a Lambda invocation may take.

use std::time::Instant;

use activity_log::domain::PartnerId;
use activity_log::handlers::seal::{SealPorts, seal};
use activity_log::store::{ActivityWriter as _, Unchained};
use activity_log::testing::fixtures::synthetic_activity;
use chrono::{TimeDelta, Utc};

/// Customers per transaction: one activity and one head each, 100 writes.
const PER_WRITE: u64 = 50;

fn fail(message: &str) -> ! {
    eprintln!("seal-bench: {message}");
    std::process::exit(1)
}

#[tokio::main]
async fn main() {
    let customers: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| fail("usage: seal-bench <customers>"));
    let app = activity_log_tests::isolated_app().await;
    let partner = PartnerId::parse("p-seal").unwrap_or_else(|e| fail(&e.to_string()));
    let recorded_at = Utc::now() - TimeDelta::seconds(30);
    let started = Instant::now();
    let mut n = 0;
    while n < customers {
        let batch: Vec<Unchained> = (n..customers.min(n + PER_WRITE))
            .map(|i| {
                let mut a = synthetic_activity(i, &format!("customer-{i:06}"), recorded_at);
                a.recorded_at = recorded_at;
                a.chain = None;
                Unchained::new(&partner, a, None).unwrap_or_else(|e| fail(&e.to_string()))
            })
            .collect();
        app.store
            .insert_all(&partner, &batch)
            .await
            .unwrap_or_else(|e| fail(&e.to_string()));
        n += PER_WRITE;
    }
    let recording = started.elapsed().as_secs_f64();
    let signer = app.signer().unwrap_or_else(|e| fail(&e.to_string()));
    let anchors = app.anchors().unwrap_or_else(|e| fail(&e.to_string()));
    let ports = SealPorts {
        heads: &app.store,
        chains: &app.store,
        anchors,
        signer,
    };
    let started = Instant::now();
    let report = seal(&ports, Utc::now(), 365)
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    let seconds = started.elapsed().as_secs_f64();
    if report.sealed as u64 != customers {
        fail(&format!(
            "sealed {} of {customers}: {report:?}",
            report.sealed
        ));
    }
    println!(
        "{}",
        serde_json::json!({
            "customers": customers,
            "sealed": report.sealed,
            "seal": report.seal,
            "signatures": 1,
            "seconds": seconds,
            "customersPerSecond": customers as f64 / seconds,
            "recordingSeconds": recording,
            "concurrency": activity_log::handlers::seal::CONCURRENCY,
        })
    );
}
