//! The service's CloudWatch metrics, in Embedded Metric Format: one JSON line on stdout per
//! measurement, which CloudWatch Logs turns into metrics (no API call, no extra latency).
//!
//! Dimensions are the function and the outcome only, both from small fixed sets: the tenant
//! would make one metric per partner (unbounded cardinality, each billed). The partner and the
//! request id travel in the same line as plain properties, for CloudWatch Logs Insights.
//!
//! Each line publishes its metrics twice: by `Function` (what the alarms watch) and by
//! `Function` and `Outcome` (the dashboard's breakdown).

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The namespace when `METRICS_NAMESPACE` is not set (the template sets one per stack).
pub const DEFAULT_NAMESPACE: &str = "ActivityLog";
/// The dimensions of every metric.
pub const FUNCTION: &str = "Function";
pub const OUTCOME: &str = "Outcome";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
}

impl Metric {
    const fn count(name: &'static str) -> Self {
        Self {
            name,
            unit: Unit::Count,
        }
    }

    const fn milliseconds(name: &'static str) -> Self {
        Self {
            name,
            unit: Unit::Milliseconds,
        }
    }
}

/// Activities a record request stored (outcome `recorded`).
pub const ACTIVITIES_RECORDED: Metric = Metric::count("ActivitiesRecorded");
/// Requests answered with an error (outcome: its code, e.g. `ValidationFailed`).
pub const REQUESTS_REFUSED: Metric = Metric::count("RequestsRefused");
/// Activities a read returned (outcome `list` or `detail`).
pub const QUERY_ITEMS_RETURNED: Metric = Metric::count("QueryItemsReturned");
/// Rows of a finished export file (outcome `succeeded`).
pub const EXPORT_ROWS: Metric = Metric::count("ExportRows");
/// One export worker invocation, start to answer (outcome `succeeded`, `continued` (handed
/// over to the next invocation), `failed`, `skipped` or `error` (to be retried by Lambda)).
pub const EXPORT_DURATION: Metric = Metric::milliseconds("ExportDuration");
/// Exports that ended failed, as their users see them (outcome `failed`).
pub const EXPORTS_FAILED: Metric = Metric::count("ExportsFailed");

/// Checkpoints refused because the chain no longer extends the latest anchor (outcome
/// `inconsistent`): storage was changed behind the service's back.
pub const CHAIN_INCONSISTENCIES: Metric = Metric::count("ChainInconsistencies");

/// Activities the sequencer placed in their tenants' feeds (outcome `placed`).
pub const FEED_PLACED: Metric = Metric::count("FeedPlaced");
/// How long after it was recorded an activity got its feed position, the newest of a batch
/// (outcome `placed`): the feed's lag behind recording.
pub const FEED_LAG: Metric = Metric::milliseconds("FeedLag");
/// Activity inserts of the stream the sequencer could not read (outcome `unreadable`): they
/// are left out of the feed, so an alarm watches it.
pub const FEED_UNREADABLE: Metric = Metric::count("FeedUnreadable");

/// Events destinations acknowledged (outcome `delivered`).
pub const DELIVERED_EVENTS: Metric = Metric::count("DeliveredEvents");
/// Delivery attempts that failed (outcome `delivered`): a destination is failing.
pub const DELIVERY_FAILURES: Metric = Metric::count("DeliveryFailures");
/// How long the oldest activity a run delivered had waited since it was recorded (outcome
/// `delivered`): delivery's lag behind recording.
pub const DELIVERY_LAG: Metric = Metric::milliseconds("DeliveryLag");

/// Every metric the functions publish.
pub const METRICS: [Metric; 13] = [
    ACTIVITIES_RECORDED,
    REQUESTS_REFUSED,
    QUERY_ITEMS_RETURNED,
    EXPORT_ROWS,
    EXPORT_DURATION,
    EXPORTS_FAILED,
    CHAIN_INCONSISTENCIES,
    FEED_PLACED,
    FEED_LAG,
    FEED_UNREADABLE,
    DELIVERED_EVENTS,
    DELIVERY_FAILURES,
    DELIVERY_LAG,
];

static FUNCTION_NAME: OnceLock<&'static str> = OnceLock::new();
static NAMESPACE: OnceLock<String> = OnceLock::new();

/// Names the function in its metrics (its crate's name, e.g. `record-activity`); its `main`
/// calls this first. Unset, the dimension is `unknown`.
pub fn set_function(name: &'static str) {
    let _ = FUNCTION_NAME.set(name);
}

