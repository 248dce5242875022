//! The feed against the emulator: activities recorded through the record handler with the real
//! SDK clients, the table's real stream (DynamoDB Streams in the emulator) pumped into the
//! sequencer as the event source mapping would, and the feed read back through `GET /feed`.
//! The end-to-end run (20 writers through `cargo lambda watch`, the sequencer invoked by the
//! stream pump) is the load test's (tests/tests/load.rs).

use std::collections::HashSet;
use std::time::Duration;

use activity_log::app::App;
use activity_log::domain::feed::FeedEntry;
use activity_log::domain::{ActivityId, CustomerId, PartnerId};
use activity_log::handlers::{feed, query};
use activity_log::store::{ActivityReader as _, FeedAppend, FeedLog as _};
use activity_log::testing::ApiRequest;
use activity_log::testing::fixtures::{self, activity, minutes_ago};
use activity_log_tests::stream_pump::{SEQUENCER, Stream, pump_into_sequencer, wait_for_head};
use activity_log_tests::{emulator, isolated_app, json_body as body};
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

fn partner(p: &str) -> PartnerId {
    PartnerId::parse(p).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads `p`'s whole feed through `GET /feed`, `limit` at a time: the activities, and the
/// positions the pages ended at.
async fn read_feed(app: &App, p: &str, limit: usize) -> (Vec<Value>, Vec<u64>) {
    let (mut after, mut items, mut ends) = (0u64, Vec::new(), Vec::new());
    loop {
        let req = ApiRequest::get("/feed")
            .caller(p, &["SalesAgent"])
            .query("after", &after.to_string())
            .query("limit", &limit.to_string());
        let r = query::handle(&app.config, &app.store, &app.blobs, req.build()).await;
        assert_eq!(r.status(), 200, "{}", body(&r));
        let page = body(&r);
        let got = page["items"].as_array().cloned().unwrap_or_default();
        let next = page["nextPosition"].as_u64().unwrap_or(0);
        if got.is_empty() && next == after {
            return (items, ends);
        }
        items.extend(got);
        ends.push(next);
        after = next;
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|a| a["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_places_every_activity_once_in_commit_order_however_late_it_occurred() {
    let app = isolated_app().await;
    pump_into_sequencer(&app).await;
    let mut recorded = Vec::new();
    // Batches over several customers, each later batch occurring earlier: a reader paging by
    // occurredAt would have passed them already.
    for batch in 0..6 {
        let payload: Vec<Value> = (0..15)
            .map(|i| {
                let occurred = (Utc::now() - TimeDelta::days(batch) - TimeDelta::minutes(i))
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                activity(&format!("c{}", i % 4), &format!("a{batch}-{i}"), &occurred)
            })
            .collect();
        let r = fixtures::record(&app.config, &app.store, &app.blobs, "p1", &json!(payload)).await;
        assert_eq!(r.status(), 201, "{}", body(&r));
        recorded.extend(ids(body(&r)["items"].as_array().unwrap_or(&Vec::new())));
    }
    let other = fixtures::record(
        &app.config,
        &app.store,
        &app.blobs,
        "p2",
        &json!([activity("c1", "b1", &minutes_ago(1))]),
    )
    .await;
    assert_eq!(other.status(), 201, "{}", body(&other));
    wait_for_head(&app, "p1", 90).await;
    wait_for_head(&app, "p2", 1).await;

    let (items, ends) = read_feed(&app, "p1", 40).await;
    // Every activity once, in the order the writes committed (batch after batch), at positions
    // 1, 2, … without a gap.
    assert_eq!(ids(&items), recorded);
    let positions: Vec<u64> = items
        .iter()
        .map(|a| a["feedPosition"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(positions, (1..=90).collect::<Vec<u64>>());
    assert_eq!(ends, [40, 80, 90]);
    // The tenant's feed only.
    let (theirs, _) = read_feed(&app, "p2", 100).await;
    assert_eq!(ids(&theirs), ["b1"]);
    assert_eq!(theirs[0]["feedPosition"], 1);

    // The activity shows its position wherever it is read.
    let c = CustomerId::parse("c2").unwrap_or_else(|e| panic!("{e}"));
    let a = ActivityId::parse("a3-6").unwrap_or_else(|e| panic!("{e}"));
    let stored = app.store.get(&partner("p1"), &c, &a).await;
    let position = stored.ok().flatten().and_then(|a| a.feed_position);
    assert_eq!(position, Some(3 * 15 + 7));

    // The whole stream delivered again (a retried batch, a replayed shard): nothing moves.
    let stream = Stream::of_table(&emulator().await, &app.config.table_name, &SEQUENCER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = app.store.clone();
    let replay = tokio::spawn(async move {
        stream
            .pump(|event| {
                let store = store.clone();
                async move {
                    let event = serde_json::from_value(event).map_err(|e| e.to_string())?;
                    let report = feed::sequence(&store, &event)
                        .await
                        .map_err(|e| e.to_string())?;
                    assert_eq!(report.placed, 0, "{report:?}");
                    Ok(())
                }
            })
            .await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !replay.is_finished(),
        "the replay stopped: {:?}",
        replay.await
    );
    replay.abort();
    assert_eq!(app.store.feed_head(&partner("p1")).await.ok(), Some(90));
    let (again, _) = read_feed(&app, "p1", 1000).await;
    assert_eq!(ids(&again), recorded);
}

#[tokio::test]
async fn an_append_that_meets_a_moved_head_or_a_placed_activity_writes_nothing() {
    let app = isolated_app().await;
    let r = fixtures::record(
        &app.config,
        &app.store,
        &app.blobs,
        "p1",
        &json!([
            activity("c1", "a1", &minutes_ago(3)),
            activity("c1", "a2", &minutes_ago(2)),
            activity("c2", "a3", &minutes_ago(1))
        ]),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", body(&r));
    let entry = |c: &str, a: &str| FeedEntry {
        customer_id: CustomerId::parse(c).unwrap_or_else(|e| panic!("{e}")),
        activity_id: ActivityId::parse(a).unwrap_or_else(|e| panic!("{e}")),
        expires_at: (Utc::now() + TimeDelta::days(365)).timestamp(),
    };
    let p1 = partner("p1");
    let append = |expected: u64, entries: Vec<FeedEntry>| {
        let store = app.store.clone();
        let p1 = p1.clone();
        async move {
            store
                .append_feed(&p1, expected, &entries)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    assert_eq!(
        append(0, vec![entry("c1", "a1")]).await,
        FeedAppend::Appended
    );
    // Another sequencer's head: nothing written.
    assert_eq!(
        append(0, vec![entry("c1", "a2")]).await,
        FeedAppend::HeadMoved
    );
    // a1 holds position 1 already: the transaction is cancelled as a whole, so the head stays
    // and a2, before a1 in it, gets no position.
    assert_eq!(
        append(1, vec![entry("c1", "a2"), entry("c1", "a1")]).await,
        FeedAppend::Placed(vec![1])
    );
    // An activity that is not in the table (gone past retention) is passed over too.
    assert_eq!(
        append(1, vec![entry("c1", "gone")]).await,
        FeedAppend::Placed(vec![0])
    );
    assert_eq!(app.store.feed_head(&p1).await.ok(), Some(1));
    let position = |c: &str, a: &str| {
        let store = app.store.clone();
        let (c, a) = (
            CustomerId::parse(c).unwrap_or_else(|e| panic!("{e}")),
            ActivityId::parse(a).unwrap_or_else(|e| panic!("{e}")),
        );
        let p1 = p1.clone();
        async move {
            store
                .get(&p1, &c, &a)
                .await
                .ok()
                .flatten()
                .and_then(|a| a.feed_position)
        }
    };
    assert_eq!(position("c1", "a1").await, Some(1));
    assert_eq!(position("c1", "a2").await, None);
    assert_eq!(
        append(1, vec![entry("c1", "a2"), entry("c2", "a3")]).await,
        FeedAppend::Appended
    );
    assert_eq!(
        (position("c1", "a2").await, position("c2", "a3").await),
        (Some(2), Some(3))
    );
    let page = app
        .store
        .feed_page(&p1, 0, 3, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seen: HashSet<String> = page.activities.iter().map(|a| a.id.to_string()).collect();
    assert_eq!((seen.len(), page.last), (3, 3));
}
