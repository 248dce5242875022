//! Export encoding (CSV with Excel rules, JSON Lines, Parquet in OCSF form) and the part writer that streams a file
//! to multipart upload in bounded memory.

pub mod buffer;
pub mod csv;
pub mod manifest;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod parts;
pub mod resume;
