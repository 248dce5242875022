//! `activity-log-verify`: checks the activity log's tamper evidence with the service's public
//! key.
//!
//! ```text
//! activity-log-verify EXPORT.jsonl --manifest MANIFEST.json --public-key KEY.pem
//! activity-log-verify --api URL --token TOKEN --customer CUSTOMER_ID
//! ```
//!
//! Offline, an export against its signed manifest (the manifest's signature, the file's
//! SHA-256, bytes and rows, then each customer's rows, signed checkpoint and chain); through the
//! API, a customer's whole retained chain against a checkpoint the service signs on request.
//! The token may come from `ACTIVITY_LOG_TOKEN` instead of `--token`.
//!
//! Prints a line per customer and an `OK:` line. Exit codes: 0 every check passed; 1 a check
//! failed (tampering, a wrong key, an error answer of the API), the reason on stdout as
//! `FAILED: …`; 2 usage (arguments, a file or key that cannot be read), on stderr.

use std::io::Write as _;
use std::process::ExitCode;

use activity_log_verify::{Error, USAGE, parse_args, run};

fn main() -> ExitCode {
    let command = match parse_args(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}\n\n{USAGE}");
            return ExitCode::from(e.exit_code());
        }
    };
    match run(&command) {
        Ok(lines) => {
            let mut out = std::io::stdout().lock();
            for line in lines {
                // A closed pipe (`| head`) is not a failed check.
                if writeln!(out, "{line}").is_err() {
                    break;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e @ Error::Failed(_)) => {
            println!("{e}");
            ExitCode::from(e.exit_code())
        }
        Err(e @ Error::Usage(_)) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
