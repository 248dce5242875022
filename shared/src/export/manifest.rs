//! An export's manifest (README, "Tamper-evident log"): the file's SHA-256, its rows, and for
//! each customer the sequences it holds (as runs, so the gaps between them are known). Tracked while the file is written — saved with every
//! part, so a run that goes on from a part goes on from the same state — and signed when the
//! file is complete.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use integer_encoding::VarInt;
use serde::{Deserialize, Serialize};
use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest, Sha256};

use crate::domain::Activity;

/// What the manifest says of the file so far.
#[derive(Clone)]
pub struct ManifestState {
    hasher: Sha256,
    /// Bytes hashed (uploaded).
    pub bytes: u64,
    /// Rows encoded.
    pub rows: u64,
    /// By customer id.
    pub customers: BTreeMap<String, Held>,
    /// Runs not yet settled, over all customers, and how many set every customer's settling.
    recent_runs: usize,
    settle_all_at: usize,
}

/// Runs not yet settled, over all customers, at which every customer's are settled where that is
/// cheap (about 0.4 MB of maps): a log of many customers with a few rows each would otherwise
/// keep every run in a map.
const RECENT_BUDGET: usize = 16_384;

/// The sequences of one customer in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub rows: u64,
    runs: Runs,
}

impl Held {
    fn new(sequence: u64) -> Self {
        let mut runs = Runs::default();
        runs.add(sequence);
        Self { rows: 1, runs }
    }

    /// One more row at `s`.
    fn add(&mut self, s: u64) {
        self.rows += 1;
        self.runs.add(s);
    }

    pub fn first(&self) -> u64 {
        self.runs.iter().next().map_or(0, |(a, _)| a)
    }

    pub fn last(&self) -> u64 {
        self.runs.last().unwrap_or(0)
    }

    /// The runs of sequences between the first and the last that the file does not hold, in
    /// order (first, last; inclusive).
    pub fn gaps(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut runs = self.runs.iter().peekable();
        std::iter::from_fn(move || {
            let (_, end) = runs.next()?;
            let &(next, _) = runs.peek()?;
            Some((end + 1, next - 1))
        })
    }
}

/// Runs of consecutive sequences (first, last; inclusive) in order, disjoint and not touching.
///
/// Kept compact, because a filtered export holds about one run per row: in a map a run took 25
/// bytes, and as much again while each saved point was written. The runs settled so far are
/// varints, two a run (its distance from the end of the run before, then its length less one:
/// two or three bytes for a filtered customer's run); the runs added since are in a map.
///
/// Settling them costs about their own number when they all come before the settled runs (an
/// export reads newest first, so a customer's sequences come down) or after them. Otherwise every
/// run is written again, so that is done once the recent runs are [`SETTLE_AT`] or an eighth of
/// the settled ones, whichever is more: about nine writes a run over a whole export. A sequence
/// added twice, or next to a settled run, is joined when they are read together.
#[derive(Debug, Clone, Default)]
struct Runs {
    settled: Vec<u8>,
    /// How many runs `settled` holds, and the last sequence of the last one.
    settled_runs: usize,
    settled_last: Option<u64>,
    recent: BTreeMap<u64, u64>,
}

/// Runs added before they are settled, at least.
const SETTLE_AT: usize = 256;

impl Runs {
    /// One sequence: joins the recent run it touches, or both recent runs it closes the gap
    /// between.
    fn add(&mut self, s: u64) {
        let before = self.recent.range(..=s).next_back().map(|(&a, &b)| (a, b));
        if before.is_some_and(|(_, b)| b >= s) {
            return;
        }
        let after = s
            .checked_add(1)
            .and_then(|n| self.recent.get(&n).map(|&b| (n, b)));
        let start = match before {
            Some((a, b)) if b + 1 == s => a,
            _ => s,
        };
        let end = match after {
            Some((n, b)) => {
                self.recent.remove(&n);
                b
            }
            None => s,
        };
        self.recent.insert(start, end);
        if self.recent.len() >= SETTLE_AT.max(self.settled_runs / 8) {
            self.settle(true);
        }
    }

