//! Offline mode through the binary: an export, its manifest and the public key, as files.

mod common;

use activity_log::domain::integrity::{Checkpoint, LeftOut, Manifest};
use activity_log::testing::signed::{self as synthetic, Signer};
use activity_log_verify::{Error, Key, verify_export};
use common::{PARTNER, Scratch, other_key, service_key, ts, verify};
use serde_json::{Map, Value, json};

const C1: &str = "c1";
/// Non-ASCII with a space: a customer id is any printable text but '/'.
const C2: &str = "客戶 #2";
const ISSUED: &str = "2026-11-28T10:00:00.000Z";

type Row = Map<String, Value>;

/// c1's chain 1–5 (checkpoint at 5), C2's 1–3 of a chain of 4 (checkpoint at 4), and a row of
/// c1 from before the chain; newest first, customers interleaved, as an export lists them.
fn fixture() -> (Vec<Row>, Vec<Checkpoint>) {
    let key = service_key();
    let (c1, c1_head) = synthetic::chain(PARTNER, C1, 5, ts("2026-11-25T08:00:00Z")).unwrap();
    let (mut c2, c2_head) =
        synthetic::chain(PARTNER, C2, 4, ts("2026-11-25T08:00:00.500Z")).unwrap();
    c2.pop();
    let mut rows: Vec<Row> = c1.into_iter().chain(c2).collect();
    rows.sort_by(|a, b| b["occurredAt"].as_str().cmp(&a["occurredAt"].as_str()));
    let checkpoints = vec![
        key.checkpoint(PARTNER, C1, &c1_head, ISSUED).unwrap(),
        key.checkpoint(PARTNER, C2, &c2_head, ISSUED).unwrap(),
    ];
    (rows, checkpoints)
}

