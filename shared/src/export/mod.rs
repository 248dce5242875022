//! Export encoding (CSV with Excel rules, JSON Lines) and the part writer that streams a file
//! to multipart upload in bounded memory.

pub mod csv;
pub mod manifest;
pub mod parts;
pub mod resume;
