//! The `harrier` command line: parse arguments, load settings, run the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use harrier::config::{self, Config, LoadOptions};
use harrier::Server;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// A fast, standalone HTTP server. `harrier DIR` serves DIR on http://127.0.0.1:8080.
#[derive(Parser)]
#[command(
    name = "harrier",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve APP_DIR (the default command).
    Serve(ServeArgs),
    /// Validate the settings, print the effective configuration, exit 0 (valid) or 1.
    Check(CheckArgs),
    /// Write a self-signed development certificate (cert.pem, key.pem) for localhost,
    /// 127.0.0.1, ::1 and the given names.
    DevCert(DevCertArgs),
    /// Hash a password for a basic_auth user: reads it from stdin (one line), prints
    /// an argon2id hash (bcrypt with --bcrypt) to paste into the settings file.
    HashPassword(HashPasswordArgs),
}

#[derive(Args)]
struct DevCertArgs {
    /// Directory to write cert.pem and key.pem into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
    /// Another name (DNS name or IP address) the certificate is valid for (repeatable).
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
}

#[derive(Args)]
struct HashPasswordArgs {
    /// Print a bcrypt hash (cost 12) instead of argon2id.
    #[arg(long)]
    bcrypt: bool,
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    /// The app directory to serve (default: the current directory).
    app_dir: Option<PathBuf>,
    /// Settings file (default: $HARRIER_CONFIG, else APP_DIR/harrier.toml if it exists).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen on URL instead of the configured endpoints (repeatable; port 0 picks a free port).
    #[arg(short = 'l', long = "listen", value_name = "URL")]
    listen: Vec<String>,
    /// Port for the endpoint (when exactly one TCP endpoint is configured).
    #[arg(long, value_name = "N")]
    port: Option<u16>,
}

#[derive(Args)]
struct CheckArgs {
    /// The app directory (default: the current directory).
    app_dir: Option<PathBuf>,
    /// Settings file (default: $HARRIER_CONFIG, else APP_DIR/harrier.toml if it exists).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check(args)) => check(args),
        Some(Command::DevCert(args)) => dev_cert(args),
        Some(Command::HashPassword(args)) => hash_password(args),
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    }
}

fn load_options(
    app_dir: Option<PathBuf>,
    config: Option<PathBuf>,
    listen: Vec<String>,
    port: Option<u16>,
) -> LoadOptions {
    LoadOptions {
        app_dir: app_dir.unwrap_or_else(|| PathBuf::from(".")),
        config_file: config,
        env: std::env::vars().collect(),
        listen,
        port,
    }
}

/// Loads settings, printing the error and choosing the exit code on failure.
fn load(opts: &LoadOptions) -> Result<Config, ExitCode> {
    config::load(opts).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(if e.is_usage() { 2 } else { 1 })
    })
}

fn check(args: CheckArgs) -> ExitCode {
    let opts = load_options(args.app_dir, args.config, Vec::new(), None);
    match load(&opts) {
        Ok(cfg) => {
            print!("{}", cfg.to_toml());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn dev_cert(args: DevCertArgs) -> ExitCode {
    let written = harrier::tls::dev_cert::generate(&args.hosts).and_then(|cert| {
        harrier::tls::dev_cert::write(&cert, &args.out).map(|paths| (cert.names, paths))
    });
    match written {
        Ok((names, (cert, key))) => {
            println!("certificate: {}", cert.display());
            println!("key:         {}", key.display());
            println!("valid for:   {}", names.join(", "));
            println!(
                "use it with: certificate = {{ path = \"{}\", key = \"{}\" }}",
                cert.display(),
                key.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Reads one line from stdin (the trailing newline is not part of the password) and prints
/// its hash; an empty password is refused.
fn hash_password(args: HashPasswordArgs) -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("error: cannot read the password from stdin: {e}");
        return ExitCode::from(1);
    }
    let password = line
        .strip_suffix('\n')
        .map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
    if password.is_empty() {
        eprintln!(
            "error: empty password: type it on stdin, e.g. `echo 's3cret' | harrier hash-password`"
        );
        return ExitCode::from(1);
    }
    match harrier::middleware::basic_auth::hash_password(password, args.bcrypt) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let opts = load_options(args.app_dir, args.config, args.listen, args.port);
    let cfg = match load(&opts) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    init_logging(&cfg);
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cfg: Config) -> anyhow::Result<()> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if cfg.server.worker_threads > 0 {
        rt.worker_threads(cfg.server.worker_threads);
    }
    let rt = rt
        .on_thread_park(harrier::access_log::output::flush_on_park)
        .on_thread_stop(harrier::access_log::output::flush_on_stop)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let bound = Server::from_config(cfg).bind().await?;
        // Signal handlers first: scripts may signal as soon as they read the URLs.
        let shutdown = harrier::signals::shutdown();
        let mut reload = harrier::signals::Reload::new();
        for url in bound.urls() {
            eprintln!("listening on {url}");
        }
        let reload_handle = bound.reload_handle();
        tokio::spawn(async move {
            loop {
                reload.recv().await;
                tracing::warn!(
                    "SIGHUP: reloading certificates; other settings need a restart to change"
                );
                reload_handle.notify_one();
            }
        });
        bound.serve(shutdown).await;
        Ok(())
    })
}

/// Diagnostics go to stderr through `tracing`; the access log goes to stdout, bare, batched
/// per worker thread (`access_log::output`).
fn init_logging(cfg: &Config) {
    let diagnostics =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log.level));
    let _ = tracing_subscriber::registry()
        .with(diagnostics)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init();
    harrier::access_log::output::to_stdout();
}
