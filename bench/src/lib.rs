//! The benchmark harness (`scripts/bench`, figures in BENCHMARKS.md): a stand-in for the Lambda
//! Runtime API, and CPU time and peak memory of child processes as the kernel accounts them.

pub mod process;
pub mod runtime_stub;
