//! The benchmark harness (`scripts/bench`, figures in BENCHMARKS.md): a stand-in for the Lambda
//! Runtime API, CPU time and peak memory of child processes as the kernel accounts them, and the
//! synthetic activity log the benchmarks use.

pub mod baseline;
pub mod process;
pub mod runtime_stub;
pub mod synthetic;
