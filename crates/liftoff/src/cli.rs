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
    /// Fill a data directory with realistic demo data, then exit.
    Demo(DemoArgs),
    /// Apply pending storage migrations and exit (serve also does this on start).
    Migrate(StoreArgs),
    /// Inspect and steer feature flags on a running server: the emergency levers of a launch.
    #[command(subcommand)]
    Flags(FlagsCommand),
    /// Manage API keys on a running server.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage dashboard users directly in the store (works while the server is down).
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML file with settings; flags and LIFTOFF_* variables override it.
    #[arg(long, env = "LIFTOFF_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Fill an empty data directory with demo data before serving.
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
