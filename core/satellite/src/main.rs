//! `linstor-satellite`: the storage agent of a node.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use strata_exec::RealRunner;
use strata_satellite::config;
use strata_satellite::reconcile::RealProviders;
use strata_satellite::Satellite;
use strata_storage::detect::{detect, HostPaths};

#[derive(Parser, Debug)]
#[command(
    name = "linstor-satellite",
    version,
    about = "Storage agent of a node: makes the controller's desired state true with the node's own tools"
)]
struct Args {
    /// Log lines as text, or as one JSON object per line (with the request id of the REST
    /// call that caused them).
    #[arg(long, value_enum, default_value_t, env = "LINSTOR_LOG_FORMAT")]
    log_format: strata_net::service::LogFormat,
    /// Packaging aid: writes the manual page to DIR and exits.
    #[arg(long, hide = true, value_name = "DIR")]
    generate_man: Option<PathBuf>,
    /// Configuration file.
    #[arg(long, env = "LINSTOR_SATELLITE_CONFIG")]
    config: Option<PathBuf>,
    /// TCP port the controller connects to (default 3366).
    #[arg(long, env = "LINSTOR_SATELLITE_PORT")]
    port: Option<u16>,
    /// Address to listen on (default all).
    #[arg(long, env = "LINSTOR_SATELLITE_LISTEN_ADDR")]
    listen_addr: Option<IpAddr>,
    /// Serve Prometheus metrics in plain HTTP on this port (`[metrics] port`; off by
    /// default), on the agent's address.
    #[arg(long, env = "LINSTOR_SATELLITE_METRICS_PORT")]
    metrics_port: Option<u16>,
    /// Where the satellite keeps its record of what it created.
    #[arg(long, env = "LINSTOR_SATELLITE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// The one-time token to join the cluster with (the one `linstor node create` printed);
    /// without it, the satellite makes one in `<state dir>/tls/join-token`.
    #[arg(long, env = "LINSTOR_SATELLITE_JOIN_TOKEN", hide_env_values = true)]
    join_token: Option<String>,
    /// Directory of the DRBD `.res` files this satellite writes (default: `drbd.d` in the
    /// state directory).
    #[arg(long)]
    drbd_dir: Option<PathBuf>,
    /// Include file that pulls those `.res` files into the system's DRBD configuration.
    #[arg(long, default_value = "/etc/drbd.d/strata-resources.res")]
    drbd_include: PathBuf,
    /// Use this drbd.conf of our own (written by the satellite) instead of the system's;
    /// drbdadm is then run with `-c FILE`.
    #[arg(long)]
    drbd_config: Option<PathBuf>,
    /// Testing aid: report DRBD as available and run drbdadm with `-d` (print, do not run),
    /// so that configurations can be checked on a machine without the DRBD kernel module.
    #[arg(long, hide = true)]
    drbd_dry_run: bool,
    /// Testing aid: read DRBD events from this file (followed as it grows) instead of
    /// `drbdsetup events2`.
    #[arg(long, hide = true)]
    drbd_events_file: Option<PathBuf>,
}

/// Where the DRBD event watcher reads from; `None`: nowhere (a dry run without a file).
fn event_source(
    args: &Args,
    adm: &strata_drbd::adm::AdmConfig,
) -> Option<strata_satellite::watch::EventSource> {
    match &args.drbd_events_file {
        Some(file) => Some(strata_satellite::watch::EventSource {
            // `--pid`: tail ends with the satellite, even one killed outright.
            cmd: strata_exec::Cmd::new("tail")
                .arg(format!("--pid={}", std::process::id()))
                .arg("-n")
                .arg("+1")
                .arg("-F")
                .arg(file.to_string_lossy()),
            refresh: false,
        }),
        None if args.drbd_dry_run => None,
        None => Some(strata_satellite::watch::EventSource::drbdsetup(adm)),
    }
}

