//! Offline mode: a JSON Lines export against its signed manifest.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use activity_log::domain::chain::{ChainRow, ChainSummary, Finding, SignedHead, verify};
use activity_log::domain::integrity::{
    HeldSummary, MANIFEST_VERSION, Manifest, ManifestCustomer, check_held,
};
use activity_log::domain::time;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::fast::{self, Compact};
use crate::held::{self, HeldFile};
use crate::{Error, Key, activities, read_error};

/// What was verified of one customer of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerReport {
    pub customer_id: String,
    /// The customer's chained rows in the file (an export may leave sequences out).
    pub summary: ChainSummary,
    /// The head the manifest signs for the customer, and when.
    pub head_sequence: u64,
    pub sealed_at: String,
    /// Sequences between the customer's rows that the manifest says the export left out (the
    /// log held them).
    pub left_out: u64,
    /// Held checkpoints of the customer given, and what they vouched for.
    pub held: usize,
    pub held_summary: HeldSummary,
}

impl CustomerReport {
    /// `c1: 120 activities, sequences 1–120, hashes and links checked, signed head at 120
    /// (2026-11-28T10:00:00.000Z) matches`.
    pub fn line(&self) -> String {
        match held::line(self.held, &self.held_summary) {
            Some(held) => format!("{}; {held}", self.chain_line()),
            None => self.chain_line(),
        }
    }

    fn chain_line(&self) -> String {
        let s = &self.summary;
        let checkpoint = format!("signed head at {} ({})", self.head_sequence, self.sealed_at);
        if s.rows == 0 {
            return format!(
                "{}: no chained activities in the file, {checkpoint}",
                self.customer_id
            );
        }
        let gaps = if self.left_out > 0 {
            format!(
                " ({} in between left out by the export's period or filters)",
                sequences(self.left_out)
            )
        } else {
            String::new()
        };
        let reach = if s.reaches_checkpoint {
            "matches"
        } else {
            "is after the last activity in the file"
        };
        format!(
            "{}: {}, sequences {}–{}{gaps}, hashes and links checked, {checkpoint} {reach}",
            self.customer_id,
            activities(s.rows as u64),
            s.first,
            s.last
        )
    }
}

/// What was verified of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    pub export_id: String,
    /// Every row of the file.
    pub rows: u64,
    /// The key the manifest names (its signature checked with the key given).
    pub key_id: String,
    /// In the manifest's order.
    pub customers: Vec<CustomerReport>,
    /// Held checkpoints of customers the export does not list: not checked.
    pub held_elsewhere: usize,
}

impl ExportReport {
    /// One line per customer, a line for held checkpoints not checked if any, and the `OK:` line.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.customers.iter().map(CustomerReport::line).collect();
        if self.held_elsewhere > 0 {
            lines.push(format!(
                "{} held of customers this export does not list: not checked",
                match self.held_elsewhere {
                    1 => "1 checkpoint".to_owned(),
                    n => format!("{n} checkpoints"),
                }
            ));
        }
        lines.push(format!(
            "OK: {} of {} verified against key {}",
            rows(self.rows),
            match self.customers.len() {
                1 => "1 customer".to_owned(),
                n => format!("{n} customers"),
            },
            self.key_id
        ));
        lines
    }
}

fn sequences(n: u64) -> String {
    if n == 1 {
        "1 sequence".to_owned()
    } else {
        format!("{n} sequences")
    }
}

fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".to_owned()
    } else {
        format!("{n} rows")
    }
}