    /// The recent runs merged into the settled ones: put before or after them when they all
    /// come before or after, else (if `rewrite`) by writing every run again.
    fn settle(&mut self, rewrite: bool) {
        let (Some(&recent_first), Some(&recent_last)) =
            (self.recent.keys().next(), self.recent.values().next_back())
        else {
            return;
        };
        let apart = |end: u64, start: u64| end.checked_add(1).is_some_and(|n| n < start);
        let settled_first = decode_first(&self.settled);
        if let Some((first, len, width)) = settled_first
            && apart(recent_last, first)
        {
            let mut settled = Vec::with_capacity(self.settled.len() + 3 * self.recent.len());
            let (runs, _) = encode(self.recent_runs(), None, &mut settled);
            push_varint(&mut settled, first - recent_last);
            push_varint(&mut settled, len);
            settled.extend_from_slice(&self.settled[width..]);
            self.settled = settled;
            self.settled_runs += runs;
        } else if let Some(last) = self.settled_last
            && apart(last, recent_first)
        {
            let recent = std::mem::take(&mut self.recent);
            let runs = recent.into_iter();
            let (added, last) = encode(runs, Some(last), &mut self.settled);
            self.settled_runs += added;
            self.settled_last = last;
        } else if rewrite || settled_first.is_none() {
            let mut settled = Vec::with_capacity(self.settled.len() + 3 * self.recent.len());
            let (runs, last) = encode(self.iter(), None, &mut settled);
            self.settled = settled;
            self.settled_runs = runs;
            self.settled_last = last;
        } else {
            return;
        }
        self.recent.clear();
    }

    fn recent_runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.recent.iter().map(|(&a, &b)| (a, b))
    }

    /// Every run, in order, settled and recent joined.
    fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut settled = decode(&self.settled).peekable();
        let mut recent = self.recent_runs().peekable();
        let mut merged = std::iter::from_fn(move || match (settled.peek(), recent.peek()) {
            (Some(x), Some(y)) if y.0 < x.0 => recent.next(),
            (Some(_), _) => settled.next(),
            (None, _) => recent.next(),
        });
        let mut open = merged.next();
        std::iter::from_fn(move || {
            let (a, mut b) = open?;
            loop {
                match merged.next() {
                    Some((c, d)) if c <= b.saturating_add(1) => b = b.max(d),
                    next => {
                        open = next;
                        return Some((a, b));
                    }
                }
            }
        })
    }

    fn last(&self) -> Option<u64> {
        let recent = self.recent.last_key_value().map(|(_, &b)| b);
        self.settled_last.max(recent)
    }
}

/// Writes `runs` (in order, disjoint and not touching, and after `last`, the end of the runs
/// `out` holds) as varints; returns how many, and the last sequence.
fn encode(
    runs: impl Iterator<Item = (u64, u64)>,
    mut last: Option<u64>,
    out: &mut Vec<u8>,
) -> (usize, Option<u64>) {
    let mut count = 0;
    for (a, b) in runs {
        let gap = last.map_or(a, |l: u64| a - l);
        push_varint(out, gap);
        push_varint(out, b - a);
        (count, last) = (count + 1, Some(b));
    }
    (count, last)
}

/// The first run of `encode`'s bytes: its first sequence, its length less one, and the bytes it
/// takes.
fn decode_first(bytes: &[u8]) -> Option<(u64, u64, usize)> {
    let (first, n) = u64::decode_var(bytes)?;
    let (len, m) = u64::decode_var(bytes.get(n..)?)?;
    Some((first, len, n + m))
}

fn push_varint(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 10];
    let n = v.encode_var(&mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// The runs `encode` wrote. Stops at the first pair it cannot read (only [`Runs`]'s own bytes,
/// checked when they are loaded, come here).
fn decode(bytes: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut at = 0;
    let mut last: Option<u64> = None;
    std::iter::from_fn(move || {
        let (gap, n) = u64::decode_var(bytes.get(at..)?)?;
        let (len, m) = u64::decode_var(bytes.get(at + n..)?)?;
        let a = match last {
            Some(l) => l.checked_add(gap)?,
            None => gap,
        };
        let b = a.checked_add(len)?;
        at += n + m;
        last = Some(b);
        Some((a, b))
    })
}

impl PartialEq for Runs {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Runs {}

/// Saved as base64 of the varints of every run (a few bytes a run). A state saved before the
/// runs were compact, a map of first → last, is read too.
impl Serialize for Runs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.settled.len() + 3 * self.recent.len());
        encode(self.iter(), None, &mut bytes);
        // Written into the output as it is encoded, without a string of its own.
        serializer.collect_str(&base64::display::Base64Display::new(&bytes, &BASE64))
    }
}

