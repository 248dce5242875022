//! activity-log: record every action taken on a partner's customer accounts, look the log up by
//! customer and period, and export it.
//!
//! Without the `service` feature (on by default) the crate is its pure core: the domain, page
//! cursors, the CSV encoder, request parsing and the storage ports, with no AWS SDK and no Lambda
//! runtime — what the fuzz targets build.

pub mod config;
pub mod domain;
pub mod export;
pub mod http;
pub mod metrics;
pub mod store;

#[cfg(feature = "service")]
pub mod app;
#[cfg(feature = "service")]
pub mod handlers;
#[cfg(feature = "service")]
pub mod launch;
#[cfg(feature = "service")]
pub mod logging;
#[cfg(feature = "service")]
pub mod sdk;
#[cfg(feature = "service")]
pub mod sinks;
#[cfg(all(feature = "service", any(test, feature = "testing")))]
pub mod testing;
