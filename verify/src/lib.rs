//! Independent checks of the activity log's tamper evidence, with nothing but the service's
//! public key: the library behind the `activity-log-verify` command, so tests and benchmarks can
//! call the same checks.
//!
//! Offline, an export against its signed manifest:
//!
//! ```text
//! activity-log-verify EXPORT.jsonl --manifest MANIFEST.json --public-key KEY.pem
//! ```
//!
//! checks, stopping at the first failure, that the manifest is signed by the key; that the file
//! is the one it describes (SHA-256, bytes, rows); that every line is a row; and, per customer,
//! that the rows are the ones the manifest lists, that the customer's checkpoint is signed by
//! the key, and that every hash, every link between consecutive sequences and the signed head
//! hold ([`verify_export_files`]). Rows are read in one pass over the file, their records
//! hashed straight from the line's text; whatever that path cannot vouch for goes to the
//! domain's [`verify`](activity_log::domain::chain::verify), which names the finding.
//!
//! Through the API, a customer's whole retained chain against a checkpoint signed on request:
//!
//! ```text
//! activity-log-verify --api URL --token TOKEN --customer CUSTOMER_ID [--public-key KEY.pem]
//!     [--checkpoint HELD.json ...] [--save-checkpoint FILE] [--anchors DIR]
//! ```
//!
//! A checkpoint saved from an earlier check (`--checkpoint`, in either mode) must be extended
//! by the chain checked now: a head the service rolled back, or an activity it signed then
//! rewrote or deleted before it expired, fails the check ([`ApiOptions::held`]).
//!
//! (the token may come from `ACTIVITY_LOG_TOKEN` instead; [`verify_api`]). `https` URLs are
//! checked against the system's trusted certificates; plain `http` is for a local stack.
//!
//! Exit codes: 0 every check passed; 1 a check failed (tampering, a wrong key, an answer of the
//! API that is an error) — the reason on stdout as `FAILED: …`; 2 usage (arguments, a file or
//! key that cannot be read) — the reason on stderr.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

mod anchors;
mod api;
mod export;
mod fast;
mod held;

pub use activity_log::domain::integrity::Key;
pub use api::{ApiOptions, ApiReport, KeySource, verify_api, verify_api_at, verify_api_blocking};
pub use export::{
    CustomerReport, ExportReport, HashedFile, read_hashed, verify_export, verify_export_files,
    verify_hashed_export, verify_parquet_files,
};

/// Why the verifier stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Wrong arguments, a file or key that cannot be read: exit 2.
    Usage(String),
    /// A check failed, or the API answered with an error: exit 1.
    Failed(String),
}

