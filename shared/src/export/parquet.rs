//! Parquet in OCSF form (README, "Analytics"): each activity as an API Activity event
//! ([`crate::domain::ocsf`]), one file at a time, in bounded memory. Rows are handed to the
//! writer [`BATCH_ROWS`] at a time, a row group is closed once its encoded size passes
//! [`ROW_GROUP_BYTES`], and the file's bytes are drained by the caller part by part
//! ([`ParquetEncoder::take`]); a file ends with [`ParquetEncoder::close`], and the next row starts
//! another.

use std::sync::Arc;

use arrow_array::builder::{
    Int32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, Int32Array, ListArray, RecordBatch, StringArray, StructArray};
use arrow_schema::{ArrowError, Field, Fields, Schema, SchemaRef};
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::buffer::SharedBuffer;
use crate::domain::Activity;
use crate::domain::ocsf::{
    self, ApiActivity, CATEGORY_NAME, CATEGORY_UID, CLASS_NAME, CLASS_UID, OCSF_VERSION,
    PRODUCT_NAME, PRODUCT_VERSION, VENDOR_NAME,
};

/// The media type of a Parquet file (IANA, 2024).
pub const CONTENT_TYPE: &str = "application/vnd.apache.parquet";
/// Rows gathered before they go to the writer as one record batch.
pub const BATCH_ROWS: usize = 1024;
/// A row group is closed once its encoded size passes this: the writer's memory is about one
/// row group, and readers (Athena, DuckDB) skip whole row groups by their statistics.
pub const ROW_GROUP_BYTES: usize = 1024 * 1024;

/// A column's page (and dictionary) is closed at this size.
pub const PAGE_BYTES: usize = 32 * 1024;

/// Rows in a data page at most (the writer checks after every 1,024).
pub const PAGE_ROWS: usize = 4096;

/// Why a row or a file could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("parquet: {0}")]
pub struct EncodeError(String);

impl From<ParquetError> for EncodeError {
    fn from(e: ParquetError) -> Self {
        Self(e.to_string())
    }
}

impl From<ArrowError> for EncodeError {
    fn from(e: ArrowError) -> Self {
        Self(e.to_string())
    }
}

impl From<std::io::Error> for EncodeError {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

/// Encodes activities as Parquet files, one open at a time.
pub struct ParquetEncoder {
    partner: String,
    region: String,
    columns: Columns,
    out: SharedBuffer,
    writer: Option<ArrowWriter<SharedBuffer>>,
    /// Rows in the open file.
    rows: u64,
}

impl ParquetEncoder {
    /// `partner`: whose log it is (`metadata.tenant_uid`); `region`: the service's
    /// (`cloud.region`); `part_capacity`: what each drained buffer is allocated with.
    pub fn new(partner: &str, region: &str, part_capacity: usize) -> Self {
        let out = SharedBuffer::default();
        out.set_capacity(part_capacity);
        Self {
            partner: partner.to_owned(),
            region: region.to_owned(),
            columns: Columns::default(),
            out,
            writer: None,
            rows: 0,
        }
    }

    /// The files' schema: OCSF's attributes, nested as OCSF nests them, then the chain's.
    pub fn schema() -> SchemaRef {
        Columns::default()
            .finish()
            .map_or_else(|_| Arc::new(Schema::empty()), |batch| batch.schema())
    }

    /// Adds a row to the open file (opening one if none is); `details` is the activity's
    /// details document.
    pub fn row(&mut self, a: &Activity, details: Option<&str>) -> Result<(), EncodeError> {
        let partner = std::mem::take(&mut self.partner);
        let region = std::mem::take(&mut self.region);
        let result = self.event(&ApiActivity::of(a, details, &partner, &region));
        (self.partner, self.region) = (partner, region);
        result
    }

