//! What each function does, written against the storage ports so it runs the same in Lambda,
//! in integration tests against the emulator, and in unit tests against memory.

pub mod deliver;
pub mod destinations;
pub mod export_worker;
pub mod exports;
pub mod feed;
pub mod integrity;
pub mod query;
pub mod record;
pub mod seal;

#[cfg(test)]
mod export_tests;
#[cfg(test)]
mod tests;