impl Error {
    /// The process's exit code for it.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

/// A failure reads `FAILED: …`; a usage error is its message.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(m) => f.write_str(m),
            Self::Failed(m) => write!(f, "FAILED: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub const USAGE: &str = "\
usage: activity-log-verify EXPORT.jsonl --manifest MANIFEST.json --public-key KEY.pem
                           [--checkpoint HELD.json ...]
       activity-log-verify EXPORT-DIRECTORY --manifest MANIFEST.json --public-key KEY.pem
                           [--checkpoint HELD.json ...]
       activity-log-verify --api URL --token TOKEN --customer CUSTOMER_ID [--public-key KEY.pem]
                           [--checkpoint HELD.json ...] [--save-checkpoint FILE] [--anchors DIR]

A directory is a Parquet export: its files under the paths the manifest lists (region=…/accountId=…/
eventDay=…/), as GET /exports/{id} names them.
--anchors names a copy of the anchor bucket (aws s3 sync s3://BUCKET DIR): the chain must extend
every head anchored for the customer, each checked (its signature, or the signed seal that lists
it). The token may be given in ACTIVITY_LOG_TOKEN instead of --token. --public-key pins the key you
hold (with --api, the key the API names is used otherwise). The retention that tells expired
activities from deleted ones is the one the service signs in its checkpoint. --checkpoint (repeatable) names a checkpoint saved earlier:
the chain must extend it. --save-checkpoint writes the checkpoint verified now.
Exit codes: 0 verified, 1 a check failed (tampering), 2 usage.";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Export {
        export: PathBuf,
        manifest: PathBuf,
        public_key: PathBuf,
        held: Vec<PathBuf>,
    },
    Api(ApiOptions),
    Help,
}

/// Parses the arguments (without the program's name). `--name value` or `--name=value`.
pub fn parse_args<I, S>(args: I) -> Result<Command, Error>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let usage = |m: String| Error::Usage(m);
    let mut args = args.into_iter().map(Into::into);
    let mut positional: Vec<OsString> = Vec::new();
    let mut named: Vec<(String, OsString)> = Vec::new();
    let mut held: Vec<PathBuf> = Vec::new();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str().filter(|t| t.starts_with("--") || *t == "-h") else {
            positional.push(arg);
            continue;
        };
        if matches!(text, "-h" | "--help") {
            return Ok(Command::Help);
        }
        let (name, value) = match text.split_once('=') {
            Some((name, value)) => (name.to_owned(), OsString::from(value)),
            None => {
                let value = args
                    .next()
                    .ok_or_else(|| usage(format!("{text} needs a value")))?;
                (text.to_owned(), value)
            }
        };
        if name == "--checkpoint" {
            held.push(value.into());
            continue;
        }
        if name == "--retention-days" {
            return Err(usage(
                "--retention-days is not taken: the retention is the one the service signs in its checkpoint".into(),
            ));
        }
        if !matches!(
            name.as_str(),
            "--manifest"
                | "--public-key"
                | "--api"
                | "--token"
                | "--customer"
                | "--save-checkpoint"
                | "--anchors"
        ) {
            return Err(usage(format!("unknown option {name}")));
        }
        if named.iter().any(|(n, _)| *n == name) {
            return Err(usage(format!("{name} is given twice")));
        }
        named.push((name, value));
    }
    let mut take = |name: &str| {
        named
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| named.swap_remove(i).1)
    };
    let text = |name: &str, value: OsString| {
        value
            .into_string()
            .map_err(|_| usage(format!("{name} must be text (UTF-8)")))
    };
    let command = if let Some(url) = take("--api") {
        if !positional.is_empty() {
            return Err(usage(
                "--api checks through the API: no export file is read".into(),
            ));
        }
        let token = match take("--token") {
            Some(t) => text("--token", t)?,
            None => std::env::var("ACTIVITY_LOG_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| usage("--api needs --token (or ACTIVITY_LOG_TOKEN)".into()))?,
        };
        let customer = take("--customer")
            .ok_or_else(|| usage("--api needs --customer".into()))
            .and_then(|c| text("--customer", c))?;
        Command::Api(ApiOptions {
            url: text("--api", url)?,
            token,
            customer,
            public_key: take("--public-key").map(PathBuf::from),
            held,
            save_checkpoint: take("--save-checkpoint").map(PathBuf::from),
            anchors: take("--anchors").map(PathBuf::from),
        })
    } else {
        let mut files = positional.into_iter();
        let (Some(export), None) = (files.next(), files.next()) else {
            return Err(usage("give one export file (or --api)".into()));
        };
        let manifest = take("--manifest").ok_or_else(|| usage("--manifest is needed".into()))?;
        let public_key =
            take("--public-key").ok_or_else(|| usage("--public-key is needed".into()))?;
        Command::Export {
            export: export.into(),
            manifest: manifest.into(),
            public_key: public_key.into(),
            held,
        }
    };
    if let Some((name, _)) = named.first() {
        return Err(usage(format!("{name} does not apply here")));
    }
    Ok(command)
}

/// Runs a command: the lines to print when every check passed.
pub fn run(command: &Command) -> Result<Vec<String>, Error> {
    match command {
        Command::Help => Ok(vec![USAGE.to_owned()]),
        Command::Export {
            export,
            manifest,
            public_key,
            held,
        } if export.is_dir() => {
            verify_parquet_files(export, manifest, public_key, held).map(|r| r.lines())
        }
        Command::Export {
            export,
            manifest,
            public_key,
            held,
        } => verify_export_files(export, manifest, public_key, held).map(|r| r.lines()),
        Command::Api(opts) => verify_api_blocking(opts).map(|r| r.lines()),
    }
}

/// `1 activity`, `2 activities`.
fn activities(n: u64) -> String {
    if n == 1 {
        "1 activity".to_owned()
    } else {
        format!("{n} activities")
    }
}

fn read_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Usage(format!("{}: {e}", path.display()))
}

/// `customer` as a path segment, as the service escapes a customer id in its links.
use activity_log::http::path_segment as segment;
