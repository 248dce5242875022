//! The benchmark harness (`scripts/bench`, figures in BENCHMARKS.md): a stand-in for the Lambda
//! Runtime API and CPU time and peak memory of child processes as the kernel accounts them. The
//! synthetic activity log the benchmarks use is `activity_log::testing::fixtures::synthetic_activity`.

pub mod baseline;
pub mod process;
pub mod runtime_stub;