struct Files {
    _dir: Scratch,
    export: std::path::PathBuf,
    manifest: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl Files {
    fn args(&self) -> Vec<&std::ffi::OsStr> {
        vec![
            self.export.as_os_str(),
            "--manifest".as_ref(),
            self.manifest.as_os_str(),
            "--public-key".as_ref(),
            self.key.as_os_str(),
        ]
    }
}

/// The export of `rows` and its manifest, signed by `signer`, as the service writes them.
fn signed(rows: &[Row], checkpoints: &[Checkpoint], signer: &Signer) -> (Vec<u8>, Manifest) {
    let file = synthetic::jsonl(rows).unwrap();
    let manifest = synthetic::manifest(
        signer,
        PARTNER,
        &file,
        rows,
        checkpoints,
        "2026-11-28T10:00:01.000Z",
    )
    .unwrap();
    (file, manifest)
}

/// Writes the files; the public key given is always the service's.
fn write(name: &str, file: &[u8], manifest: &Manifest) -> Files {
    let dir = Scratch::new(name);
    let export = dir.write("activity-log.jsonl", file);
    let manifest = dir.write(
        "activity-log.manifest.json",
        serde_json::to_vec_pretty(manifest).unwrap(),
    );
    let key = dir.write("public-key.pem", service_key().public_key_pem().unwrap());
    Files {
        _dir: dir,
        export,
        manifest,
        key,
    }
}

fn export_files(name: &str, rows: &[Row], checkpoints: &[Checkpoint]) -> Files {
    let (file, manifest) = signed(rows, checkpoints, &service_key());
    write(name, &file, &manifest)
}

#[test]
fn an_intact_export_passes() {
    let (rows, checkpoints) = fixture();
    let files = export_files("intact", &rows, &checkpoints);
    let run = verify(&files.args());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines(),
        [
            "c1: 5 activities, sequences 1–5, hashes and links checked, signed head at 5 (2026-11-28T10:00:01.000Z) matches",
            "客戶 #2: 3 activities, sequences 1–3, hashes and links checked, signed head at 4 (2026-11-28T10:00:01.000Z) is after the last activity in the file",
            "OK: 8 rows of 2 customers verified against key arn:aws:kms:ap-northeast-1:111122223333:key/service",
        ]
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn rows_of_two_customers_pass_in_any_order() {
    let (rows, checkpoints) = fixture();
    let key = Key::from_pem(&service_key().public_key_pem().unwrap()).unwrap();
    let n = rows.len();
    // Reversed, each rotation, and the two customers' rows one after the other.
    let mut orders: Vec<Vec<Row>> = vec![rows.iter().rev().cloned().collect()];
    for k in 0..n {
        let mut r = rows.clone();
        r.rotate_left(k);
        orders.push(r);
    }
    let mut by_customer = rows.clone();
    by_customer.sort_by(|a, b| a["customerId"].as_str().cmp(&b["customerId"].as_str()));
    orders.push(by_customer);
    for order in &orders {
        let (file, manifest) = signed(order, &checkpoints, &service_key());
        let report = verify_export(&file, &serde_json::to_vec(&manifest).unwrap(), &key)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.rows, 8);
        assert_eq!(report.customers.len(), 2);
    }
    let files = export_files("shuffled", &orders[0], &checkpoints);
    let run = verify(&files.args());
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn an_activity_altered_in_storage_is_named_by_id_and_sequence() {
    // Changed where it is kept, then exported: the file is the one the manifest describes, but
    // the row does not match its hash.
    let (mut rows, checkpoints) = fixture();
    let i = rows
        .iter()
        .position(|r| r["customerId"] == C1 && r["sequence"] == 3)
        .unwrap();
    rows[i].insert("action".into(), json!("deleted the subscription"));
    let files = export_files("altered", &rows, &checkpoints);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: c1: activity act-000003 (sequence 3) was altered: its content does not match its hash\n"
    );
}

/// Chain members removed where the activity is kept, then exported (the manifest signed over
/// it): the line is named, not counted as "recorded before the chain".
#[test]
fn an_activity_stripped_of_its_chain_members_in_storage_is_named() {
    let (mut rows, checkpoints) = fixture();
    let i = rows
        .iter()
        .position(|r| r["customerId"] == C1 && r["sequence"] == 3)
        .unwrap();
    for member in ["sequence", "hash", "previousHash"] {
        rows[i].insert(member.into(), Value::Null);
    }
    let files = export_files("stripped", &rows, &checkpoints);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "FAILED: line {}: activity act-000003 was altered: its sequence, hash and previousHash were removed (every activity is chained when it is recorded)\n",
            i + 1
        )
    );
}

#[test]
fn a_line_edited_after_signing_is_not_the_file_the_manifest_describes() {
    let (rows, checkpoints) = fixture();
    let (file, manifest) = signed(&rows, &checkpoints, &service_key());
    let text = String::from_utf8(file).unwrap();
    let edited = text.replacen("placed order ORD-3", "placed order ORD-4", 1);
    assert_ne!(edited, text);
    let files = write("edited", edited.as_bytes(), &manifest);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .starts_with("FAILED: the file is not the one the manifest describes (SHA-256 "),
        "{run:?}"
    );
}

#[test]
fn a_removed_line_is_refused() {
    let (rows, checkpoints) = fixture();
    let (file, manifest) = signed(&rows, &checkpoints, &service_key());
    let text = String::from_utf8(file).unwrap();
    let kept: String = text
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l)
        .collect();
    let files = write("removed", kept.as_bytes(), &manifest);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .starts_with("FAILED: the file is not the one the manifest describes"),
        "{run:?}"
    );
}

#[test]
fn a_file_holding_fewer_rows_of_a_customer_than_its_manifest_lists_is_refused() {
    // An export may leave sequences out (its period, its filters), but not ones its manifest
    // lists: a signed manifest listing more of a customer than the file holds is refused.
    let (rows, checkpoints) = fixture();
    let (_, listed) = signed(&rows, &checkpoints, &service_key());
    let i = rows
        .iter()
        .position(|r| r["customerId"] == C1 && r["sequence"] == 2)
        .unwrap();
    let mut fewer = rows.clone();
    fewer.remove(i);
    let (file, mut manifest) = signed(&fewer, &checkpoints, &service_key());
    manifest.customers = listed.customers;
    service_key().sign_manifest(&mut manifest).unwrap();
    let files = write("fewer", &file, &manifest);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: c1: the file holds 4 rows, sequences 1–5; the manifest says 5 rows, sequences 1–5\n"
    );
}