    /// Adds an event to the open file (opening one if none is).
    pub fn event(&mut self, e: &ApiActivity<'_>) -> Result<(), EncodeError> {
        if self.writer.is_none() {
            self.writer = Some(ArrowWriter::try_new(
                self.out.clone(),
                Self::schema(),
                Some(properties()),
            )?);
            self.rows = 0;
        }
        self.columns.push(e);
        self.rows += 1;
        if self.columns.rows >= BATCH_ROWS {
            self.write_batch()?;
        }
        Ok(())
    }

    fn write_batch(&mut self) -> Result<(), EncodeError> {
        if self.columns.rows == 0 {
            return Ok(());
        }
        let batch = self.columns.finish()?;
        if let Some(w) = &mut self.writer {
            w.write(&batch)?;
        }
        Ok(())
    }

    /// Whether a file is open (a row was added since the last [`Self::close`]).
    pub fn is_open(&self) -> bool {
        self.writer.is_some()
    }

    /// Rows in the open file.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The open file's size so far: its bytes written and its open row group as encoded.
    pub fn file_bytes(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| {
            u64::try_from(w.bytes_written() + w.in_progress_size()).unwrap_or(u64::MAX)
        })
    }

    /// Encoded bytes of the open file not yet taken.
    pub fn buffered(&self) -> usize {
        self.out.len()
    }

    /// Takes the encoded bytes of the open file.
    pub fn take(&mut self) -> Result<Vec<u8>, EncodeError> {
        Ok(self.out.take()?)
    }

    /// Ends the open file (its last row group and footer) and returns the bytes of it not yet
    /// taken; nothing if no file is open.
    pub fn close(&mut self) -> Result<Vec<u8>, EncodeError> {
        self.write_batch()?;
        if let Some(w) = self.writer.take() {
            w.close()?;
        }
        self.take()
    }
}

fn properties() -> WriterProperties {
    let builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("{PRODUCT_NAME} {PRODUCT_VERSION}"))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        // Each of the ~30 columns buffers a page and a dictionary before it is compressed: at
        // the default 1 MiB each, those buffers, not the rows, would be most of the memory.
        .set_data_page_size_limit(PAGE_BYTES)
        .set_dictionary_page_size_limit(PAGE_BYTES)
        // A dictionary column keeps an index (8 bytes) per row until its page ends, and a
        // column of few values (a constant, a status) never fills 32 KiB: its pages end by rows.
        .set_data_page_row_count_limit(PAGE_ROWS)
        // Statistics per column chunk (what Athena prunes row groups by), not per page: a page
        // index is held in memory for the whole file until its footer.
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk);
    // A dictionary only pays where values repeat. The columns of one value per event (times,
    // ids, hashes, sequences, details) would each keep a dictionary of every value until it
    // passes its limit and falls back: memory and time for nothing.
    UNIQUE_COLUMNS
        .iter()
        .fold(builder, |b, column| {
            let path = ColumnPath::new(column.split('.').map(str::to_owned).collect());
            b.set_column_dictionary_enabled(path, false)
        })
        .build()
}

/// The columns whose values are (nearly) all different: written without a dictionary.
const UNIQUE_COLUMNS: [&str; 10] = [
    "time",
    "metadata.uid",
    "metadata.logged_time",
    "metadata.sequence",
    "unmapped",
    "sequence",
    "hash",
    "previous_hash",
    "previous_recorded_at",
    "feed_position",
];

/// The rows of a batch, a builder per attribute that varies by row.
struct Columns {
    rows: usize,
    time: TimestampMillisecondBuilder,
    activity_id: Int32Builder,
    activity_name: StringBuilder,
    type_uid: Int64Builder,
    type_name: StringBuilder,
    status_id: Int32Builder,
    status: StringBuilder,
    user_name: StringBuilder,
    operation: StringBuilder,
    resource_uid: StringBuilder,
    resource_name: StringBuilder,
    resource_type: StringBuilder,
    src_uid: StringBuilder,
    cloud_region: StringBuilder,
    uid: StringBuilder,
    tenant_uid: StringBuilder,
    logged_time: TimestampMillisecondBuilder,
    metadata_sequence: Int64Builder,
    unmapped: StringBuilder,
    sequence: Int64Builder,
    hash: StringBuilder,
    previous_hash: StringBuilder,
    previous_recorded_at: TimestampMillisecondBuilder,
    feed_position: Int64Builder,
    recorded_by: StringBuilder,
}

