//! The command line. Every flag documents itself in `--help`; settings flags also read a
//! `LIFTOFF_*` environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;

#[derive(Parser, Debug)]
#[command(
    name = "liftoff",
    version,
    about = "Liftoff: a launch control plane in one binary — feature flags, monitoring, analytics, alerts and launch controls.",
    long_about = None,
    after_help = "Start with `liftoff serve` and open http://127.0.0.1:7070. `liftoff serve --demo` fills an empty data directory with demo data first."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server: API, ingest, dashboard and background jobs.
    Serve(ServeArgs),
    /// Fill an empty data directory with realistic demo data, then exit (refused where data of
    /// its own lives).
    Demo(DemoArgs),
    /// Apply pending storage migrations and exit (serve also does this on start).
    Migrate(StoreArgs),
    /// Seal every finished day of product events into compact segments now, then exit (the
    /// server does this every 10 minutes on its own; useful after a bulk import).
    Seal(StoreArgs),
    /// Inspect and steer feature flags on a running server: the emergency levers of a launch.
    #[command(subcommand)]
    Flags(FlagsCommand),
    /// Manage API keys on a running server.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage dashboard users directly in the store (works while the server is down).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage the key that encrypts stored secrets (webhook URLs, SMTP passwords).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Load data from a file into a running server.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Stream the stored product events out of a running server.
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
    /// Generate a report (weekly, incident, performance, product, launch) as Markdown, HTML, PDF or JSON: from a
    /// running server with a token, or with --offline straight from a data directory.
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
    /// Copy the data directory's databases and secret key into one file, consistently, while
    /// the server runs (on PostgreSQL, use pg_dump for the state).
    Backup(BackupArgs),
    /// Unpack a backup into a new or empty data directory, checking every file first.
    Restore(RestoreArgs),
}

const REPORT_HELP: &str = "Examples:
  liftoff report weekly --format md --output week.md --token $LIFTOFF_TOKEN
  liftoff report weekly --format pdf --from 2026-06-01 --to 2026-06-08 -o week.pdf
  liftoff report incident --id INC-2026-004 --format html -o inc.html
  liftoff report performance --month 2026-11 --format pdf -o nov.pdf
  liftoff report product --month 2026-11 --funnel signup,activate,purchase
  liftoff report launch --offline --data ./liftoff-data --format md";

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// weekly, incident, performance, product or launch.
    #[arg(value_name = "KIND")]
    pub kind: String,

    /// md, html, pdf or json.
    #[arg(long, default_value = "md")]
    pub format: String,

    /// Write here instead of standard output (a PDF needs a file).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The window's start: RFC 3339 or YYYY-MM-DD (UTC midnight) [default: 7 days before --to].
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,

    /// The window's end: RFC 3339 or YYYY-MM-DD [default: now].
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,

    /// The incident, for `incident` (INC-YYYY-NNN).
    #[arg(long, value_name = "INC-YYYY-NNN")]
    pub id: Option<String>,

    /// The month, for `performance` and `product` [default: this month so far].
    #[arg(long, value_name = "YYYY-MM")]
    pub month: Option<String>,

    /// The product report's funnel: event names in order, comma-separated.
    #[arg(long, value_name = "EVENTS", value_delimiter = ',')]
    pub funnel: Option<Vec<String>>,

    /// Read the data directory (or --state-url) directly instead of asking a server.
    #[arg(long)]
    pub offline: bool,

    #[command(flatten)]
    pub remote: Remote,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The backup file to write; it must not exist.
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// A file `liftoff backup` wrote.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The data directory to restore into: new or empty.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML file with settings; flags and LIFTOFF_* variables override it.
    #[arg(long, env = "LIFTOFF_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Fill an empty data directory with demo data before serving (refused where data of its
    /// own lives; e.g. `--demo --data ./liftoff-demo`).
    #[arg(long)]
    pub demo: bool,

    #[command(flatten)]
    pub settings: Overrides,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// TOML file with settings; flags and LIFTOFF_* variables override it.
    #[arg(long, env = "LIFTOFF_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub settings: Overrides,
}

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// TOML file with settings; flags and LIFTOFF_* variables override it.
    #[arg(long, env = "LIFTOFF_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub settings: Overrides,
}