#[test]
fn a_manifest_signed_by_another_key_is_refused() {
    let (rows, checkpoints) = fixture();
    let (file, manifest) = signed(&rows, &checkpoints, &other_key());
    let files = write("other-manifest-key", &file, &manifest);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.starts_with("FAILED: manifest signature invalid"),
        "{run:?}"
    );
}

#[test]
fn a_manifest_changed_after_signing_is_refused() {
    let (rows, checkpoints) = fixture();
    let (file, mut manifest) = signed(&rows, &checkpoints, &service_key());
    manifest.customers[0].last_sequence = 4;
    let files = write("changed-manifest", &file, &manifest);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.starts_with("FAILED: manifest signature invalid"),
        "{run:?}"
    );
}

/// c1's rows without sequence 3, and the manifest of that file (its row counts as the file's).
fn without_c1_3(rows: &[Row], checkpoints: &[Checkpoint]) -> (Vec<Row>, Vec<u8>, Manifest) {
    let fewer: Vec<Row> = rows
        .iter()
        .filter(|r| !(r["customerId"] == C1 && r["sequence"] == 3))
        .cloned()
        .collect();
    let (file, manifest) = signed(&fewer, checkpoints, &service_key());
    (fewer, file, manifest)
}

#[test]
fn a_sequence_missing_inside_a_customers_rows_is_a_finding() {
    let (rows, checkpoints) = fixture();
    let (_, file, manifest) = without_c1_3(&rows, &checkpoints);
    let files = write("gap", &file, &manifest);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: c1: sequence 3 is missing (before activity act-000004, sequence 4)\n"
    );
}

#[test]
fn a_sequence_the_manifest_says_was_left_out_passes_and_is_counted() {
    let (rows, checkpoints) = fixture();
    let third = rows
        .iter()
        .find(|r| r["customerId"] == C1 && r["sequence"] == 3)
        .cloned()
        .unwrap();
    let left_out = vec![LeftOut {
        first: 3,
        last: 3,
        previous_hash: third["previousHash"].as_str().unwrap().to_owned(),
        hash: third["hash"].as_str().unwrap().to_owned(),
    }];
    let (_, file, mut manifest) = without_c1_3(&rows, &checkpoints);
    manifest.customers[0].left_out = left_out.clone();
    service_key().sign_manifest(&mut manifest).unwrap();
    let files = write("left-out", &file, &manifest);
    let run = verify(&files.args());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines()[0],
        "c1: 4 activities, sequences 1–5 (1 sequence in between left out by the export's period or filters), hashes and links checked, signed head at 5 (2026-11-28T10:00:01.000Z) matches"
    );

    // Listed with a hash the chain does not have: the rows around it do not link to it.
    manifest.customers[0].left_out[0].hash = "ab".repeat(32);
    service_key().sign_manifest(&mut manifest).unwrap();
    let files = write("left-out-forged", &file, &manifest);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: c1: activity act-000004 (sequence 4) and the row before it do not link to the activities 3–3 the manifest says were left out: the chain was changed\n"
    );

    // Listed where the file holds the rows: refused.
    let (file, mut manifest) = signed(&rows, &checkpoints, &service_key());
    manifest.customers[0].left_out = left_out;
    service_key().sign_manifest(&mut manifest).unwrap();
    let files = write("left-out-held", &file, &manifest);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: c1: the manifest says sequences 3–3 were left out, but the file does not leave out exactly those\n"
    );
}

#[test]
fn a_gap_of_activities_older_than_the_signed_retention_is_expiry() {
    let (rows, checkpoints) = fixture();
    let (_, file, mut manifest) = without_c1_3(&rows, &checkpoints);
    // Recorded on 2026-11-25, sealed on 2026-11-28: past a retention of 2 days.
    manifest.retention_days = 2;
    service_key().sign_manifest(&mut manifest).unwrap();
    let files = write("expired", &file, &manifest);
    let run = verify(&files.args());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines()[0],
        "c1: 4 activities, sequences 1–5, hashes and links checked, signed head at 5 (2026-11-28T10:00:01.000Z) matches"
    );
}