fn utc_millis() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            rows: 0,
            time: utc_millis(),
            activity_id: Int32Builder::new(),
            activity_name: StringBuilder::new(),
            type_uid: Int64Builder::new(),
            type_name: StringBuilder::new(),
            status_id: Int32Builder::new(),
            status: StringBuilder::new(),
            user_name: StringBuilder::new(),
            operation: StringBuilder::new(),
            resource_uid: StringBuilder::new(),
            resource_name: StringBuilder::new(),
            resource_type: StringBuilder::new(),
            src_uid: StringBuilder::new(),
            cloud_region: StringBuilder::new(),
            uid: StringBuilder::new(),
            tenant_uid: StringBuilder::new(),
            logged_time: utc_millis(),
            metadata_sequence: Int64Builder::new(),
            unmapped: StringBuilder::new(),
            sequence: Int64Builder::new(),
            hash: StringBuilder::new(),
            previous_hash: StringBuilder::new(),
            previous_recorded_at: utc_millis(),
            feed_position: Int64Builder::new(),
            recorded_by: StringBuilder::new(),
        }
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A sequence or position as Parquet's INT64 (they never reach 2^63).
fn long(n: Option<u64>) -> Option<i64> {
    n.and_then(|n| i64::try_from(n).ok())
}

impl Columns {
    fn push(&mut self, e: &ApiActivity<'_>) {
        self.rows += 1;
        self.time.append_value(millis(e.time));
        self.activity_id.append_value(e.activity.id());
        self.activity_name.append_value(e.activity.name());
        self.type_uid.append_value(e.type_uid());
        self.type_name.append_value(e.type_name());
        self.status_id.append_value(e.status.0);
        self.status.append_value(e.status.1);
        self.user_name.append_value(e.user_name);
        self.operation.append_value(e.operation);
        self.resource_uid.append_value(e.resource_uid);
        self.resource_name.append_value(e.resource_name);
        self.resource_type.append_option(e.resource_type);
        self.src_uid.append_option(e.src_uid);
        self.cloud_region.append_value(e.cloud_region);
        self.uid.append_value(e.uid);
        self.tenant_uid.append_value(e.tenant_uid);
        self.logged_time.append_value(millis(e.logged_time));
        self.metadata_sequence
            .append_option(long(e.metadata_sequence));
        self.unmapped.append_option(e.unmapped.as_deref());
        self.sequence.append_option(long(e.sequence));
        self.hash.append_option(e.hash);
        self.previous_hash.append_option(e.previous_hash);
        self.previous_recorded_at
            .append_option(e.previous_recorded_at.map(millis));
        self.feed_position.append_option(long(e.feed_position));
        self.recorded_by.append_option(e.recorded_by);
    }

