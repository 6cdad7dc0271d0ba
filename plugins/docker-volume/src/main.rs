//! `linstor-docker-volume`: serves the Docker volume plugin protocol on a unix socket.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use strata_docker_volume::{config, driver::Driver, server};

#[derive(Parser, Debug)]
#[command(
    name = "linstor-docker-volume",
    version,
    about = "Docker volume plugin: volumes replicated by the cluster"
)]
struct Args {
    /// Configuration file (default /etc/linstor/docker-volume.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Controllers, comma separated.
    #[arg(long, env = "LS_CONTROLLERS")]
    controllers: Option<String>,
    /// This node's name in the cluster (default: the host name).
    #[arg(long)]
    node: Option<String>,
    /// The plugin socket dockerd finds (default /run/docker/plugins/linstor.sock), or
    /// tcp://ADDR:PORT for a plugin that dockerd reaches through a .spec file.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Where the plugin keeps its state and mounts volumes.
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let named = args.config.is_some();
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG));
    let file = config::load(&path, named)?;
    let settings = config::resolve(
        &file,
        &config::Overrides {
            controllers: args.controllers.clone(),
            node: args.node.clone(),
            socket: args.socket.clone(),
            state_dir: args.state_dir.clone(),
            auth_token: std::env::var("LS_AUTH_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        },
    )?;
    let socket = settings.socket.clone();
    tracing::info!(
        socket = %socket.display(),
        node = %settings.node,
        controllers = ?settings.controllers,
        "serving the Docker volume plugin protocol"
    );
    let driver = Arc::new(Driver::new(settings, Arc::new(strata_exec::RealRunner))?);
    let app = server::router(driver);
    // `tcp://ADDR:PORT` serves on TCP, as a plugin named by a .spec file of dockerd.
    if let Some(addr) = socket.to_str().and_then(|s| s.strip_prefix("tcp://")) {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown())
            .await?;
        return Ok(());
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket left by an earlier run would make the bind fail.
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", socket.display()))?;
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await;
    let _ = std::fs::remove_file(&socket);
    served?;
    Ok(())
}