/// The DRBD layer of this node, when it can run DRBD (or pretends to, with `--drbd-dry-run`);
/// records in `caps` what it found either way.
fn drbd_layer(
    args: &Args,
    state_dir: &std::path::Path,
    runner: Arc<dyn strata_exec::CommandRunner>,
    caps: &mut strata_model::observed::Capabilities,
) -> anyhow::Result<Option<strata_satellite::drbd::DrbdDriver>> {
    let found = strata_drbd::version::detect(runner.as_ref(), std::path::Path::new("/proc/drbd"));
    if !strata_satellite::drbd::record_capability(&found, args.drbd_dry_run, caps) {
        return Ok(None);
    }
    if args.drbd_dry_run {
        tracing::warn!("DRBD dry run: drbdadm only prints what it would do");
    }
    let res_dir = args
        .drbd_dir
        .clone()
        .unwrap_or_else(|| state_dir.join("drbd.d"));
    let drbd84 = found.kernel.is_some_and(|k| k.major == 8);
    if drbd84 {
        tracing::info!("DRBD 8.4 module: resources have at most two nodes");
    }
    let mut adm = strata_drbd::adm::AdmConfig {
        dry_run: args.drbd_dry_run,
        drbd84,
        ..Default::default()
    };
    let include = match &args.drbd_config {
        Some(conf) => {
            std::fs::create_dir_all(&res_dir)?;
            let text = format!(
                "global {{ usage-count no; }}\n{}",
                strata_drbd::res::include_file(&res_dir)
            );
            std::fs::write(conf, text)?;
            adm.config_file = Some(conf.clone());
            None
        }
        None => Some(args.drbd_include.as_path()),
    };
    Ok(Some(strata_satellite::drbd::DrbdDriver::new(
        runner, adm, res_dir, include,
    )?))
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
    let mut settings = config::resolve(&file, args.port, args.listen_addr, args.state_dir.clone())?;
    std::fs::create_dir_all(&settings.state_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create state directory {}: {e}",
            settings.state_dir.display()
        )
    })?;

    if let Some(port) = args.metrics_port {
        settings.metrics = Some(std::net::SocketAddr::new(settings.listen.ip(), port));
    }
    let metrics = Arc::new(strata_satellite::metrics::SatelliteMetrics::default());
    // Every tool run is timed, and its failures counted.
    let runner: Arc<dyn strata_exec::CommandRunner> =
        Arc::new(strata_satellite::metrics::MeasuredRunner {
            inner: Arc::new(RealRunner),
            metrics: metrics.clone(),
        });
    let mut caps = {
        let r = runner.clone();
        tokio::task::spawn_blocking(move || detect(r.as_ref(), &HostPaths::default())).await?
    };
    let drbd = drbd_layer(&args, &settings.state_dir, runner.clone(), &mut caps)?;
    let source = drbd.as_ref().and_then(|d| event_source(&args, d.adm()));
    let watch = match (&drbd, source) {
        (Some(d), Some(source)) => Some(strata_satellite::watch::DrbdWatch::start(
            Arc::new(RealRunner),
            runner.clone(),
            d.adm().clone(),
            source,
        )),
        _ => None,
    };
    tracing::info!(
        providers = ?caps.providers,
        layers = ?caps.layers,
        "detected capabilities"
    );
    let factory = Arc::new(RealProviders { runner, drbd });
    let mut sat =
        Satellite::new(settings.state_dir.clone(), factory, caps)?.with_metrics(metrics.clone());
    if let Some(w) = watch {
        sat = sat.with_watch(w);
    }
    if settings.tls {
        let token = args.join_token.clone().or(settings.join_token.clone());
        let trust = strata_satellite::trust::Trust::load(&settings.state_dir, token)?;
        sat = sat.with_trust(Arc::new(trust));
    } else {
        tracing::warn!(
            "[netcom] type = \"plain\": anyone who reaches this port can configure this node"
        );
    }
    {
        let s = sat.clone();
        let report = tokio::task::spawn_blocking(move || s.converge_from_record()).await?;
        if let Some(r) = report {
            let volumes: usize = r.resources.iter().map(|r| r.volumes.len()).sum();
            tracing::info!(
                generation = r.applied_generation,
                volumes,
                "converged from the local record"
            );
        }
    }
    // Under systemd (Type=notify): ready once the node's own record is applied, so that
    // units ordered after this one (the guests) find their DRBD resources up.
    match strata_net::service::notify_ready("converged from the local record") {
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot tell the service manager the satellite is ready: {e}"),
    }
    if let Some(listen) = settings.metrics {
        tokio::spawn(async move {
            if let Err(e) = metrics.serve(listen, shutdown_signal()).await {
                tracing::error!("{e}");
            }
        });
    }
    sat.serve(settings.listen, shutdown_signal()).await
}