#[test]
fn a_checkpoint_of_another_head_is_refused() {
    let (rows, mut checkpoints) = fixture();
    let forged = activity_log::domain::chain::Head {
        sequence: 5,
        hash: "ab".repeat(32),

        recorded_at: None,
    };
    checkpoints[0] = service_key()
        .checkpoint(PARTNER, C1, &forged, ISSUED)
        .unwrap();
    let files = export_files("other-head", &rows, &checkpoints);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: c1: activity act-000005 (sequence 5) was altered: its hash is not the one of the signed checkpoint\n"
    );
}

#[test]
fn every_customer_of_the_file_must_be_listed() {
    let (rows, checkpoints) = fixture();
    let files = export_files("unlisted", &rows, &checkpoints[..1]);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: 客戶 #2: the file holds 3 rows of the customer, but the manifest does not list it\n"
    );
}

#[test]
fn a_line_that_is_not_a_row_names_its_line() {
    let (rows, checkpoints) = fixture();
    let mut file = synthetic::jsonl(&rows[..3]).unwrap();
    file.extend_from_slice(b"{\"id\": \"broken\"\n");
    file.extend_from_slice(&synthetic::jsonl(&rows[3..]).unwrap());
    let mut manifest = signed(&rows, &checkpoints, &service_key()).1;
    manifest.file.rows += 1;
    manifest.file.bytes = file.len() as u64;
    manifest.file.sha256 = activity_log_verify_sha256(&file);
    service_key().sign_manifest(&mut manifest).unwrap();
    let files = write("not-json", &file, &manifest);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .starts_with("FAILED: line 4 is not a JSON object: "),
        "{run:?}"
    );
}

fn activity_log_verify_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn usage_errors_exit_2() {
    let (rows, checkpoints) = fixture();
    let files = export_files("usage", &rows, &checkpoints);
    let none: [&str; 0] = [];
    let run = verify(&none);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:?}");
    assert!(run.stderr.contains("usage: activity-log-verify"), "{run:?}");

    let run = verify(&[files.export.as_os_str()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with("--manifest is needed"), "{run:?}");

    let mut args = files.args();
    let missing = files.export.with_extension("missing");
    args[0] = missing.as_os_str();
    let run = verify(&args);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:?}");
    assert!(run.stderr.contains("activity-log.missing"), "{run:?}");

    let mut args = files.args();
    args[4] = files.export.as_os_str();
    let run = verify(&args);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("not a P-256 public key"), "{run:?}");

    let run = verify(&["--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("usage: "), "{run:?}");
}

#[test]
fn the_library_reports_the_same_failures() {
    let (rows, checkpoints) = fixture();
    let (file, manifest) = signed(&rows, &checkpoints, &other_key());
    let key = Key::from_pem(&service_key().public_key_pem().unwrap()).unwrap();
    let err = verify_export(&file, &serde_json::to_vec(&manifest).unwrap(), &key).unwrap_err();
    assert!(matches!(err, Error::Failed(ref m) if m.starts_with("manifest signature invalid")));
    assert_eq!(err.exit_code(), 1);
}

#[test]
fn an_activity_altered_with_its_hash_recomputed_breaks_the_next_link() {
    let (mut rows, checkpoints) = fixture();
    let i = rows
        .iter()
        .position(|r| r["customerId"] == C1 && r["sequence"] == 3)
        .unwrap();
    rows[i].insert("action".into(), json!("deleted the subscription"));
    let record = activity_log::domain::chain::Record::from_row(PARTNER, &rows[i]).unwrap();
    let rehashed = record
        .hash(rows[i]["previousHash"].as_str().unwrap(), 3)
        .unwrap();
    rows[i].insert("hash".into(), json!(rehashed));
    let files = export_files("rehashed", &rows, &checkpoints);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: c1: activity act-000003 (sequence 3) was altered: its hash is not the one activity act-000004 (sequence 4) was chained to\n"
    );
}