    /// The rows so far as a record batch; the builders start over.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let n = std::mem::take(&mut self.rows);
        let text = |b: &mut StringBuilder| -> ArrayRef { Arc::new(b.finish()) };
        let same = |v: &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n)))
        };
        let same_int = |v: i32| -> ArrayRef { Arc::new(Int32Array::from_value(v, n)) };
        let user = structure(vec![("name", text(&mut self.user_name), false)])?;
        let actor = structure(vec![("user", user, false)])?;
        let service = structure(vec![("name", same(PRODUCT_NAME), false)])?;
        let api = structure(vec![
            ("operation", text(&mut self.operation), false),
            ("service", service, false),
        ])?;
        let resource = structure(vec![
            ("uid", text(&mut self.resource_uid), false),
            ("name", text(&mut self.resource_name), false),
            ("type", text(&mut self.resource_type), true),
        ])?;
        let element = Arc::new(Field::new("element", resource.data_type().clone(), false));
        let resources: ArrayRef = Arc::new(ListArray::try_new(
            element,
            arrow_buffer::OffsetBuffer::from_lengths(std::iter::repeat_n(1, n)),
            resource,
            None,
        )?);
        let src_endpoint = structure(vec![
            ("svc_name", same(PRODUCT_NAME), false),
            ("uid", text(&mut self.src_uid), true),
        ])?;
        let cloud = structure(vec![
            ("provider", same("AWS"), false),
            ("region", text(&mut self.cloud_region), false),
        ])?;
        let product = structure(vec![
            ("name", same(PRODUCT_NAME), false),
            ("vendor_name", same(VENDOR_NAME), false),
            ("version", same(PRODUCT_VERSION), false),
        ])?;
        let metadata = structure(vec![
            ("version", same(OCSF_VERSION), false),
            ("product", product, false),
            ("uid", text(&mut self.uid), false),
            ("tenant_uid", text(&mut self.tenant_uid), false),
            ("logged_time", Arc::new(self.logged_time.finish()), false),
            ("sequence", Arc::new(self.metadata_sequence.finish()), true),
        ])?;
        let (severity_id, severity) = ocsf::SEVERITY;
        let columns: Vec<(&str, ArrayRef, bool)> = vec![
            ("time", Arc::new(self.time.finish()), false),
            ("activity_id", Arc::new(self.activity_id.finish()), false),
            ("activity_name", text(&mut self.activity_name), false),
            ("category_uid", same_int(CATEGORY_UID), false),
            ("category_name", same(CATEGORY_NAME), false),
            ("class_uid", same_int(CLASS_UID), false),
            ("class_name", same(CLASS_NAME), false),
            ("type_uid", Arc::new(self.type_uid.finish()), false),
            ("type_name", text(&mut self.type_name), false),
            ("severity_id", same_int(severity_id), false),
            ("severity", same(severity), false),
            ("status_id", Arc::new(self.status_id.finish()), false),
            ("status", text(&mut self.status), false),
            ("actor", actor, false),
            ("api", api, false),
            ("resources", resources, false),
            ("src_endpoint", src_endpoint, false),
            ("cloud", cloud, false),
            ("metadata", metadata, false),
            ("unmapped", text(&mut self.unmapped), true),
            ("sequence", Arc::new(self.sequence.finish()), true),
            ("hash", text(&mut self.hash), true),
            ("previous_hash", text(&mut self.previous_hash), true),
            (
                "previous_recorded_at",
                Arc::new(self.previous_recorded_at.finish()),
                true,
            ),
            ("feed_position", Arc::new(self.feed_position.finish()), true),
            ("recorded_by", text(&mut self.recorded_by), true),
        ];
        let (fields, arrays) = fields_and_arrays(columns);
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
    }
}

fn fields_and_arrays(members: Vec<(&str, ArrayRef, bool)>) -> (Fields, Vec<ArrayRef>) {
    let fields: Fields = members
        .iter()
        .map(|(name, array, nullable)| Field::new(*name, array.data_type().clone(), *nullable))
        .collect();
    let arrays = members.into_iter().map(|(_, array, _)| array).collect();
    (fields, arrays)
}

/// A struct of `members` (name, values, whether they may be null); never null itself.
fn structure(members: Vec<(&str, ArrayRef, bool)>) -> Result<ArrayRef, ArrowError> {
    let (fields, arrays) = fields_and_arrays(members);
    Ok(Arc::new(StructArray::try_new(fields, arrays, None)?))
}

/// One Parquet file of the events a streaming destination receives (`(feed position, event)`,
/// each event's `activity` as the API writes it) of `partner`'s feed: what an S3 destination
/// that takes Parquet gets per delivery.
pub fn feed_file(
    partner: &str,
    region: &str,
    events: &[(u64, serde_json::Value)],
) -> Result<Vec<u8>, EncodeError> {
    let mut encoder = ParquetEncoder::new(partner, region, 0);
    for (position, event) in events {
        let e = ApiActivity::of_row(&event["activity"], Some(*position), partner, region)
            .map_err(|e| EncodeError(format!("the event at position {position}: {e}")))?;
        encoder.event(&e)?;
    }
    encoder.close()
}

