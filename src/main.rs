//! The `iam-gateway` command: `serve` (the default), `migrate`, `export-schema`, `bootstrap`.

#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use iam_gateway::app::{self, AppState};
use iam_gateway::auth::token;
use iam_gateway::config::{Config, LogFormat, Overrides};
use iam_gateway::domain::{Actor, Name, Slug};
use iam_gateway::graphql;

#[derive(Parser)]
#[command(version, about = "Identity and access management over GraphQL")]
struct Cli {
    /// A TOML configuration file (settings as in the README's table, lowercase).
    #[arg(long, global = true, env = "IAM_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `database_url`.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default): migrates the database first.
    Serve {
        /// Overrides `listen`, e.g. 0.0.0.0:8080.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) and exit.
    ExportSchema,
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Create the first user and organization, for headless installs. Prints a one-time
    /// password and a session token.
    Bootstrap {
        #[arg(long)]
        email: String,
        /// Slug of the organization to create.
        #[arg(long)]
        org: String,
        /// Display name of the organization (defaults to the slug).
        #[arg(long)]
        org_name: Option<String>,
        /// Display name of the user (defaults to the part of the email before `@`).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check an organization's hash chain in the database: names the first modified,
    /// inserted, deleted or reordered event, or says how many events verify. Exits 1 when the
    /// chain is broken.
    Verify {
        /// The organization's slug.
        #[arg(long)]
        org: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::ExportSchema) = cli.command {
        print!("{}", graphql::sdl());
        return ExitCode::SUCCESS;
    }
    let listen = match &cli.command {
        Some(Command::Serve { listen }) => *listen,
        _ => None,
    };
    let overrides = Overrides {
        listen,
        database_url: cli.database_url.clone(),
    };
    let loaded = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("iam-gateway: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(loaded.config.log_format);
    for var in &loaded.unknown_vars {
        tracing::warn!(variable = %var, "unknown IAM_* environment variable (ignored)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iam-gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, loaded.config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("iam-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Option<Command>, config: Config) -> Result<(), String> {
    match command.unwrap_or(Command::Serve { listen: None }) {
        Command::Serve { .. } => {
            let listener = app::bind(config.listen).await.map_err(|e| e.to_string())?;
            let state = AppState::init(config).await.map_err(|e| e.to_string())?;
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "iam-gateway listening; GraphiQL at http://{addr}/graphql");
            }
            app::serve(listener, state, shutdown_signal())
                .await
                .map_err(|e| e.to_string())
        }
        Command::Migrate => {
            app::open_store(&config).await.map_err(|e| e.to_string())?;
            println!("migrations applied");
            Ok(())
        }
        Command::ExportSchema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Bootstrap {
            email,
            org,
            org_name,
            name,
        } => bootstrap(config, email, org, org_name, name).await,
        Command::Audit {
            command: AuditCommand::Verify { org },
        } => verify_audit(config, &org).await,
    }
}

/// `audit verify --org`: the chain's verdict on stdout; a broken chain is an error.
async fn verify_audit(config: Config, slug: &str) -> Result<(), String> {
    let store = app::open_store(&config).await.map_err(|e| e.to_string())?;
    let report = store.verify_audit_chain(slug).await.map_err(|e| match e {
        iam_gateway::store::StoreError::NotFound(_) => {
            format!("no organization has the slug `{slug}`")
        }
        other => format!("cannot read the audit trail: {other:?}"),
    })?;
    let v = &report.verdict;
    let older = match v.before_chain {
        0 => String::new(),
        n => format!(" ({n} older events were written before the chain began)"),
    };
    match &v.broken {
        None => {
            println!("{}: {} events verify{older}", report.slug, v.verified);
            Ok(())
        }
        Some(broken) => Err(format!(
            "{}: the audit chain is broken: {broken} ({} events before it verify)",
            report.slug, v.verified
        )),
    }
}

async fn bootstrap(
    config: Config,
    email: String,
    org: String,
    org_name: Option<String>,
    name: Option<String>,
) -> Result<(), String> {
    let slug = Slug::parse("org", &org).map_err(|e| e.message)?;
    let org_name =
        Name::parse("org-name", org_name.as_deref().unwrap_or(&org)).map_err(|e| e.message)?;
    let user_name = name.unwrap_or_else(|| email.split('@').next().unwrap_or("admin").to_owned());
    let state = AppState::init(config).await.map_err(|e| e.to_string())?;
    let actor = Actor {
        user_agent: Some("iam-gateway bootstrap".to_owned()),
        ..Actor::default()
    };
    let password = token::random_password().map_err(|e| format!("no randomness: {e}"))?;
    let auth = &state.services.auth;
    let user = auth
        .create_account(&email, &user_name, &password, None, &actor)
        .await
        .map_err(|e| format!("cannot create the user: {}", describe(e)))?;
    let actor = actor.as_person(user.id, &user.email);
    let created = state
        .services
        .store()
        .create_organization(user.id, &slug, &org_name, &actor)
        .await
        .map_err(|e| format!("cannot create the organization: {e:?}"))?;
    let signed_in = auth
        .open_session(user.clone(), "bootstrap", "auth.bootstrap", &actor)
        .await
        .map_err(|e| format!("cannot open a session: {}", describe(e)))?;
    println!("user:          {} ({})", user.email, user.id);
    println!("organization:  {} ({})", created.slug, created.id);
    println!("password:      {password}");
    println!("session token: {}", signed_in.token);
    println!("Both are shown once. Sign in and change the password soon.");
    Ok(())
}

fn describe(e: iam_gateway::auth::AuthError) -> String {
    use iam_gateway::auth::AuthError;
    match e {
        AuthError::Invalid(i) => i.message,
        AuthError::Store(iam_gateway::store::StoreError::Conflict(m)) => m,
        other => format!("{other:?}"),
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests under way");
}
