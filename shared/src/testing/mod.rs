//! For tests and benchmarks only (the `testing` feature; no function crate enables it):
//! API Gateway–shaped requests, the table and bucket as the template declares them, and the test
//! doubles that inject one specific failure or run the worker in-process.

pub mod doubles;
pub mod fixtures;
pub mod request;
pub mod signed;
pub mod storage;

pub use request::ApiRequest;