/// The events of a Parquet file this encoder wrote, as OCSF JSON: times as milliseconds since
/// the epoch (OCSF's `timestamp_t`), absent attributes left out rather than null, and
/// `unmapped` as the object its text holds. For the verifier and the tests.
pub fn events(file: Vec<u8>) -> Result<Vec<serde_json::Value>, EncodeError> {
    use parquet::file::reader::{FileReader as _, SerializedFileReader};
    let reader = SerializedFileReader::new(bytes::Bytes::from(file))?;
    let mut out = Vec::new();
    for row in reader.get_row_iter(None)? {
        let mut event = group(&row?);
        if let Some(serde_json::Value::String(text)) = event.get("unmapped") {
            let details = serde_json::from_str(text)
                .map_err(|e| EncodeError(format!("unmapped is not JSON: {e}")))?;
            event["unmapped"] = details;
        }
        out.push(event);
    }
    Ok(out)
}

fn group(row: &parquet::record::Row) -> serde_json::Value {
    serde_json::Value::Object(
        row.get_column_iter()
            .filter(|(_, f)| !matches!(f, parquet::record::Field::Null))
            .map(|(name, f)| (name.clone(), field(f)))
            .collect(),
    )
}

fn field(f: &parquet::record::Field) -> serde_json::Value {
    use parquet::record::Field;
    use serde_json::Value;
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Int(n) => Value::from(*n),
        Field::Long(n) | Field::TimestampMillis(n) => Value::from(*n),
        Field::Str(s) => Value::from(s.as_str()),
        Field::Group(row) => group(row),
        Field::ListInternal(list) => Value::Array(list.elements().iter().map(field).collect()),
        other => Value::from(other.to_string()),
    }
}

/// The files' columns as a Glue (Hive) table declares them, in order: what the template's
/// Athena table must say (checked by the template test).
pub fn hive_columns() -> Vec<(String, String)> {
    ParquetEncoder::schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), hive_type(f.data_type())))
        .collect()
}

fn hive_type(t: &arrow_schema::DataType) -> String {
    use arrow_schema::DataType;
    match t {
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Utf8 => "string".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), hive_type(f.data_type())))
                .collect::<Vec<_>>()
                .join(",")
        ),
        DataType::List(f) => format!("array<{}>", hive_type(f.data_type())),
        other => format!("{other}"),
    }
}

#[cfg(all(test, feature = "service"))]
mod tests {
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;
    use crate::testing::fixtures::synthetic_activity;

    /// Each column named as one of unique values exists and is written without a dictionary;
    /// a column of few values keeps one.
    #[test]
    fn columns_of_unique_values_are_written_without_a_dictionary() {
        let mut encoder = ParquetEncoder::new("p1", "us-east-1", 0);
        let now = Utc::now();
        for n in 0..3000 {
            let a = synthetic_activity(n, &format!("c{}", n % 7), now);
            encoder.row(&a, None).unwrap_or_else(|e| panic!("{e}"));
        }
        let file = encoder.close().unwrap_or_else(|e| panic!("{e}"));
        let reader =
            SerializedFileReader::new(bytes::Bytes::from(file)).unwrap_or_else(|e| panic!("{e}"));
        let group = reader.metadata().row_group(0);
        let dictionary = |path: &str| -> bool {
            let column = group
                .columns()
                .iter()
                .find(|c| c.column_path().string() == path)
                .unwrap_or_else(|| panic!("no column {path}"));
            column
                .encodings()
                .any(|e| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY))
        };
        for path in UNIQUE_COLUMNS {
            assert!(!dictionary(path), "{path} has a dictionary");
        }
        for path in ["status", "api.operation", "cloud.region"] {
            assert!(dictionary(path), "{path} has no dictionary");
        }
    }
}
