//! `strata-vmorder`: start-up ordering of the controller VM and the guests on cluster storage.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{CommandFactory, Parser, Subcommand};
use strata_vmorder::{config, daemon, drbd::Drbd, guest, hypervisor, state};

#[derive(Parser, Debug)]
#[command(
    name = "strata-vmorder",
    version,
    about = "Start-up ordering on a hypervisor host: one host starts the controller VM (its DRBD promotion is the lock), guests on cluster storage wait for the controller",
    long_about = "Start-up ordering on a hypervisor host whose cluster's controller runs in a VM on the cluster's own storage.\n\n\
`run` (the service): exactly one host promotes the controller VM's DRBD resources and starts the VM; the others stand by and take over when it dies. Every guest listed in the settings gets a transient systemd unit that starts it: at once when all its volumes are up here, otherwise after strata-controller-ready.target, which systemd reaches once the controller answers /health.\n\n\
`status` shows what this host decided; `journalctl -u strata-vmorder` has every decision."
)]
struct Args {
    /// Settings file.
    #[arg(long, global = true, env = "STRATA_VMORDER_CONFIG", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// Log lines as text, or as one JSON object per line.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "LINSTOR_LOG_FORMAT"
    )]
    log_format: strata_net::service::LogFormat,
    /// Packaging aid: writes the manual page to DIR and exits.
    #[arg(long, hide = true, value_name = "DIR")]
    generate_man: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the ordering (what the strata-vmorder service runs).
    Run,
    /// Shows what this host decided: the controller VM's role here, each guest's plan and result.
    Status {
        /// The status file as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Starts one guest once its volumes are usable here (what its unit runs).
    StartGuest {
        /// The guest's name as in the settings.
        name: String,
    },
    /// Waits until the controller answers /health (what strata-controller-health.service runs).
    WaitHealth,
}

fn status(cfg_path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    // The status needs only the state directory: a settings file that no longer parses still
    // shows what the daemon last decided.
    let dir = config::Config::load(cfg_path)
        .map(|c| c.state_dir)
        .unwrap_or_else(|_| PathBuf::from(config::DEFAULT_STATE_DIR));
    let st = state::read(&dir).map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        let alive = std::path::Path::new(&format!("/proc/{}", st.pid)).exists();
        print!("{}", state::render(&st, alive));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if strata_net::service::begin(args.log_format, args.generate_man.as_deref(), Args::command)? {
        return Ok(());
    }
    let command = args.command.unwrap_or(Command::Run);
    if let Command::Status { json } = command {
        return status(&args.config, json);
    }
    let cfg = config::Config::load(&args.config)?;
    match command {
        Command::Run => {
            let hv: Arc<dyn hypervisor::Hypervisor> =
                hypervisor::from_config(&cfg.hypervisor).into();
            let drbd = Drbd::system(cfg.drbd_config.clone());
            daemon::run(cfg, hv, drbd).await
        }
        Command::StartGuest { name } => {
            let hv = hypervisor::from_config(&cfg.hypervisor);
            let drbd = Drbd::system(cfg.drbd_config.clone());
            guest::start(&cfg, &name, hv.as_ref(), &drbd)
                .await
                .map_err(|e| anyhow::anyhow!("guest {name}: {e}"))
        }
        Command::WaitHealth => guest::wait_health(&cfg).await.map_err(anyhow::Error::msg),
        Command::Status { .. } => unreachable!("answered above"),
    }
}
