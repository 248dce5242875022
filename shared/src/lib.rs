//! activity-log: record every action taken on a partner's customer accounts, look the log up by
//! customer and period, and export it.

pub mod app;
pub mod config;
pub mod domain;
pub mod export;
pub mod handlers;
pub mod http;
pub mod store;
pub mod testing;
