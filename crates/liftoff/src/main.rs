use std::io::BufRead as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use liftoff::cli::{Cli, Command, ImportCommand, SecretsCommand, UsersCommand};
use liftoff::config::{LogFormat, Settings};
use liftoff::{remote, startup, telemetry, transfer};
use liftoff_core::auth::Actor;
use liftoff_core::secret::random_token;
use liftoff_core::users::{Role, UserService};

// An allocator that hands freed memory back to the OS, so RSS falls after a burst (glibc's
// per-thread arenas keep it); see BENCHMARKS.md "Public edge" for the comparison.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::resolve(args.settings, args.config.as_deref())?;
            telemetry::init(settings.log_format);
            startup::run(settings, args.demo).await
        }
        Command::Demo(args) => {
            let settings = Settings::resolve(args.settings, args.config.as_deref())?;
            telemetry::init(settings.log_format);
            announce(&settings);
            let built = startup::build(&settings).await?;
            liftoff::demo::seed(&built.state)
                .await
                .with_context(|| format!("demo with {}", settings.data.display()))?;
            built.state.store.close().await?;
            println!(
                "Demo data is in {}. Start the server with: liftoff serve --data {}",
                settings.data.display(),
                settings.data.display()
            );
            Ok(())
        }
        Command::Migrate(args) => {
            let settings = Settings::resolve(args.settings, args.config.as_deref())?;
            telemetry::init(settings.log_format);
            announce(&settings);
            let store = startup::open_store(&settings).await?;
            println!(
                "The {} state store is at schema version {}.",
                store.backend(),
                store.schema_version().await?
            );
            store.close().await?;
            Ok(())
        }
        Command::Seal(args) => {
            let settings = Settings::resolve(args.settings, args.config.as_deref())?;
            telemetry::init(settings.log_format);
            announce(&settings);
            // The stores only: sealing needs no services, keys or users.
            let stores = startup::open_stores(&settings).await?;
            let started = std::time::Instant::now();
            let sealed = liftoff_core::analytics::sealed::seal_finished_days(
                &*stores.events,
                chrono::Utc::now().timestamp_millis(),
            )
            .await?;
            let stored = stores.events.event_count().await?;
            stores.events.close_events().await?;
            stores.state.close().await?;
            println!(
                "Sealed {sealed} events in {:.1} s; {stored} events stored in all.",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Flags(cmd) => {
            telemetry::init(LogFormat::Text);
            remote::flags(cmd).await
        }
        Command::Keys(cmd) => {
            telemetry::init(LogFormat::Text);
            remote::keys(cmd).await
        }
        Command::Users(cmd) => users(cmd).await,
        Command::Secrets(SecretsCommand::Rotate(args)) => {
            let settings = Settings::resolve(args.settings, args.config.as_deref())?;
            telemetry::init(settings.log_format);
            announce(&settings);
            let rotated = liftoff::secrets::rotate(&settings).await?;
            print!("{}", rotated.report());
            Ok(())
        }
        Command::Import(ImportCommand::Events(args)) => {
            telemetry::init(LogFormat::Text);
            transfer::import_events(args).await
        }
        Command::Export(args) => {
            telemetry::init(LogFormat::Text);
            transfer::export(args).await
        }
        Command::Report(args) => liftoff::report::run(args).await,
        Command::Backup(args) => {
            let settings = Settings::resolve(args.store.settings, args.store.config.as_deref())?;
            telemetry::init(settings.log_format);
            announce(&settings);
            let done = liftoff::backup::backup(&settings, &args.output).await?;
            print!("{}", done.report());
            Ok(())
        }
        Command::Restore(args) => {
            telemetry::init(LogFormat::Text);
            let done = liftoff::backup::restore(&args.file, &args.data)?;
            print!("{}", done.report());
            Ok(())
        }
    }
}

/// On standard error, so output meant for scripts (user lists, reports) stays clean.
fn announce(settings: &Settings) {
    eprintln!("Using {}.", settings.describe_stores());
}

async fn users(cmd: UsersCommand) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::Create {
            username,
            role,
            password_stdin,
            store,
        } => {
            let settings = Settings::resolve(store.settings, store.config.as_deref())?;
            telemetry::init(settings.log_format);
            let role = Role::parse(&role).context("--role must be admin, editor or viewer")?;
            announce(&settings);
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (random_token(18), true)
            };
            let store = startup::open_store(&settings).await?;
            let users = UserService::new(store.clone(), chrono::Duration::hours(1));
            let user = users
                .create(&Actor::System, &username, &password, role)
                .await?;
            store.close().await?;
            println!("User {} created with role {}.", user.username, user.role);
            if generated {
                println!("Password (shown once):\n  {password}");
            }
            Ok(())
        }
        UsersCommand::List { store } => {
            let settings = Settings::resolve(store.settings, store.config.as_deref())?;
            telemetry::init(settings.log_format);
            announce(&settings);
            let store = startup::open_store(&settings).await?;
            for u in store.list_users().await? {
                println!(
                    "{:<24} {:<7} {}",
                    u.username,
                    u.role,
                    u.created_at.format("%Y-%m-%d")
                );
            }
            store.close().await?;
            Ok(())
        }
    }
}