/// SHA-256 (lower-case hex) of the file, computed as it is read into memory.
pub struct HashedFile {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// Reads a file whole, hashing each chunk as it arrives (one pass over the bytes).
pub fn read_hashed(path: &Path) -> io::Result<HashedFile> {
    const CHUNK: u64 = 1 << 20;
    let mut file = File::open(path)?;
    let expected = file
        .metadata()
        .ok()
        .and_then(|m| usize::try_from(m.len()).ok())
        .unwrap_or(0);
    let mut bytes = Vec::with_capacity(expected.saturating_add(1));
    let mut hasher = Sha256::new();
    loop {
        let start = bytes.len();
        let n = (&mut file).take(CHUNK).read_to_end(&mut bytes)?;
        if n == 0 {
            break;
        }
        hasher.update(&bytes[start..]);
    }
    Ok(HashedFile {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// What an offline check reads besides the export: the service's `public_key` (PEM), the
/// `manifest`'s bytes and the checkpoints `held`. An unreadable one is [`Error::Usage`].
fn read_inputs(
    manifest: &Path,
    public_key: &Path,
    held: &[PathBuf],
) -> Result<(Key, Vec<u8>, Vec<HeldFile>), Error> {
    let key = std::fs::read_to_string(public_key).map_err(|e| read_error(public_key, &e))?;
    let key =
        Key::from_pem(&key).map_err(|e| Error::Usage(format!("{}: {e}", public_key.display())))?;
    let manifest = std::fs::read(manifest).map_err(|e| read_error(manifest, &e))?;
    Ok((key, manifest, held::read(held)?))
}

/// Checks the files of an export: `export` (JSON Lines), its `manifest` and the service's
/// `public_key` (PEM), and the checkpoints held from earlier checks (`held`: files). An
/// unreadable file or key is [`Error::Usage`].
pub fn verify_export_files(
    export: &Path,
    manifest: &Path,
    public_key: &Path,
    held: &[PathBuf],
) -> Result<ExportReport, Error> {
    let (key, manifest, held) = read_inputs(manifest, public_key, held)?;
    let export = read_hashed(export).map_err(|e| read_error(export, &e))?;
    verify_export_digest(&export.bytes, &export.sha256, &manifest, &key, &held)
}

/// Checks a Parquet export: `dir` holds its files under the paths its manifest lists (as
/// `GET /exports/{id}` names them), and nothing else ending in `.parquet`. Each file's SHA-256,
/// size and rows, the files' bytes one after another against the manifest's `file`, then every
/// event read back as the activity it holds and checked as a JSON Lines export's rows are.
pub fn verify_parquet_files(
    dir: &Path,
    manifest: &Path,
    public_key: &Path,
    held: &[PathBuf],
) -> Result<ExportReport, Error> {
    let (key, manifest, held) = read_inputs(manifest, public_key, held)?;
    let fail = |m: String| Error::Failed(m);
    let manifest = signed_manifest(&manifest, &key)?;
    if manifest.export.format != "parquet" {
        return Err(Error::Usage(format!(
            "{} is a directory, but the manifest is of a {} export (one file): give the file",
            dir.display(),
            manifest.export.format
        )));
    }
    let mut found = Vec::new();
    parquet_files(dir, dir, &mut found).map_err(|e| read_error(dir, &e))?;
    if let Some(extra) = found
        .iter()
        .find(|f| !manifest.files.iter().any(|m| &m.path == *f))
    {
        return Err(fail(format!(
            "{extra}: the directory holds a file the manifest does not list"
        )));
    }
    let mut all = Sha256::new();
    let mut bytes = 0u64;
    let mut lines = Vec::new();
    for f in &manifest.files {
        let path = dir.join(&f.path);
        let file = read_hashed(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => fail(format!(
                "{}: the manifest lists the file, but it is not there",
                f.path
            )),
            _ => read_error(&path, &e),
        })?;
        if file.sha256 != f.sha256 || file.bytes.len() as u64 != f.bytes {
            return Err(fail(format!(
                "{}: not the file the manifest describes (SHA-256 {}, {} bytes; the manifest says SHA-256 {}, {} bytes)",
                f.path,
                file.sha256,
                file.bytes.len(),
                f.sha256,
                f.bytes
            )));
        }
        all.update(&file.bytes);
        bytes += f.bytes;
        let events = activity_log::export::parquet::events(file.bytes)
            .map_err(|e| fail(format!("{}: {e}", f.path)))?;
        if events.len() as u64 != f.rows {
            return Err(fail(format!(
                "{}: the file holds {}; the manifest says {}",
                f.path,
                rows(events.len() as u64),
                rows(f.rows)
            )));
        }
        for event in &events {
            let row = activity_log::domain::ocsf::api_row(event)
                .map_err(|e| fail(format!("{}: {e}", f.path)))?;
            serde_json::to_writer(&mut lines, &row)
                .map_err(|e| fail(format!("{}: {e}", f.path)))?;
            lines.push(b'\n');
        }
    }
    let sha256 = hex::encode(all.finalize());
    if sha256 != manifest.file.sha256 || bytes != manifest.file.bytes {
        return Err(fail(format!(
            "the files one after another are not what the manifest describes (SHA-256 {sha256}, {bytes} bytes; the manifest says SHA-256 {}, {} bytes)",
            manifest.file.sha256, manifest.file.bytes
        )));
    }
    verify_rows(&lines, &manifest, &key, &held)
}

/// The paths (relative to `root`, with `/`) of the `.parquet` files under `dir`.
fn parquet_files(root: &Path, dir: &Path, found: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            parquet_files(root, &path, found)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            found.push(parts.join("/"));
        }
    }
    Ok(())
}

/// Checks an export held in memory (its SHA-256 computed here).
pub fn verify_export(export: &[u8], manifest: &[u8], key: &Key) -> Result<ExportReport, Error> {
    let sha256 = hex::encode(Sha256::digest(export));
    verify_export_digest(export, &sha256, manifest, key, &[])
}

/// Checks an export read with [`read_hashed`].
pub fn verify_hashed_export(
    export: &HashedFile,
    manifest: &[u8],
    key: &Key,
) -> Result<ExportReport, Error> {
    verify_export_digest(&export.bytes, &export.sha256, manifest, key, &[])
}

/// The checks, in order, stopping at the first failure: the manifest's signature; the file's
/// digest, size and rows; every line; then per customer the rows the manifest lists, its
/// checkpoint's signature, and the chain (hashes, links, the signed head).
fn verify_export_digest(
    export: &[u8],
    sha256: &str,
    manifest: &[u8],
    key: &Key,
    held: &[HeldFile],
) -> Result<ExportReport, Error> {
    let fail = |m: String| Error::Failed(m);

    // 1. The manifest and its signature.
    let manifest = signed_manifest(manifest, key)?;

    // 2. The file is the one the manifest describes.
    let bytes = export.len() as u64;
    if sha256 != manifest.file.sha256 || bytes != manifest.file.bytes {
        return Err(fail(format!(
            "the file is not the one the manifest describes (SHA-256 {sha256}, {bytes} bytes; the manifest says SHA-256 {}, {} bytes)",
            manifest.file.sha256, manifest.file.bytes
        )));
    }
    if manifest.export.format != "jsonl" {
        return Err(Error::Usage(format!(
            "the manifest's signature and the file's SHA-256 match, but only JSON Lines exports (format jsonl) and Parquet exports (a directory of their files) can be checked row by row; this one is {}",
            manifest.export.format
        )));
    }
    verify_rows(export, &manifest, key, held)
}

/// The manifest, once its version is known and its signature holds.
fn signed_manifest(manifest: &[u8], key: &Key) -> Result<Manifest, Error> {
    let fail = |m: String| Error::Failed(m);
    let manifest: Manifest = serde_json::from_slice(manifest)
        .map_err(|e| fail(format!("the manifest cannot be read: {e}")))?;
    if manifest.version != MANIFEST_VERSION {
        return Err(fail(format!(
            "manifest version {} is not supported (this verifier reads version {MANIFEST_VERSION})",
            manifest.version
        )));
    }
    let message = manifest
        .message()
        .map_err(|e| fail(format!("the manifest cannot be read: {e}")))?;
    if !key.verifies(&message, &manifest.signature) {
        return Err(fail(
            "manifest signature invalid: the manifest was altered or not signed by this key".into(),
        ));
    }
    Ok(manifest)
}

/// The rows of an export (JSON Lines: the file, or a Parquet export's events read back) against
/// its signed manifest: their count, every line, then per customer the rows the manifest lists,
/// its checkpoint's signature, and the chain (hashes, links, the signed head).
fn verify_rows(
    export: &[u8],
    manifest: &Manifest,
    key: &Key,
    held: &[HeldFile],
) -> Result<ExportReport, Error> {
    let fail = |m: String| Error::Failed(m);
    let row_count = count_rows(export);
    if row_count != manifest.file.rows {
        return Err(fail(format!(
            "the file holds {}; the manifest says {}",
            rows(row_count),
            rows(manifest.file.rows)
        )));
    }

    // 3. Every line.
    let mut groups = read_rows(export, &manifest.partner_id)?;
    let sealed_at = time::parse_timestamp(&manifest.created_at)
        .map_err(|e| fail(format!("the manifest's createdAt: {e}")))?;

    // 4. Per customer.
    let mut listed: HashMap<&str, &ManifestCustomer> = HashMap::new();
    for c in &manifest.customers {
        if listed.insert(c.customer_id.as_str(), c).is_some() {
            return Err(fail(format!(
                "{}: the manifest lists the customer twice",
                c.customer_id
            )));
        }
    }
    if let Some(g) = groups
        .list
        .iter()
        .find(|g| !listed.contains_key(g.0.as_str()))
    {
        return Err(fail(format!(
            "{}: the file holds {} of the customer, but the manifest does not list it",
            g.0,
            rows(g.1.len() as u64)
        )));
    }
    let mut customers = Vec::with_capacity(manifest.customers.len());
    for c in &manifest.customers {
        let mut chain = groups.take(&c.customer_id);
        let heads = held::heads(held, &manifest.partner_id, &c.customer_id, key, false)?;
        let mut report = verify_customer(export, manifest, c, &mut chain)?;
        // The customer's rows in sequence order (the chain's check sorted them, or failed).
        chain.sort_unstable_by_key(|r| r.sequence);
        report.left_out = check_gaps(export, manifest, c, &chain, sealed_at)?;
        report.held = heads.len();
        let head = signed_head(c);
        report.held_summary = match check_held(&chain, &head, sealed_at, &heads, None) {
            Ok(summary) => summary,
            // The compact rows do not keep ids: the domain's rows name the activity.
            Err(_) => {
                let rows = slow_rows(export, manifest, &chain)?;
                let finding = check_held(&rows, &head, sealed_at, &heads, None).err();
                return Err(fail(format!(
                    "{}: {}",
                    c.customer_id,
                    finding.map_or_else(
                        || "a held checkpoint does not hold".into(),
                        |f| f.to_string()
                    )
                )));
            }
        };
        customers.push(report);
    }
    let held_elsewhere = held
        .iter()
        .filter(|h| !listed.contains_key(h.checkpoint.customer_id.as_str()))
        .count();
    Ok(ExportReport {
        export_id: manifest.export_id.clone(),
        rows: row_count,
        key_id: manifest.key_id.clone(),
        customers,
        held_elsewhere,
    })
}

fn verify_customer(
    export: &[u8],
    manifest: &Manifest,
    c: &ManifestCustomer,
    chain: &mut [Compact],
) -> Result<CustomerReport, Error> {
    let id = &c.customer_id;
    let fail = |m: String| Error::Failed(format!("{id}: {m}"));
    let (first, last) = chain.iter().fold((u64::MAX, 0), |(lo, hi), r| {
        (lo.min(r.sequence), hi.max(r.sequence))
    });
    let first = if chain.is_empty() { 0 } else { first };
    let count = chain.len() as u64;
    if chain.is_empty() && c.rows > 0 {
        return Err(fail(format!(
            "the manifest lists {} (sequences {}–{}), but the file holds none",
            rows(c.rows),
            c.first_sequence,
            c.last_sequence
        )));
    }
    if !chain.is_empty() && (count, first, last) != (c.rows, c.first_sequence, c.last_sequence) {
        return Err(fail(format!(
            "the file holds {}, sequences {first}–{last}; the manifest says {}, sequences {}–{}",
            rows(count),
            rows(c.rows),
            c.first_sequence,
            c.last_sequence
        )));
    }
    if c.head.sequence < last {
        return Err(fail(format!(
            "the signed head (sequence {}) is before the last activity in the file (sequence {last})",
            c.head.sequence
        )));
    }
    let head = signed_head(c);
    let summary = match fast::chain_holds(chain, &head) {
        Some(summary) => summary,
        // Something does not hold: the domain's check names it.
        None => {
            let mut rows = slow_rows(export, manifest, chain)?;
            verify(&mut rows, Some(&head), None).map_err(|f| fail(f.to_string()))?
        }
    };
    Ok(CustomerReport {
        customer_id: id.clone(),
        summary,
        head_sequence: c.head.sequence,
        sealed_at: manifest.created_at.clone(),
        left_out: 0,
        held: 0,
        held_summary: HeldSummary::default(),
    })
}

/// The head the manifest signs for a customer.
fn signed_head(c: &ManifestCustomer) -> SignedHead {
    SignedHead {
        sequence: c.head.sequence,
        hash: c.head.hash.clone(),
    }
}

/// Every gap between the customer's rows (`chain`, in sequence order, hashes and links
/// checked): a run the manifest says was left out (the log held it) must be exactly the gap and
/// link the rows on either side; any other gap is missing unless the row after it shows the
/// activity before it recorded longer than the signed retention before the manifest was sealed
/// (expired). Returns the sequences left out.
fn check_gaps(
    export: &[u8],
    manifest: &Manifest,
    c: &ManifestCustomer,
    chain: &[Compact],
    sealed_at: DateTime<Utc>,
) -> Result<u64, Error> {
    let id = &c.customer_id;
    let fail = |m: String| Error::Failed(format!("{id}: {m}"));
    let row_of = |r: &Compact| -> Result<ChainRow, Error> {
        slow_rows(export, manifest, std::slice::from_ref(r))?
            .pop()
            .ok_or_else(|| fail("a row could not be read again".into()))
    };
    let mut listed = 0;
    for l in &c.left_out {
        let inside = chain.partition_point(|r| r.sequence < l.first);
        let before = inside.checked_sub(1).map(|i| &chain[i]);
        let exact = matches!(
            (before, chain.get(inside)),
            (Some(b), Some(a)) if b.sequence + 1 == l.first && a.sequence == l.last + 1
        );
        if !exact {
            return Err(fail(format!(
                "the manifest says sequences {}–{} were left out, but the file does not leave out exactly those",
                l.first, l.last
            )));
        }
        listed += l.last - l.first + 1;
    }
    let retention = TimeDelta::days(i64::from(manifest.retention_days));
    for pair in chain.windows(2) {
        let (before, row) = (&pair[0], &pair[1]);
        if before.sequence + 1 >= row.sequence {
            continue;
        }
        if let Some(l) = c.left_out_before(row.sequence) {
            let linked = hex::decode(&l.previous_hash).is_ok_and(|h| h == before.hash)
                && hex::decode(&l.hash).is_ok_and(|h| h == row.previous);
            if !linked {
                let row = row_of(row)?;
                return Err(fail(format!(
                    "activity {} (sequence {}) and the row before it do not link to the activities {}–{} the manifest says were left out: the chain was changed",
                    row.id, row.link.sequence, l.first, l.last
                )));
            }
            continue;
        }
        let row = row_of(row)?;
        let expired = row
            .link
            .previous_recorded_at
            .is_some_and(|t| t + retention <= sealed_at);
        if !expired {
            return Err(fail(
                Finding::Missing {
                    id: row.id.clone(),
                    sequence: row.link.sequence,
                    after: before.sequence,
                }
                .to_string(),
            ));
        }
    }
    Ok(listed)
}

/// The compact rows of a customer read again as the domain's rows (which name their ids).
fn slow_rows(
    export: &[u8],
    manifest: &Manifest,
    chain: &[Compact],
) -> Result<Vec<ChainRow>, Error> {
    let mut rows = Vec::with_capacity(chain.len());
    for r in chain {
        let n = memchr::memchr_iter(b'\n', &export[..r.start]).count() + 1;
        let (_, row) = slow_row(n, &export[r.start..r.end], &manifest.partner_id)?;
        rows.push(row);
    }
    Ok(rows)
}

/// The lines of a file, numbered from 1, with where each starts (a final newline ends the
/// last line; it starts none).
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, usize, &[u8])> {
    let mut start = 0;
    let mut n = 0;
    let mut newlines = memchr::memchr_iter(b'\n', bytes);
    std::iter::from_fn(move || {
        if start > bytes.len() {
            return None;
        }
        let end = newlines.next().unwrap_or(bytes.len());
        let line = (n + 1, start, &bytes[start..end]);
        n += 1;
        start = end + 1;
        Some(line)
    })
}

