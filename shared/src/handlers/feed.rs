//! The feed (README, "Streaming"): the sequencer, which gives each recorded activity its
//! tenant's next position as the table's stream reports the write, and `GET /feed`, which reads
//! a tenant's activities in that order.

use std::time::Duration;

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::config::Config;
use crate::domain::feed::{FeedEntry, Inserted, MAX_APPEND, StreamEvent};
use crate::domain::{Identity, PartnerId};
use crate::http::ApiError;
use crate::http::params::FeedParams;
use crate::http::response::{ActivityView, Links, json};
use crate::metrics;
use crate::store::{FeedAppend, FeedLog, StoreError};

/// Appends one tenant's batch tries before the run fails (Lambda then delivers the records
/// again; what was placed stays placed).
const APPEND_ATTEMPTS: u32 = 12;
/// Response bytes a feed page may fill (Lambda responses are limited to 6 MB).
const PAGE_BYTE_BUDGET: usize = crate::handlers::query::PAGE_BYTE_BUDGET;

/// What one run of the sequencer did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SequenceReport {
    /// Activities given a position by this run.
    pub placed: usize,
    /// Activities that held a position already (records delivered again) or were gone.
    pub already_placed: usize,
    pub partners: usize,
    /// Records that were not activity inserts.
    pub other_records: usize,
    /// Activity inserts whose image could not be read (their keys).
    pub unreadable: Vec<String>,
}

/// Places the activities `event` inserted, each tenant's in stream order after its feed's head.
pub async fn sequence<F: FeedLog>(
    feed: &F,
    event: &StreamEvent,
) -> Result<SequenceReport, StoreError> {
    let Inserted {
        by_partner,
        other_records,
        unreadable,
        newest_recorded_at,
    } = event.inserted();
    for key in &unreadable {
        tracing::error!(item = %key, "an activity insert without a readable image: not placed in the feed");
    }
    let mut report = SequenceReport {
        partners: by_partner.len(),
        other_records,
        unreadable,
        ..SequenceReport::default()
    };
    let results =
        futures_util::future::join_all(by_partner.iter().map(|(p, e)| place_all(feed, p, e))).await;
    for result in results {
        let (placed, already) = result?;
        report.placed += placed;
        report.already_placed += already;
    }
    let mut values = vec![(metrics::FEED_PLACED, report.placed as f64)];
    if let Some(at) = newest_recorded_at.filter(|_| report.placed > 0) {
        let lag = (Utc::now() - at).num_milliseconds().max(0);
        values.push((metrics::FEED_LAG, lag as f64));
    }
    metrics::emit("placed", &values, metrics::About::default());
    if !report.unreadable.is_empty() {
        metrics::emit(
            "unreadable",
            &[(metrics::FEED_UNREADABLE, report.unreadable.len() as f64)],
            metrics::About::default(),
        );
    }
    Ok(report)
}

/// Places one tenant's entries, [`MAX_APPEND`] per transaction: how many it placed, and how
/// many held a position already or were gone.
async fn place_all<F: FeedLog>(
    feed: &F,
    partner: &PartnerId,
    entries: &[FeedEntry],
) -> Result<(usize, usize), StoreError> {
    let mut head = feed.feed_head(partner).await?;
    let (mut placed, mut already) = (0, 0);
    for chunk in entries.chunks(MAX_APPEND) {
        let mut pending: Vec<FeedEntry> = chunk.to_vec();
        let mut attempt = 0;
        while !pending.is_empty() {
            match feed.append_feed(partner, head, &pending).await? {
                FeedAppend::Appended => {
                    head += pending.len() as u64;
                    placed += pending.len();
                    pending.clear();
                    continue;
                }
                FeedAppend::Placed(indexes) => {
                    already += indexes.len();
                    pending = pending
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !indexes.contains(i))
                        .map(|(_, e)| e)
                        .collect();
                    continue;
                }
                FeedAppend::HeadMoved => {}
            }
            attempt += 1;
            if attempt >= APPEND_ATTEMPTS {
                return Err(StoreError::Unavailable(format!(
                    "the feed head of {partner} kept moving (other sequencers)"
                )));
            }
            pause(attempt).await;
            head = feed.feed_head(partner).await?;
        }
    }
    Ok((placed, already))
}