impl<'de> Deserialize<'de> for Runs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Saved {
            Compact(String),
            // Keys as text: an untagged enum's map reads its keys as they are written.
            Map(BTreeMap<String, u64>),
        }
        let runs: Vec<(u64, u64)> = match Saved::deserialize(deserializer)? {
            Saved::Compact(text) => {
                let bytes = BASE64.decode(text).map_err(serde::de::Error::custom)?;
                let runs: Vec<(u64, u64)> = decode(&bytes).collect();
                let mut check = Vec::with_capacity(bytes.len());
                encode(runs.iter().copied(), None, &mut check);
                if check != bytes {
                    return Err(serde::de::Error::custom(
                        "runs: not varints of runs in order",
                    ));
                }
                runs
            }
            Saved::Map(map) => {
                let mut runs = map
                    .into_iter()
                    .map(|(a, b)| a.parse::<u64>().map(|a| (a, b)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(serde::de::Error::custom)?;
                runs.sort_unstable();
                runs
            }
        };
        let ordered = runs.iter().all(|&(a, b)| a <= b)
            && runs
                .windows(2)
                .all(|w| w[0].1.checked_add(1).is_some_and(|n| n < w[1].0));
        if !ordered {
            return Err(serde::de::Error::custom(
                "runs: not disjoint, apart and in order",
            ));
        }
        let mut settled = Vec::new();
        let (settled_runs, settled_last) = encode(runs.into_iter(), None, &mut settled);
        Ok(Self {
            settled,
            settled_runs,
            settled_last,
            recent: BTreeMap::new(),
        })
    }
}

/// The state as saved between runs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    /// The SHA-256 state after `bytes` bytes, hex.
    sha256_state: String,
    bytes: u64,
    rows: u64,
    customers: BTreeMap<String, Held>,
}

/// [`Saved`] as written: the customers borrowed, not copied.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SavedRef<'a> {
    sha256_state: String,
    bytes: u64,
    rows: u64,
    customers: &'a BTreeMap<String, Held>,
}

impl Default for ManifestState {
    fn default() -> Self {
        Self {
            hasher: Sha256::new(),
            bytes: 0,
            rows: 0,
            customers: BTreeMap::new(),
            recent_runs: 0,
            settle_all_at: RECENT_BUDGET,
        }
    }
}

impl ManifestState {
    /// A row written to the file. One without a link (its chain members stripped in storage)
    /// is counted in the file's rows only: the verifier names it.
    pub fn row(&mut self, a: &Activity) {
        self.rows += 1;
        let Some(link) = &a.chain else {
            return;
        };
        let s = link.sequence;
        // Looked up by reference: a key is allocated once per customer, not once per row.
        match self.customers.get_mut(a.customer_id.as_str()) {
            Some(h) => {
                let before = h.runs.recent.len();
                h.add(s);
                self.recent_runs = self.recent_runs + h.runs.recent.len() - before;
            }
            None => {
                self.customers
                    .insert(a.customer_id.to_string(), Held::new(s));
                self.recent_runs += 1;
            }
        }
        if self.recent_runs >= self.settle_all_at {
            for h in self.customers.values_mut() {
                h.runs.settle(false);
            }
            self.recent_runs = self.customers.values().map(|h| h.runs.recent.len()).sum();
            // What was too costly to settle waits for the customers' own thresholds; it is not
            // looked at again before the recent runs double.
            self.settle_all_at = RECENT_BUDGET.max(2 * self.recent_runs);
        }
    }

    /// Bytes of the file, in order (each part as it is uploaded).
    pub fn hash(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
    }

