//! `linstor-controller`: the cluster's controller and REST API server.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};

// The controller churns through many short-lived allocations (node configurations, reports,
// listings); mimalloc returns that memory instead of letting it fragment.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::sync::Arc;

use strata_controller::config::{self, Overrides};
use strata_controller::leader;
use strata_store::Persistence;

#[derive(Parser, Debug)]
#[command(
    name = "linstor-controller",
    version,
    about = "Controller of the storage cluster; serves the LINSTOR REST API v1"
)]
struct Args {
    /// Log lines as text, or as one JSON object per line (with the request id of the REST
    /// call that caused them).
    #[arg(long, value_enum, default_value_t, env = "LINSTOR_LOG_FORMAT")]
    log_format: strata_net::service::LogFormat,
    /// Packaging aid: writes the manual page to DIR and exits.
    #[arg(long, hide = true, value_name = "DIR")]
    generate_man: Option<PathBuf>,
    /// Configuration file (LINSTOR's linstor.toml format).
    #[arg(long, env = "LINSTOR_CONFIG")]
    config: Option<PathBuf>,
    /// REST API port (default 3370).
    #[arg(long, env = "LINSTOR_REST_PORT")]
    port: Option<u16>,
    /// Address the REST API listens on (default all).
    #[arg(long, env = "LINSTOR_REST_LISTEN_ADDR")]
    listen_addr: Option<IpAddr>,
    /// Directory of the embedded database (default /var/lib/linstor).
    #[arg(long, env = "LINSTOR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database: a path or sqlite:/path (default <data-dir>/linstor.sqlite), or a
    /// PostgreSQL database, postgresql://user:password@host:5432/db.
    #[arg(long, env = "LINSTOR_DB")]
    db: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Writes the cluster's state from the configured database to FILE (for import-db).
    ExportDb { file: PathBuf },
    /// Loads FILE (written by export-db) into the configured database, which must be empty:
    /// moves a cluster from one database to another (stop the controller first).
    ImportDb { file: PathBuf },
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}

fn main() -> anyhow::Result<()> {
    // Few blocking threads: they run the serialised writes; each thread keeps its own heap.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    if strata_net::service::begin(args.log_format, args.generate_man.as_deref(), Args::command)? {
        return Ok(());
    }
    let named = args.config.is_some();
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG));
    let file = config::load(&path, named)?;
    let settings = config::resolve(
        &file,
        &Overrides {
            port: args.port,
            listen_addr: args.listen_addr,
            data_dir: args.data_dir,
            db: args.db.clone(),
        },
    )?;
    match &args.command {
        Some(Command::ExportDb { file }) => {
            let n = strata_controller::dbmove::export_db(&settings, file)?;
            println!(
                "exported {n} objects from {} to {}",
                settings.database.shown(),
                file.display()
            );
            return Ok(());
        }
        Some(Command::ImportDb { file }) => {
            let n = strata_controller::dbmove::import_db(&settings, file)?;
            println!(
                "imported {n} objects from {} into {}",
                file.display(),
                settings.database.shown()
            );
            return Ok(());
        }
        None => {}
    }
    serve(settings).await
}

/// Tells systemd (Type=notify) the controller serves.
fn ready(status: &str) {
    if let Err(e) = strata_net::service::notify_ready(status) {
        tracing::warn!("cannot tell the service manager the controller is ready: {e}");
    }
}

/// Runs the controller with `settings` until it is told to stop: it serves at once, or,
/// with etcd, forwards to the leader until it leads itself.
async fn serve(settings: config::Settings) -> anyhow::Result<()> {
    match strata_net::raise_fd_limit() {
        Ok(n) => tracing::debug!("open files limit {n}"),
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
    let listen = settings.listen;
    let https = settings.https.clone();
    let limits = settings.limits;
    // Read before anything starts: a bad certificate stops the controller at once.
    let tls = https
        .as_ref()
        .map(strata_controller::https::tls_source)
        .transpose()?;
    let started = std::time::Instant::now();
    let store: Arc<dyn Persistence> = Arc::from(strata_controller::open_store(&settings)?);
    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
    };
    let listener = bind(listen).await?;
    let secure_listener = match &https {
        Some(h) => Some(bind(h.listen).await?),
        None => None,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    // With etcd, the listeners serve the forwarder to the leader until this one leads.
    let switch = match store.etcd() {
        Some(_) => Some(leader::Switch::new(&settings.leadership.name)?),
        None => None,
    };
    let serve = |api: axum::Router| {
        // With HTTPS on, the plain port only redirects, unless it is for this host alone.
        let plain = match &https {
            Some(h) if !listen.ip().is_loopback() => {
                strata_controller::https::redirect(h.listen.port())
            }
            _ => api.clone(),
        };
        let plain = strata_net::serve(listener, plain, None, limits, until_stopped());
        let secure = strata_net_secure(secure_listener, tls, api, limits, until_stopped());
        async move {
            let (plain, secure) = tokio::join!(plain, secure);
            plain?;
            secure
        }
    };
    let mut lease = None;
    let (core, servers) = match &switch {
        Some(switch) => {
            let servers = tokio::spawn(serve(switch.router()));
            ready("serving; contending for leadership");
            let lead = settings.leadership.clone();
            tracing::info!(
                name = %lead.name,
                url = %lead.advertise_url,
                "contending for leadership in {}",
                settings.database.shown()
            );
            let id = tokio::select! {
                id = leader::campaign(&store, &lead, switch) => id,
                _ = shutdown_signal() => {
                    let _ = stop.send(true);
                    let _ = servers.await;
                    return Ok(());
                }
            };
            lease = Some(id);
            let s = store.clone();
            tokio::task::spawn_blocking(move || s.etcd().expect("an etcd store").recover())
                .await??;
            let core = strata_controller::start_on(Box::new(store.clone()), settings)?;
            leader::keep_leading(store.clone(), id, lead.lease);
            switch.lead(strata_controller::rest::router(core.clone()));
            (core, servers)
        }
        None => {
            let core = strata_controller::start_on(Box::new(store.clone()), settings)?;
            let servers = tokio::spawn(serve(strata_controller::rest::router(core.clone())));
            ready("serving");
            (core, servers)
        }
    };
    {
        let c = core.cluster();
        tracing::info!(
            nodes = c.nodes.len(),
            resource_definitions = c.rsc_dfns.len(),
            ms = started.elapsed().as_millis() as u64,
            https = https.as_ref().map(|h| h.listen.to_string()),
            "controller ready on {listen}"
        );
    }
    shutdown_signal().await;
    if let Some(id) = lease {
        // Another controller may lead at once instead of when the lease would expire.
        let s = store.clone();
        let _ =
            tokio::task::spawn_blocking(move || s.etcd().expect("an etcd store").revoke(id)).await;
    }
    let _ = stop.send(true);
    servers.await??;
    Ok(())
}

/// Serves `api` over TLS on `listener`, when HTTPS is configured.
async fn strata_net_secure(
    listener: Option<tokio::net::TcpListener>,
    tls: Option<strata_net::TlsSource>,
    api: axum::Router,
    limits: strata_net::Limits,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let (Some(listener), Some(tls)) = (listener, tls) {
        strata_net::serve(listener, api, Some(tls), limits, until).await?;
    }
    Ok(())
}