/// A pause drawn at random up to 20 ms · 2ⁿ (at most 1.3 s), so sequencers that met on a
/// tenant's head do not meet again.
async fn pause(attempt: u32) {
    let ceiling = 20 * 2u128.pow(attempt.min(6));
    let millis = ulid::Ulid::generate().random() % ceiling;
    tokio::time::sleep(Duration::from_millis(u64::try_from(millis).unwrap_or(20))).await;
}

/// The body of `GET /feed`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FeedResponse<'a> {
    items: &'a [ActivityView<'a>],
    /// Pass it as `after` to read on: every position up to it has been read.
    next_position: u64,
    /// The last position given when the page was read.
    head_position: u64,
}

/// `GET /feed?after=&limit=`: the caller's tenant's activities at positions after `after`, in
/// position order.
pub async fn serve_feed<F: FeedLog>(
    config: &Config,
    feed: &F,
    who: &Identity,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let params = FeedParams::from_request(req)?;
    let head = feed.feed_head(&who.partner).await?;
    let mut page = feed
        .feed_page(&who.partner, params.after, head, params.limit)
        .await?;
    // Cut the page before the response grows too large; the rest is read next time.
    let mut bytes = 0;
    let mut keep = page.activities.len();
    for (i, a) in page.activities.iter().enumerate() {
        bytes += ActivityView::estimated_bytes(a);
        if bytes > PAGE_BYTE_BUDGET && i > 0 {
            keep = i;
            break;
        }
    }
    if keep < page.activities.len() {
        page.activities.truncate(keep);
        page.last = page
            .activities
            .last()
            .and_then(|a| a.feed_position)
            .unwrap_or(params.after);
    }
    let links = Links::new(config.subscriptions_url_template.as_str());
    let views: Vec<ActivityView> = page
        .activities
        .iter()
        .map(|a| ActivityView::new(a, None, &links))
        .collect();
    metrics::emit(
        "feed",
        &[(metrics::QUERY_ITEMS_RETURNED, views.len() as f64)],
        metrics::About {
            partner: Some(who.partner.as_str()),
            request_id: None,
        },
    );
    Ok(json(
        StatusCode::OK,
        &FeedResponse {
            items: &views,
            next_position: page.last,
            head_position: head,
        },
    ))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde_json::Value;

    use super::*;
    use crate::domain::Activity;
    use crate::handlers::query;
    use crate::store::ActivityReader as _;
    use crate::store::memory::MemoryStore;
    use crate::testing::ApiRequest;
    use crate::testing::fixtures::{self, insert_activities, json_body, synthetic_activity};

    fn partner(p: &str) -> PartnerId {
        PartnerId::parse(p).unwrap()
    }

    /// The stream records the table would carry for `rows` of `partner` (new images).
    fn inserts(partner: &str, rows: &[Activity]) -> StreamEvent {
        serde_json::from_value(fixtures::stream_inserts(&self::partner(partner), rows)).unwrap()
    }

    /// `n` activities of `customers` customers, the later ones occurring earlier (late
    /// arrivals), stored for `p`.
    async fn stored(store: &MemoryStore, p: &str, prefix: &str, n: u64) -> Vec<Activity> {
        let now = Utc::now();
        let rows: Vec<Activity> = (0..n)
            .map(|i| {
                let mut a = synthetic_activity(
                    i,
                    &format!("c{}", i % 3),
                    now - TimeDelta::hours(i64::try_from(i).unwrap()),
                );
                a.id = crate::domain::ActivityId::parse(&format!("{prefix}{i}")).unwrap();
                a
            })
            .collect();
        insert_activities(store, &partner(p), &rows).await;
        rows
    }

    async fn read(store: &MemoryStore, p: &str, query_string: &[(&str, &str)]) -> (u16, Value) {
        let mut req = ApiRequest::get("/feed").caller(p, &["HelpdeskAgent"]);
        for (name, value) in query_string {
            req = req.query(name, value);
        }
        let r = query::handle(&fixtures::config(), store, store, req.build()).await;
        (r.status().as_u16(), json_body(&r))
    }

    fn ids(page: &Value) -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn the_sequencer_places_each_tenant_in_stream_order_once_however_often_records_come() {
        let store = MemoryStore::default();
        let p1 = stored(&store, "p1", "a", 120).await;
        let p2 = stored(&store, "p2", "b", 3).await;
        // Interleaved, as one shard would carry them.
        let mut event = inserts("p1", &p1[..60]);
        event.records.extend(inserts("p2", &p2).records);
        event.records.extend(inserts("p1", &p1[60..]).records);
        let report = sequence(&store, &event).await.unwrap();
        assert_eq!(
            (report.placed, report.already_placed, report.partners),
            (123, 0, 2)
        );
        assert_eq!(store.feed_head(&partner("p1")).await.unwrap(), 120);
        assert_eq!(store.feed_head(&partner("p2")).await.unwrap(), 3);

        // Delivered again (Lambda retries a batch): nothing moves.
        let again = sequence(&store, &event).await.unwrap();
        assert_eq!((again.placed, again.already_placed), (0, 123));
        assert_eq!(store.feed_head(&partner("p1")).await.unwrap(), 120);

        // Read back in pages: stream order, every one once, positions 1..=120 without a gap.
        let (mut after, mut seen, mut positions) = (0u64, Vec::new(), Vec::new());
        loop {
            let (status, page) = read(
                &store,
                "p1",
                &[("after", &after.to_string()), ("limit", "50")],
            )
            .await;
            assert_eq!(status, 200, "{page}");
            assert_eq!(page["headPosition"], 120);
            if page["items"].as_array().unwrap().is_empty() {
                assert_eq!(page["nextPosition"], after);
                break;
            }
            seen.extend(ids(&page));
            positions.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["feedPosition"].as_u64().unwrap()),
            );
            after = page["nextPosition"].as_u64().unwrap();
        }
        let expected: Vec<String> = p1.iter().map(|a| a.id.to_string()).collect();
        assert_eq!(seen, expected);
        assert_eq!(positions, (1..=120).collect::<Vec<u64>>());

        // The activity itself shows its position.
        let detail = store
            .get(&partner("p1"), &p1[7].customer_id, &p1[7].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.feed_position, Some(8));
    }

    #[tokio::test]
    async fn a_tenant_reads_only_its_own_feed_and_a_gone_activity_is_skipped() {
        let store = MemoryStore::default();
        let p1 = stored(&store, "p1", "a", 4).await;
        let p2 = stored(&store, "p2", "b", 2).await;
        sequence(&store, &inserts("p1", &p1)).await.unwrap();
        sequence(&store, &inserts("p2", &p2)).await.unwrap();
        let (_, page) = read(&store, "p2", &[]).await;
        assert_eq!(ids(&page), ["b0", "b1"]);
        assert_eq!(
            (page["nextPosition"].as_u64(), page["headPosition"].as_u64()),
            (Some(2), Some(2))
        );

        // Past retention (or deleted): its position is passed over, the rest stays in order.
        assert!(store.remove_activity(&partner("p1"), p1[1].customer_id.as_str(), "a1"));
        let (_, page) = read(&store, "p1", &[("limit", "2")]).await;
        assert_eq!(ids(&page), ["a0"]);
        assert_eq!(page["nextPosition"], 2);
        let (_, page) = read(&store, "p1", &[("after", "2")]).await;
        assert_eq!(ids(&page), ["a2", "a3"]);
        // At or past the head: empty, and the position stays.
        let (status, page) = read(&store, "p1", &[("after", "99")]).await;
        assert_eq!(
            (status, ids(&page).len(), page["nextPosition"].as_u64()),
            (200, 0, Some(99))
        );
    }

    #[tokio::test]
    async fn bad_feed_parameters_get_a_400_that_names_them() {
        let store = MemoryStore::default();
        for (query_string, code) in [
            (vec![("after", "-1")], "InvalidParameter"),
            (vec![("after", "x")], "InvalidParameter"),
            (vec![("after", "9007199254740992")], "InvalidParameter"),
            (vec![("limit", "0")], "InvalidLimit"),
            (vec![("limit", "1001")], "InvalidLimit"),
            (vec![("from", "2026-01-01")], "UnknownParameter"),
        ] {
            let (status, body) = read(&store, "p1", &query_string).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some(code)),
                "{query_string:?}"
            );
            let name = query_string[0].0;
            assert!(
                body["error"]["message"].as_str().unwrap().contains(name),
                "{body}"
            );
        }
        let r = query::handle(
            &fixtures::config(),
            &store,
            &store,
            ApiRequest::get("/feed")
                .caller("p1", &["ActivityWriter"])
                .build(),
        )
        .await;
        assert_eq!(r.status(), 403);
    }
}