    /// The SHA-256 of the bytes so far, lower-case hex.
    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let saved = SavedRef {
            sha256_state: hex::encode(self.hasher.serialize()),
            bytes: self.bytes,
            rows: self.rows,
            customers: &self.customers,
        };
        // Sized up front: a filtered export's state is megabytes, and a growing buffer would
        // hold up to twice that.
        let size: usize = self
            .customers
            .iter()
            .map(|(id, h)| id.len() + 40 + (h.runs.settled.len() + 3 * h.runs.recent.len()) * 4 / 3)
            .sum();
        let mut out = Vec::with_capacity(size + 200);
        match serde_json::to_writer(&mut out, &saved) {
            Ok(()) => out,
            Err(_) => Vec::new(),
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let saved: Saved =
            serde_json::from_slice(bytes).map_err(|e| format!("manifest state: {e}"))?;
        let raw = hex::decode(&saved.sha256_state).map_err(|e| format!("hash state: {e}"))?;
        let state = SerializedState::<Sha256>::try_from(raw.as_slice())
            .map_err(|_| "hash state of the wrong size".to_owned())?;
        let hasher = Sha256::deserialize(&state).map_err(|e| format!("hash state: {e}"))?;
        Ok(Self {
            hasher,
            bytes: saved.bytes,
            rows: saved.rows,
            customers: saved.customers,
            recent_runs: 0,
            settle_all_at: RECENT_BUDGET,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::chain::Link;
    use crate::testing::fixtures::synthetic_activity;
    use chrono::Utc;

    #[test]
    fn runs_join_whatever_order_the_sequences_come_in() {
        let mut h = Held::new(10);
        for s in [3, 8, 4, 9, 20, 5, 1, 21, 9, 19] {
            h.add(s);
        }
        assert_eq!(h.rows, 11);
        assert_eq!((h.first(), h.last()), (1, 21));
        assert_eq!(h.gaps().collect::<Vec<_>>(), [(2, 2), (6, 7), (11, 18)]);
        h.add(2);
        h.add(6);
        h.add(7);
        assert_eq!(h.gaps().collect::<Vec<_>>(), [(11, 18)]);
        assert_eq!(h.runs.iter().count(), 2);
    }

    /// The runs of a set of sequences, the plain way.
    fn runs_of(set: &std::collections::BTreeSet<u64>) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &s in set {
            match runs.last_mut() {
                Some((_, b)) if *b + 1 == s => *b = s,
                _ => runs.push((s, s)),
            }
        }
        runs
    }

    #[test]
    fn runs_settled_many_times_stay_the_runs_of_the_sequences_added_in_any_order() {
        // Descending like an export (newest first), with a gap after every row like a filtered
        // one, then sequences out of order, again, and next to runs settled long before.
        let mut order: Vec<u64> = (0..40_000u64).rev().map(|n| 1_000 + 3 * n).collect();
        let mut x = 12_345u64;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            order.push(900 + (x >> 33) % 130_000);
        }
        order.extend([1_000, 1_001, 1_002, 121_000, 1, u64::MAX - 1, u64::MAX]);
        let mut h = Held::new(order[0]);
        let mut set = std::collections::BTreeSet::from([order[0]]);
        for (i, &s) in order.iter().enumerate().skip(1) {
            h.add(s);
            set.insert(s);
            if i % 9_999 == 0 {
                assert_eq!(
                    h.runs.iter().collect::<Vec<_>>(),
                    runs_of(&set),
                    "after {i}"
                );
            }
        }
        assert!(
            h.runs.settled_runs > 0,
            "nothing was settled: the test proves nothing"
        );
        let runs = runs_of(&set);
        assert_eq!(h.runs.iter().collect::<Vec<_>>(), runs);
        assert_eq!(h.rows, order.len() as u64);
        assert_eq!((h.first(), h.last()), (1, u64::MAX));
        let gaps: Vec<(u64, u64)> = runs.windows(2).map(|w| (w[0].1 + 1, w[1].0 - 1)).collect();
        assert_eq!(h.gaps().collect::<Vec<_>>(), gaps);

        let saved = serde_json::to_string(&h).unwrap();
        let back: Held = serde_json::from_str(&saved).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.runs.iter().collect::<Vec<_>>(), runs);
        assert_eq!(back.gaps().collect::<Vec<_>>(), gaps);
    }

    #[test]
    fn runs_settle_before_after_and_among_the_settled_ones() {
        let mut h = Held::new(50_000);
        let mut set = std::collections::BTreeSet::from([50_000]);
        // Down (put before the settled runs), then up (after them), then in between.
        let order = (1..5_000u64)
            .map(|n| 50_000 - 2 * n)
            .chain((1..5_000u64).map(|n| 50_000 + 3 * n))
            .chain((0..3_000u64).map(|n| 40_001 + 4 * n));
        for s in order {
            h.add(s);
            set.insert(s);
        }
        h.runs.settle(true);
        assert!(h.runs.recent.is_empty());
        assert_eq!(h.runs.iter().collect::<Vec<_>>(), runs_of(&set));
        assert_eq!(h.runs.settled_runs, runs_of(&set).len());
        assert_eq!(h.runs.settled_last, set.last().copied());
    }

    #[test]
    fn many_customers_with_a_few_rows_each_keep_few_runs_unsettled() {
        let mut state = ManifestState::default();
        let mut sets: BTreeMap<String, std::collections::BTreeSet<u64>> = BTreeMap::new();
        // 3,000 customers, 100 rows each, newest first, a sequence left out between rows: no
        // customer reaches its own threshold, all of them together pass the budget.
        for round in 0..100u64 {
            for c in 0..3_000u64 {
                let s = 1_000 - 2 * round;
                let mut a = synthetic_activity(round * 3_000 + c, &format!("c{c}"), Utc::now());
                a.chain = Some(Link {
                    sequence: s,
                    hash: String::new(),
                    previous_hash: String::new(),
                    previous_recorded_at: None,
                });
                state.row(&a);
                sets.entry(format!("c{c}")).or_default().insert(s);
            }
        }
        let unsettled: usize = state.customers.values().map(|h| h.runs.recent.len()).sum();
        assert_eq!(unsettled, state.recent_runs);
        assert!(unsettled < RECENT_BUDGET, "{unsettled} runs unsettled");
        assert!(state.customers.values().any(|h| h.runs.settled_runs > 0));
        for (c, set) in &sets {
            assert_eq!(
                state.customers[c].runs.iter().collect::<Vec<_>>(),
                runs_of(set),
                "{c}"
            );
        }
        let back = ManifestState::from_bytes(&state.to_bytes()).unwrap();
        assert_eq!(back.customers, state.customers);
    }