/// The function's name as [`set_function`] gave it.
pub fn function() -> &'static str {
    FUNCTION_NAME.get().copied().unwrap_or("unknown")
}

/// Sets the namespace of the function's metrics (`METRICS_NAMESPACE`, read with the
/// configuration); unset, [`DEFAULT_NAMESPACE`].
pub fn set_namespace(namespace: Option<String>) {
    let _ = NAMESPACE.set(namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()));
}

fn namespace() -> &'static str {
    NAMESPACE.get_or_init(|| DEFAULT_NAMESPACE.to_owned())
}

/// Who a measurement is about, written beside it (never a dimension).
#[derive(Clone, Copy, Debug, Default)]
pub struct About<'a> {
    pub partner: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// The EMF line of `values` with this `outcome`.
pub fn line(outcome: &str, values: &[(Metric, f64)], about: About<'_>) -> String {
    let timestamp = chrono::Utc::now().timestamp_millis();
    let metrics: Vec<Value> = values
        .iter()
        .map(|(m, _)| json!({ "Name": m.name, "Unit": m.unit.as_str() }))
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": namespace(),
                "Dimensions": [[FUNCTION], [FUNCTION, OUTCOME]],
                "Metrics": metrics,
            }],
        }),
    );
    root.insert(FUNCTION.into(), json!(function()));
    root.insert(OUTCOME.into(), json!(outcome));
    for (m, v) in values {
        root.insert(m.name.into(), json!(v));
    }
    if let Some(p) = about.partner {
        root.insert("partner".into(), json!(p));
    }
    if let Some(r) = about.request_id {
        root.insert("requestId".into(), json!(r));
    }
    Value::Object(root).to_string()
}

thread_local! {
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Publishes `values` (one line on stdout, or into [`capture`]'s buffer on this thread).
pub fn emit(outcome: &str, values: &[(Metric, f64)], about: About<'_>) {
    let line = line(outcome, values, about);
    let kept = CAPTURED.with(|c| match c.borrow_mut().as_mut() {
        Some(lines) => {
            lines.push(line.clone());
            true
        }
        None => false,
    });
    if !kept {
        // One write of the whole line, so lines of concurrent tasks never interleave.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(format!("{line}\n").as_bytes());
        let _ = out.flush();
    }
}

/// Keeps this thread's metric lines instead of printing them until the guard is dropped; what
/// tests read (a current-thread runtime runs a handler on the test's thread).
pub fn capture() -> Capture {
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    Capture(())
}

pub struct Capture(());

impl Capture {
    /// The lines published since the capture began (or the last call), as JSON.
    pub fn take(&self) -> Vec<Value> {
        CAPTURED
            .with(|c| {
                c.borrow_mut()
                    .as_mut()
                    .map(std::mem::take)
                    .unwrap_or_default()
            })
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURED.with(|c| *c.borrow_mut() = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_an_emf_document_with_bounded_dimensions() {
        let l = line(
            "recorded",
            &[(ACTIVITIES_RECORDED, 3.0)],
            About {
                partner: Some("p1"),
                request_id: Some("r1"),
            },
        );
        let v: Value = serde_json::from_str(&l).unwrap();
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], DEFAULT_NAMESPACE);
        assert_eq!(
            directive["Dimensions"],
            json!([["Function"], ["Function", "Outcome"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "ActivitiesRecorded", "Unit": "Count"}])
        );
        assert!(v["_aws"]["Timestamp"].as_i64().is_some_and(|t| t > 0));
        assert_eq!(v["ActivitiesRecorded"], 3.0);
        assert_eq!(v["Outcome"], "recorded");
        assert_eq!(v["partner"], "p1");
        assert_eq!(v["requestId"], "r1");
        // Every dimension named has a value in the line; the tenant is not a dimension.
        let sets = directive["Dimensions"].as_array().unwrap();
        for d in sets.iter().flat_map(|s| s.as_array().unwrap()) {
            assert!(v[d.as_str().unwrap()].is_string(), "{d}");
            assert_ne!(d, "partner");
        }
    }

    #[test]
    fn a_capture_keeps_this_threads_lines_until_it_ends() {
        let c = capture();
        emit("x", &[(EXPORT_ROWS, 1.0)], About::default());
        let lines = c.take();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["ExportRows"], 1.0);
        assert!(c.take().is_empty());
        drop(c);
        CAPTURED.with(|c| assert!(c.borrow().is_none()));
    }
}