#[test]
fn swapped_sequences_are_out_of_order() {
    let (mut rows, checkpoints) = fixture();
    let at = |rows: &[Row], s: u64| {
        rows.iter()
            .position(|r| r["customerId"] == C1 && r["sequence"] == s)
            .unwrap()
    };
    let (two, four) = (at(&rows, 2), at(&rows, 4));
    rows[two].insert("sequence".into(), json!(4));
    rows[four].insert("sequence".into(), json!(2));
    let files = export_files("swapped", &rows, &checkpoints);
    let run = verify(&files.args());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.starts_with("FAILED: c1: activity act-00000")
            && run.stdout.contains("out of order"),
        "{run:?}"
    );
}

#[test]
fn a_csv_export_is_checked_as_far_as_its_digest() {
    let (rows, checkpoints) = fixture();
    let (file, mut manifest) = signed(&rows, &checkpoints, &service_key());
    manifest.export.format = "csv".into();
    service_key().sign_manifest(&mut manifest).unwrap();
    let files = write("csv", &file, &manifest);
    let run = verify(&files.args());
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:?}");
    assert!(
        run.stderr.starts_with(
            "the manifest's signature and the file's SHA-256 match, but only JSON Lines exports"
        ),
        "{run:?}"
    );
}

/// A checkpoint of `customer` at the row of `rows` at `sequence`, saved in `dir`.
fn held_at(dir: &Scratch, rows: &[Row], customer: &str, sequence: u64, issued: &str) -> String {
    let row = rows
        .iter()
        .find(|r| r["customerId"] == customer && r["sequence"] == sequence)
        .unwrap();
    let head = activity_log::domain::chain::Head {
        sequence,
        hash: row["hash"].as_str().unwrap().to_owned(),

        recorded_at: None,
    };
    let cp = service_key()
        .checkpoint(PARTNER, customer, &head, issued)
        .unwrap();
    let path = dir.write(
        &format!("held-{sequence}.json"),
        serde_json::to_vec(&cp).unwrap(),
    );
    path.to_str().unwrap().to_owned()
}

#[test]
fn an_export_is_checked_against_held_checkpoints_of_its_customers() {
    use std::ffi::OsStr;
    let (rows, checkpoints) = fixture();
    let files = export_files("held", &rows, &checkpoints);
    let dir = Scratch::new("held-files");
    let c1_at_2 = held_at(&dir, &rows, C1, 2, "2026-11-26T00:00:00.000Z");
    let mut args = files.args();
    args.extend([OsStr::new("--checkpoint"), OsStr::new(&c1_at_2)]);
    let run = verify(&args);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines()[0],
        "c1: 5 activities, sequences 1–5, hashes and links checked, signed head at 5 (2026-11-28T10:00:01.000Z) matches; held: 1 checkpoint the signed chain extends"
    );

    // The same customer's chain rewritten and re-signed, exported: the held checkpoint refuses it.
    let (rewritten, head) = synthetic::chain(PARTNER, C1, 5, ts("2026-11-25T09:00:00Z")).unwrap();
    let resigned = vec![
        service_key()
            .checkpoint(PARTNER, C1, &head, ISSUED)
            .unwrap(),
    ];
    let files = export_files("held-rewritten", &rewritten, &resigned);
    let mut args = files.args();
    args.extend([OsStr::new("--checkpoint"), OsStr::new(&c1_at_2)]);
    let run = verify(&args);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: c1: history changed since 2026-11-26T00:00:00.000Z: activity act-000002 (sequence 2) is not the one the held checkpoint signed\n"
    );

    // A held checkpoint later than the manifest's, at a higher sequence: an older export, fine.
    let later = held_at(&dir, &rows, C2, 3, "2026-11-29T00:00:00.000Z");
    let files = export_files("held-older", &rows, &checkpoints);
    let mut args = files.args();
    args.extend([OsStr::new("--checkpoint"), OsStr::new(&later)]);
    let run = verify(&args);
    assert_eq!(run.code, 0, "{run:?}");
}