    #[test]
    fn a_filtered_customer_s_runs_are_saved_in_a_few_bytes_each() {
        let mut h = Held::new(10_000_000);
        for n in 1..100_000u64 {
            h.add(10_000_000 - 97 * n);
        }
        let saved = serde_json::to_string(&h).unwrap();
        // Two one-byte varints a run, base64: 2.7 bytes. As a JSON map of first → last it was
        // about 18 ("9999903":9999903,).
        assert!(
            saved.len() < 300_000,
            "{} bytes for 100,000 runs",
            saved.len()
        );
    }

    #[test]
    fn saved_runs_are_read_in_the_older_map_form_and_refused_when_not_runs_in_order() {
        let old: Held = serde_json::from_str(r#"{"rows":4,"runs":{"1":2,"5":5,"9":10}}"#).unwrap();
        assert_eq!((old.rows, old.first(), old.last()), (4, 1, 10));
        assert_eq!(old.gaps().collect::<Vec<_>>(), [(3, 4), (6, 8)]);
        let mut varints = Vec::new();
        encode([(1, 2), (5, 5), (9, 10)].into_iter(), None, &mut varints);
        let new: Held =
            serde_json::from_value(serde_json::json!({"rows": 4, "runs": BASE64.encode(&varints)}))
                .unwrap();
        assert_eq!(new, old);

        let refused = |runs: serde_json::Value| {
            serde_json::from_value::<Held>(serde_json::json!({"rows": 1, "runs": runs})).is_err()
        };
        assert!(
            refused(serde_json::json!({"1": 2, "3": 4})),
            "touching runs"
        );
        assert!(
            refused(serde_json::json!({"5": 4})),
            "a run that ends before it starts"
        );
        assert!(refused(serde_json::json!("not base64!")));
        // Runs (1, 1) then a gap of 1: (2, 2), touching the first.
        assert!(refused(serde_json::json!(BASE64.encode([1, 0, 1, 0]))));
        // A varint cut short.
        assert!(refused(serde_json::json!(BASE64.encode([1, 0, 0x80]))));
        assert!(!refused(serde_json::json!(BASE64.encode([1, 0, 2, 0]))));
    }

    #[test]
    fn a_state_saved_and_restored_hashes_and_counts_on_as_if_never_stopped() {
        let mut whole = ManifestState::default();
        let mut stopped = ManifestState::default();
        let rows: Vec<Activity> = (1..=5)
            .map(|n| {
                let mut a = synthetic_activity(n, if n % 2 == 0 { "c2" } else { "c1" }, Utc::now());
                a.chain = (n != 3).then(|| Link {
                    sequence: 10 + n,
                    hash: String::new(),
                    previous_hash: String::new(),
                    previous_recorded_at: None,
                });
                a
            })
            .collect();
        for (i, a) in rows.iter().enumerate() {
            let part = format!("part {i} with an odd length{}", "x".repeat(i * 37));
            whole.row(a);
            whole.hash(part.as_bytes());
            stopped.row(a);
            stopped.hash(part.as_bytes());
            if i == 2 {
                stopped = ManifestState::from_bytes(&stopped.to_bytes()).unwrap();
            }
        }
        assert_eq!(stopped.sha256(), whole.sha256());
        assert_eq!((stopped.bytes, stopped.rows), (whole.bytes, 5));
        let c1 = &stopped.customers["c1"];
        assert_eq!((c1.rows, c1.first(), c1.last()), (2, 11, 15));
        assert_eq!(c1.gaps().collect::<Vec<_>>(), [(12, 14)]);
        let c2 = &stopped.customers["c2"];
        assert_eq!((c2.rows, c2.first(), c2.last()), (2, 12, 14));
        assert_eq!(c2.gaps().collect::<Vec<_>>(), [(13, 13)]);
        let mut plain = Sha256::new();
        for i in 0..5 {
            plain.update(format!("part {i} with an odd length{}", "x".repeat(i * 37)));
        }
        assert_eq!(whole.sha256(), hex::encode(plain.finalize()));
        assert!(ManifestState::from_bytes(b"{}").is_err());
    }
}