/// Lines that are not empty.
fn count_rows(bytes: &[u8]) -> u64 {
    let mut rows = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', bytes) {
        rows += u64::from(end > start);
        start = end + 1;
    }
    rows + u64::from(bytes.len() > start)
}

/// The chained rows by customer, in the order customers first appear.
#[derive(Default)]
struct Groups {
    index: HashMap<String, usize>,
    list: Vec<(String, Vec<Compact>)>,
}

impl Groups {
    fn push(&mut self, customer: &str, row: Compact) {
        let i = match self.index.get(customer) {
            Some(&i) => i,
            None => {
                let i = self.list.len();
                self.index.insert(customer.to_owned(), i);
                self.list.push((customer.to_owned(), Vec::new()));
                i
            }
        };
        self.list[i].1.push(row);
    }

    fn take(&mut self, customer: &str) -> Vec<Compact> {
        match self.index.get(customer) {
            Some(&i) => std::mem::take(&mut self.list[i].1),
            None => Vec::new(),
        }
    }
}

/// Every line as a row: a JSON object, chained, by customer (a row without a sequence is a
/// finding). Lines are read on the hot path ([`fast::read`]); the others as the domain reads
/// them.
fn read_rows(export: &[u8], partner: &str) -> Result<Groups, Error> {
    let partner_json = fast::json_string(partner)
        .ok_or_else(|| Error::Failed(format!("partner {partner} cannot be written as JSON")))?;
    let mut groups = Groups::default();
    let mut buf = Vec::with_capacity(4096);
    for (n, start, line) in lines(export) {
        if line.is_empty() {
            continue;
        }
        let end = start + line.len();
        match fast::read(line, &partner_json, &mut buf) {
            fast::Line::Chained {
                customer,
                sequence,
                hash,
                previous,
                intact,
            } => groups.push(
                &customer,
                Compact {
                    sequence,
                    hash,
                    previous,
                    intact,
                    start,
                    end,
                },
            ),
            fast::Line::Unchained | fast::Line::Other => {
                let (customer, row) = slow_row(n, line, partner)?;
                groups.push(&customer, fast::compact_of(&row, start, end));
            }
        }
    }
    Ok(groups)
}

/// A line read as the domain reads a row: its customer and row; what cannot be read names the
/// line (and the activity, if it has an id), and so does a row without a sequence.
fn slow_row(n: usize, line: &[u8], partner: &str) -> Result<(String, ChainRow), Error> {
    let row: Map<String, Value> = serde_json::from_slice(line)
        .map_err(|e| Error::Failed(format!("line {n} is not a JSON object: {e}")))?;
    let named = |m: String| match row.get("id").and_then(Value::as_str) {
        Some(id) => Error::Failed(format!("line {n} (activity {id}): {m}")),
        None => Error::Failed(format!("line {n}: {m}")),
    };
    if matches!(row.get("sequence"), None | Some(Value::Null)) {
        let id = row.get("id").and_then(Value::as_str).unwrap_or("?");
        let stripped = Finding::Unchained { id: id.to_owned() };
        return Err(Error::Failed(format!("line {n}: {stripped}")));
    }
    let Some(customer) = row.get("customerId").and_then(Value::as_str) else {
        return Err(named("customerId is missing".into()));
    };
    let chained = ChainRow::from_row(partner, &row).map_err(|e| named(e.to_string()))?;
    Ok((customer.to_owned(), chained))
}