#[derive(Args, Debug)]
pub struct Remote {
    /// The server's base URL.
    #[arg(
        long,
        env = "LIFTOFF_URL",
        default_value = "http://127.0.0.1:7070",
        global = true
    )]
    pub url: String,

    /// An API token (admin scope to create or revoke keys).
    #[arg(long, env = "LIFTOFF_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key; prints its token once.
    Create {
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// admin, read or ingest.
        #[arg(long)]
        scope: String,
        /// Why; kept in the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List keys (never their tokens).
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke a key by id.
    Revoke {
        id: String,
        /// Why; kept in the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Add a dashboard user. Reads the password from standard input, or generates one.
    Create {
        #[arg(long)]
        username: String,
        /// admin, editor or viewer.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List dashboard users.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Generate a new key, re-encrypt every stored secret with it in one transaction, then
    /// replace <data>/secret-key. Works on the data directory and state store directly: stop
    /// the server first. With LIFTOFF_SECRET_KEY set, the new key is printed instead.
    Rotate(StoreArgs),
}

#[derive(Subcommand, Debug)]
pub enum FlagsCommand {
    /// Every flag with its status, strategy and rollout.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// One flag's full definition, as JSON.
    Get {
        flag: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Turn a flag on.
    Enable {
        flag: String,
        /// Why; kept in the flag's history.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Turn a flag off for everyone at once (the kill switch).
    Disable {
        flag: String,
        /// Why; kept in the flag's history.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Set the share of users who get the flag (0–100, decimals allowed).
    SetPercentage {
        flag: String,
        percentage: f64,
        /// Why; kept in the flag's history.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        remote: Remote,
    },
}

const IMPORT_EVENTS_HELP: &str = "\
Each line is one event, in either shape:
  native (POST /api/ingest/events):
    {\"event\": \"signup\", \"user_id\": \"u1\", \"session_id\": \"s1\", \"timestamp\": \"2025-06-01T12:00:00Z\",
     \"properties\": {\"plan\": \"pro\"}, \"uuid\": \"...\"}
  engine rows (what `liftoff export` and the benchmarks' gen_events.py write):
    {\"ts\": 1748779200000, \"user_id\": \"u1\", \"session_id\": \"s1\", \"event\": \"signup\",
     \"properties\": \"{\\\"plan\\\":\\\"pro\\\"}\"}
The file is read as a stream (any size, bounded memory); gzip is recognised by its magic bytes.

Re-running is safe: an event without a `uuid` gets one derived from its line (its timestamp's
milliseconds, then the SHA-256 of the line's bytes, as a version-8 UUID laid out like a version
7, so a file in time order imports in uuid order), so importing the same file again stores
nothing twice:
the server counts those events as duplicates. Identical lines are therefore one event.

A line that is not a JSON event, or that the server refuses (bad timestamp, name too long, …),
is reported with its line number and skipped; the rest is imported and the command exits with
status 1. Answers 429 and 503 are retried after the server's Retry-After.

Examples:
  liftoff import events events.ndjson.gz --token \"$INGEST_TOKEN\"
  liftoff import events big.ndjson --batch 5000 --concurrency 8 \\
    --url http://10.0.0.5:7070 --token \"$INGEST_TOKEN\"
  liftoff export --token \"$READ_TOKEN\" \\
    | liftoff import events - --url https://new.example.com --token \"$NEW_TOKEN\"";

const EXPORT_HELP: &str = "\
Formats: ndjson (default; one engine row per line: {ts, user_id, session_id?, event,
properties: \"<json text>\", uuid?}, which `liftoff import events` reads back), json (one array)
or csv (uuid,ts,timestamp,user_id,session_id,event,properties). The server streams page by page,
and so does this command: memory stays bounded whatever the range. An --output ending in .gz is
gzipped. Progress goes to standard error.

Examples:
  liftoff export --token \"$READ_TOKEN\" > events.ndjson
  liftoff export --format csv --output june.csv \\
    --from 2025-06-01T00:00:00Z --to 2025-07-01T00:00:00Z
  liftoff export --output backup.ndjson.gz --url https://liftoff.example.com";

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Send the product events of an NDJSON file (gzipped or not) to `POST /api/ingest/events`.
    #[command(after_help = IMPORT_EVENTS_HELP)]
    Events(ImportEventsArgs),
}

#[derive(Args, Debug)]
pub struct ImportEventsArgs {
    /// The NDJSON file, gzipped or not; `-` reads standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Events per request (at most 10,000; the server's body limit, 1 MiB by default, applies:
    /// a batch it refuses as too large is split).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,

    /// An ingest or admin token.
    #[arg(long, env = "LIFTOFF_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// The server's base URL.
    #[arg(long, env = "LIFTOFF_URL", default_value = "http://127.0.0.1:7070")]
    pub url: String,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExportFormat {
    #[default]
    Ndjson,
    Json,
    Csv,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Json => "json",
            Self::Csv => "csv",
        }
    }
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// ndjson, json or csv.
    #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
    pub format: ExportFormat,

    /// Start (included): RFC 3339 or Unix seconds/milliseconds. Default: the beginning.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,

    /// End (excluded), like --from. Default: no end.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,

    /// Write here instead of standard output (gzipped when it ends in .gz). Written to
    /// FILE.part first and renamed once complete.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// A read or admin token.
    #[arg(long, env = "LIFTOFF_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// The server's base URL.
    #[arg(long, env = "LIFTOFF_URL", default_value = "http://127.0.0.1:7070")]
    pub url: String,
}
