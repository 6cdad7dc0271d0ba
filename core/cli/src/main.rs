//! `linstor`: the command-line client of the LINSTOR REST API, with the upstream client's command
//! tree, aliases, tables, reply printing and exit codes.
//!
//! Global options go before the command (`linstor -m --controllers a,b node list`); a command
//! line without command starts the interactive mode.

mod auth;
mod client_conf;
mod common;
mod connection;
mod context;
mod controller;
mod drbd_opts;
mod error;
mod error_reports;
mod node;
mod output;
mod repl;
mod resource;
mod rsc_dfn;
mod rsc_grp;
mod snapshot;
mod storpool;
mod sync;
mod table;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use context::{err, out, Ctx, Settings};
use error::CliError;
use output::Style;

/// The REST port a controller listens on when none is given.
const DEFAULT_CONTROLLER: &str = "localhost:3370";
/// Seconds to wait for an answer, as upstream.
const DEFAULT_TIMEOUT: u64 = 300;

#[derive(Parser, Debug, Clone, PartialEq)]
#[command(
    name = "linstor",
    about = "Manage a LINSTOR cluster: nodes, storage pools, resources and their definitions and groups.",
    disable_version_flag = true,
    after_help = "Without a command, the client reads commands from standard input (interactive mode)."
)]
pub struct Cli {
    /// Print the client version and exit.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Do not use colours in output.
    #[arg(long = "no-color")]
    pub no_color: bool,
    /// Do not use UTF-8 characters in output (tables).
    #[arg(long = "no-utf8")]
    pub no_utf8: bool,
    /// Treat warnings from the controller as errors (non-zero exit code).
    #[arg(long = "warn-as-error")]
    pub warn_as_error: bool,
    /// Comma separated list of controllers (host, host:port or http://host:port); the ones in
    /// LS_CONTROLLERS are tried first.
    #[arg(long)]
    pub controllers: Option<String>,
    /// Print the controller's JSON instead of tables and messages.
    #[arg(short = 'm', long = "machine-readable")]
    pub machine_readable: bool,
    /// Machine-readable output format.
    #[arg(long = "output-version", env = "LS_OUTPUT_VERSION", value_parser = ["v0", "v1"])]
    pub output_version: Option<String>,
    /// Output as tables and messages (the default), or the controller's data as JSON (as
    /// -m) or YAML; accepted after the command too (`linstor resource list --format yaml`).
    #[arg(long, global = true, value_enum)]
    pub format: Option<context::Format>,
    /// Print more details.
    #[arg(short = 'V', long)]
    pub verbose: bool,
    /// Connection and command timeout in seconds (default 300).
    #[arg(short = 't', long)]
    pub timeout: Option<u64>,
    /// Do not read the [global] section of linstor-client.conf.
    #[arg(long = "disable-config")]
    pub disable_config: bool,
    /// PEM certificate to show to a controller that requires client certificates.
    #[arg(long, value_name = "FILE")]
    pub certfile: Option<PathBuf>,
    /// PEM private key of --certfile.
    #[arg(long, value_name = "FILE")]
    pub keyfile: Option<PathBuf>,
    /// PEM CA certificate(s) the controller's HTTPS certificate must chain to.
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Send the auth token over plain HTTP too.
    #[arg(long = "allow-insecure-auth")]
    pub allow_insecure_auth: bool,
    /// Token for a controller with token authentication (else LS_AUTH_TOKEN, the
    /// configuration's auth-token, or /var/lib/linstor.d/auth.json).
    #[arg(long = "auth-token", value_name = "TOKEN")]
    pub auth_token: Option<String>,
    /// File whose first line is the auth token.
    #[arg(long = "auth-token-file", value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Command {
    /// Node subcommands.
    #[command(visible_alias = "n", subcommand)]
    Node(node::NodeCmd),
    /// Storage pool subcommands.
    #[command(name = "storage-pool", visible_alias = "sp", subcommand)]
    StoragePool(storpool::SpCmd),
    /// Storage pool definition subcommands.
    #[command(name = "storage-pool-definition", visible_alias = "spd", subcommand)]
    StoragePoolDfn(storpool::SpdCmd),
    /// Resource definition subcommands.
    #[command(name = "resource-definition", visible_alias = "rd", subcommand)]
    ResourceDfn(rsc_dfn::RdCmd),
    /// Volume definition subcommands.
    #[command(name = "volume-definition", visible_alias = "vd", subcommand)]
    VolumeDfn(rsc_dfn::VdCmd),
    /// Resource subcommands.
    #[command(visible_alias = "r", subcommand)]
    Resource(resource::ResourceCmd),
    /// Volume subcommands.
    #[command(visible_alias = "v", subcommand)]
    Volume(resource::VolumeCmd),
    /// Resource group subcommands.
    #[command(name = "resource-group", visible_alias = "rg", subcommand)]
    ResourceGrp(rsc_grp::RgCmd),
    /// Volume group subcommands.
    #[command(name = "volume-group", visible_alias = "vg", subcommand)]
    VolumeGrp(rsc_grp::VgCmd),
    /// Resource connection subcommands.
    #[command(name = "resource-connection", visible_alias = "rc", subcommand)]
    ResourceConnection(connection::RcCmd),
    /// Node connection subcommands.
    #[command(name = "node-connection", visible_alias = "nc", subcommand)]
    NodeConnection(connection::NcCmd),
    /// Snapshot subcommands.
    #[command(visible_alias = "s", subcommand)]
    Snapshot(snapshot::SnapshotCmd),
    /// Controller subcommands.
    #[command(visible_alias = "c", subcommand)]
    Controller(controller::ControllerCmd),
    /// Error report subcommands.
    #[command(name = "error-reports", visible_alias = "err", subcommand)]
    ErrorReports(error_reports::ErrCmd),
    /// Starts the interactive mode.
    Interactive,
    /// Lists the available commands.
    #[command(name = "list-commands", visible_aliases = ["commands", "list"])]
    ListCommands,
    /// Leaves the interactive mode.
    #[command(visible_alias = "quit")]
    Exit,
}

/// The command tree, with long options abbreviable as argparse allows (`--node` for
/// `--node-type`).
fn command() -> clap::Command {
    fn infer(cmd: clap::Command) -> clap::Command {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        let mut cmd = cmd.infer_long_args(true);
        for n in names {
            cmd = cmd.mut_subcommand(n, infer);
        }
        cmd
    }
    infer(Cli::command())
}

/// Parses one command line (the first word is the program name).
pub fn parse_line<S: AsRef<str>>(args: &[S]) -> Result<Cli, clap::Error> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let matches = command()
        .try_get_matches_from(&args)
        .map_err(|e| negative_value_error(e, &args))?;
    Cli::from_arg_matches(&matches)
}

/// `-5G` looks like an option to the parser; say what is really wrong with it.
fn negative_value_error(e: clap::Error, args: &[&str]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return e;
    }
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    if !bad.starts_with('-') || !bad[1..].starts_with(|c: char| c.is_ascii_digit()) {
        return e;
    }
    let word = args
        .iter()
        .find(|a| a.starts_with(bad.as_str()))
        .copied()
        .unwrap_or(bad);
    clap::Error::raw(
        ErrorKind::InvalidValue,
        format!("'{word}' is negative; sizes and counts must be greater than zero\n"),
    )
}

/// `LS_CLIENT_<OPTION>=<value>` variables become `--<option> <value>` in front of the command
/// line, as upstream does.
pub fn env_args(vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let mut out = Vec::new();
    let mut vars: Vec<(String, String)> = vars.into_iter().collect();
    vars.sort();
    for (k, v) in vars {
        if let Some(opt) = k.strip_prefix("LS_CLIENT_") {
            if opt.is_empty() {
                continue;
            }
            out.push(format!("--{}", opt.to_ascii_lowercase().replace('_', "-")));
            if !v.is_empty() {
                out.push(v);
            }
        }
    }
    out
}

/// The controllers to try, in order: those in `LS_CONTROLLERS`, then `--controllers` (which
/// defaults to localhost).
pub fn controller_list(env: Option<&str>, arg: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let all = format!(
        "{},{}",
        env.unwrap_or(""),
        arg.unwrap_or(DEFAULT_CONTROLLER)
    );
    for c in all.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        if !out.iter().any(|x| x == c) {
            out.push(c.to_string());
        }
    }
    out
}

fn locale_is_utf8() -> bool {
    for var in ["LC_ALL", "LC_CTYPE", "LANG"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                let l = v.to_ascii_lowercase();
                return l.contains("utf-8") || l.contains("utf8");
            }
        }
    }
    false
}

/// The settings of a command line; `base` holds what the interactive session was started
/// with, `conf` the `[global]` entries of linstor-client.conf.
fn settings(
    cli: &Cli,
    base: Option<&Cli>,
    conf: &std::collections::BTreeMap<String, String>,
) -> Result<Settings, CliError> {
    let tty = std::io::stdout().is_terminal();
    let format = cli.format.or_else(|| base.and_then(|b| b.format));
    let conf_flag = |k: &str| {
        conf.get(k)
            .is_some_and(|v| v.is_empty() || v.eq_ignore_ascii_case("true") || v == "1")
    };
    let flag = |f: fn(&Cli) -> bool| f(cli) || base.is_some_and(f);
    let opt = |f: fn(&Cli) -> Option<PathBuf>, key: &str| {
        f(cli)
            .or_else(|| base.and_then(f))
            .or_else(|| conf.get(key).filter(|v| !v.is_empty()).map(PathBuf::from))
    };
    let controllers_arg = cli
        .controllers
        .clone()
        .or_else(|| base.and_then(|b| b.controllers.clone()))
        .or_else(|| conf.get("controllers").cloned());
    let env = std::env::var("LS_CONTROLLERS").ok();
    let token = match (
        cli.auth_token
            .clone()
            .or_else(|| base.and_then(|b| b.auth_token.clone())),
        opt(|c| c.auth_token_file.clone(), "auth-token-file"),
    ) {
        (Some(t), _) => Some(t),
        (None, Some(file)) => Some(
            client_conf::token_file(&file).map_err(|e| CliError::usage(format!("Error: {e}")))?,
        ),
        (None, None) => std::env::var(client_conf::TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty())
            .or_else(|| conf.get("auth-token").cloned())
            .or_else(|| client_conf::auth_json_token(std::path::Path::new(client_conf::AUTH_JSON))),
    };
    let timeout = cli
        .timeout
        .or_else(|| base.and_then(|b| b.timeout))
        .or_else(|| conf.get("timeout").and_then(|t| t.parse().ok()))
        .unwrap_or(DEFAULT_TIMEOUT);
    Ok(Settings {
        controllers: controller_list(env.as_deref(), controllers_arg.as_deref()),
        timeout: Duration::from_secs(timeout.max(1)),
        machine: flag(|c| c.machine_readable)
            || matches!(format, Some(context::Format::Json | context::Format::Yaml)),
        yaml: format == Some(context::Format::Yaml),
        style: Style {
            utf8: !flag(|c| c.no_utf8) && !conf_flag("no-utf8") && tty && locale_is_utf8(),
            color: !flag(|c| c.no_color) && !conf_flag("no-color") && tty,
        },
        warn_as_error: flag(|c| c.warn_as_error),
        security: strata_client::Security {
            token,
            ca_file: opt(|c| c.cafile.clone(), "cafile"),
            cert_file: opt(|c| c.certfile.clone(), "certfile"),
            key_file: opt(|c| c.keyfile.clone(), "keyfile"),
            allow_insecure_auth: flag(|c| c.allow_insecure_auth)
                || conf_flag("allow-insecure-auth"),
        },
    })
}

/// The `[global]` entries of linstor-client.conf, unless the command line says not to.
fn conf_of(cli: &Cli) -> std::collections::BTreeMap<String, String> {
    if cli.disable_config {
        Default::default()
    } else {
        client_conf::global()
    }
}

/// The commands and their aliases, as `list-commands` prints them.
fn commands_text() -> String {
    let cmd = Cli::command();
    let mut lines: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help" && s.get_name() != "exit")
        .map(|s| {
            let aliases: Vec<&str> = s.get_visible_aliases().collect();
            if aliases.is_empty() {
                format!("- {}", s.get_name())
            } else {
                format!("- {} ({})", s.get_name(), aliases.join(", "))
            }
        })
        .collect();
    lines.sort();
    format!(
        "Use \"help <command>\" to get help for a specific command.\n\nAvailable commands:\n{}\n",
        lines.join("\n")
    )
}

async fn execute(ctx: &mut Ctx, cmd: Command) -> Result<i32, CliError> {
    match cmd {
        Command::Node(c) => node::run(ctx, c).await,
        Command::StoragePool(c) => storpool::run(ctx, c).await,
        Command::StoragePoolDfn(c) => storpool::run_spd(ctx, c).await,
        Command::ResourceDfn(c) => rsc_dfn::run_rd(ctx, c).await,
        Command::VolumeDfn(c) => rsc_dfn::run_vd(ctx, c).await,
        Command::Resource(c) => resource::run(ctx, c).await,
        Command::Volume(c) => resource::run_volume(ctx, c).await,
        Command::ResourceGrp(c) => rsc_grp::run_rg(ctx, c).await,
        Command::VolumeGrp(c) => rsc_grp::run_vg(ctx, c).await,
        Command::ResourceConnection(c) => connection::run_rc(ctx, c).await,
        Command::NodeConnection(c) => connection::run_nc(ctx, c).await,
        Command::Controller(c) => controller::run(ctx, c).await,
        Command::Snapshot(c) => snapshot::run(ctx, c).await,
        Command::ErrorReports(c) => error_reports::run(ctx, c).await,
        Command::ListCommands => {
            out(&commands_text());
            Ok(error::OK)
        }
        Command::Interactive | Command::Exit => Ok(error::OK),
    }
}

/// Runs one parsed command and turns its result into an exit code, printing the error.
fn run_command(rt: &tokio::runtime::Runtime, ctx: &mut Ctx, cli: &Cli, cmd: Command) -> i32 {
    if ctx.settings.machine && cli.output_version.as_deref() == Some("v0") {
        err("Error: machine-readable output version v0 is not supported by this client; use v1");
        return error::OPTION_NOT_SUPPORTED;
    }
    match rt.block_on(execute(ctx, cmd)) {
        Ok(code) => code,
        Err(e) => {
            if let Some(m) = &e.message {
                err(m);
            }
            e.code
        }
    }
}

fn version_text() -> String {
    format!("linstor-client {}; strata-cli\n", env!("CARGO_PKG_VERSION"))
}

fn print_clap_error(e: &clap::Error) -> i32 {
    let _ = e.print();
    e.exit_code()
}

fn interactive(rt: &tokio::runtime::Runtime, base: &Cli) -> i32 {
    out(&commands_text());
    out("\n");
    let conf = conf_of(base);
    let mut ctx = match settings(base, None, &conf) {
        Ok(s) => Ctx::new(s),
        Err(e) => {
            if let Some(m) = &e.message {
                err(m);
            }
            return e.code;
        }
    };
    let mut lines = repl::Lines::new(command());
    let extra = env_args(std::env::vars());
    loop {
        let Some(line) = lines.next() else {
            out("\n");
            return error::OK;
        };
        let mut words = match shell_words::split(line.trim()) {
            Ok(w) => w,
            Err(e) => {
                err(&format!("Error: cannot split the command line: {e}"));
                continue;
            }
        };
        if words.first().map(String::as_str) == Some("linstor") {
            words.remove(0);
        }
        if words.is_empty() {
            continue;
        }
        let mut argv = vec!["linstor".to_string()];
        argv.extend(extra.iter().cloned());
        argv.extend(words);
        let cli = match parse_line(&argv) {
            Ok(c) => c,
            Err(e) => {
                print_clap_error(&e);
                continue;
            }
        };
        if cli.version {
            out(&version_text());
            continue;
        }
        match cli.command.clone() {
            Some(Command::Exit) => return error::OK,
            Some(Command::Interactive) => err("The client is already running in interactive mode"),
            None => out(&commands_text()),
            Some(cmd) => match settings(&cli, Some(base), &conf) {
                Ok(s) => {
                    ctx.reset(s);
                    run_command(rt, &mut ctx, &cli, cmd);
                }
                Err(e) => err(e.message.as_deref().unwrap_or("Error")),
            },
        }
        out("\n");
    }
}

/// Packaging aids, before anything else is parsed: `linstor --generate-completion SHELL`
/// prints the completion script for SHELL (bash, zsh, fish, elvish, powershell);
/// `linstor --generate-man DIR` writes the manual pages: `linstor.1` and one per command
/// (`linstor-resource-definition.1`, ...).
fn generate(args: &[String]) -> Option<i32> {
    match args.get(1).map(String::as_str) {
        Some("--generate-completion") => {
            let Some(shell) = args
                .get(2)
                .and_then(|s| s.parse::<clap_complete::Shell>().ok())
            else {
                err("Error: --generate-completion takes a shell: bash, zsh, fish, elvish or powershell");
                return Some(error::ARGPARSE_ERROR);
            };
            clap_complete::generate(shell, &mut command(), "linstor", &mut std::io::stdout());
            Some(error::OK)
        }
        Some("--generate-man") => {
            let Some(dir) = args.get(2).map(std::path::PathBuf::from) else {
                err("Error: --generate-man takes the directory to write the pages to");
                return Some(error::ARGPARSE_ERROR);
            };
            match write_man_pages(&dir) {
                Ok(n) => {
                    out(&format!("{n} manual pages written to {}", dir.display()));
                    Some(error::OK)
                }
                Err(e) => {
                    err(&format!(
                        "Error: cannot write the manual pages to {}: {e}",
                        dir.display()
                    ));
                    Some(error::UNKNOWN_ERROR)
                }
            }
        }
        _ => None,
    }
}

/// `linstor.1` and `linstor-<command>.1` for every command; answers how many.
fn write_man_pages(dir: &std::path::Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let top = command();
    let mut pages = vec![("linstor".to_string(), top.clone())];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("linstor-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, cmd) in &pages {
        let mut text = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut text)?;
        std::fs::write(dir.join(format!("{name}.1")), text)?;
    }
    Ok(pages.len())
}

fn real_main() -> i32 {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(code) = generate(&args) {
        return code;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            err(&format!("Error: cannot start the runtime: {e}"));
            return error::UNKNOWN_ERROR;
        }
    };
    let mut argv = vec!["linstor".to_string()];
    argv.extend(env_args(std::env::vars()));
    argv.extend(args.into_iter().skip(1));
    let cli = match parse_line(&argv) {
        Ok(c) => c,
        Err(e) => return print_clap_error(&e),
    };
    if cli.version {
        out(&version_text());
        return error::OK;
    }
    match cli.command.clone() {
        None | Some(Command::Interactive) => interactive(&rt, &cli),
        Some(Command::Exit) => error::OK,
        Some(cmd) => match settings(&cli, None, &conf_of(&cli)) {
            Ok(s) => run_command(&rt, &mut Ctx::new(s), &cli, cmd),
            Err(e) => {
                if let Some(m) = &e.message {
                    err(m);
                }
                e.code
            }
        },
    }
}

fn main() {
    std::process::exit(real_main());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_tree_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn global_options() {
        let cli = parse_line(&[
            "linstor",
            "-m",
            "--output-version",
            "v1",
            "--controllers",
            "a,b:3371",
            "--no-utf8",
            "--no-color",
            "-t",
            "5",
            "node",
            "list",
        ])
        .unwrap();
        assert!(cli.machine_readable && cli.no_utf8 && cli.no_color);
        assert_eq!(cli.output_version.as_deref(), Some("v1"));
        assert_eq!(cli.timeout, Some(5));
        let s = settings(&cli, None, &Default::default()).unwrap();
        assert!(s.machine);
        assert_eq!(s.style, Style::PLAIN);
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert!(matches!(
            cli.command,
            Some(Command::Node(node::NodeCmd::List(_)))
        ));
        assert!(parse_line(&["linstor", "--output-version", "v2", "n", "l"]).is_err());
    }

    #[test]
    fn controllers_from_env_and_option() {
        assert_eq!(controller_list(None, None), vec!["localhost:3370"]);
        assert_eq!(
            controller_list(Some("c1,c2:3370"), None),
            vec!["c1", "c2:3370", "localhost:3370"]
        );
        assert_eq!(controller_list(Some(""), Some("x,y")), vec!["x", "y"]);
        assert_eq!(controller_list(Some("x"), Some("x,y")), vec!["x", "y"]);
    }

    #[test]
    fn env_options() {
        let vars = vec![
            ("LS_CLIENT_NO_COLOR".to_string(), String::new()),
            ("LS_CLIENT_CONTROLLERS".to_string(), "ctl".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        assert_eq!(env_args(vars), vec!["--controllers", "ctl", "--no-color"]);
    }

    #[test]
    fn aliases_and_abbreviations() {
        for line in [
            vec!["linstor", "n", "l"],
            vec!["linstor", "node", "list"],
            vec!["linstor", "sp", "l"],
            vec!["linstor", "spd", "l"],
            vec!["linstor", "rd", "l"],
            vec!["linstor", "vd", "l"],
            vec!["linstor", "r", "l"],
            vec!["linstor", "r", "lv"],
            vec!["linstor", "resource", "list-volumes"],
            vec!["linstor", "v", "l"],
            vec!["linstor", "rg", "l"],
            vec!["linstor", "vg", "l", "g"],
            vec!["linstor", "c", "v"],
            vec!["linstor", "c", "lp"],
            vec!["linstor", "n", "i", "l", "alpha"],
            vec!["linstor", "rg", "qmvs", "g"],
            vec!["linstor", "rg", "opt", "g", "--protocol", "C"],
            vec!["linstor", "rd", "opt", "r", "--protocol", "C"],
            vec!["linstor", "vd", "opt", "r", "0", "--on-io-error", "detach"],
            vec!["linstor", "rc", "popt", "a", "b", "r", "--protocol", "C"],
            vec!["linstor", "nc", "popt", "a", "b", "--protocol", "C"],
            vec!["linstor", "c", "opt", "--protocol", "C"],
            vec!["linstor", "list-commands"],
            vec!["linstor", "quit"],
        ] {
            assert!(parse_line(&line).is_ok(), "{line:?}");
        }
        // argparse-style abbreviation of long options.
        let cli = parse_line(&[
            "linstor", "node", "create", "--node-t", "combined", "x", "1.2.3.4",
        ])
        .unwrap();
        let Some(Command::Node(node::NodeCmd::Create(c))) = cli.command else {
            panic!()
        };
        assert_eq!(c.node_type, "combined");
        // Global options only before the command, so -m after it is the command's own option.
        let cli = parse_line(&["linstor", "vd", "c", "-m", "7", "r", "1G"]).unwrap();
        assert!(!cli.machine_readable);
        assert!(parse_line(&["linstor", "node", "frobnicate"]).is_err());
    }

    #[test]
    fn no_command_means_interactive() {
        let cli = parse_line(&["linstor"]).unwrap();
        assert_eq!(cli.command, None);
        let cli = parse_line(&["linstor", "interactive"]).unwrap();
        assert_eq!(cli.command, Some(Command::Interactive));
        let cli = parse_line(&["linstor", "-v"]).unwrap();
        assert!(cli.version);
    }

    #[test]
    fn interactive_lines_split_like_a_shell() {
        let words = shell_words::split("rd c -e 'my disk' \"x y\"").unwrap();
        let mut argv = vec!["linstor".to_string()];
        argv.extend(words);
        let cli = parse_line(&argv).unwrap();
        let Some(Command::ResourceDfn(rsc_dfn::RdCmd::Create(c))) = cli.command else {
            panic!()
        };
        assert_eq!(c.external_name.as_deref(), Some("my disk"));
        assert_eq!(c.name.as_deref(), Some("x y"));
    }

    #[test]
    fn command_list() {
        let text = commands_text();
        assert!(text.starts_with(
            "Use \"help <command>\" to get help for a specific command.\n\nAvailable commands:\n"
        ));
        assert!(text.contains("- node (n)\n"));
        assert!(text.contains("- resource-group (rg)\n"));
        assert!(text.contains("- storage-pool-definition (spd)\n"));
        assert!(!text.contains("- exit"));
    }
}
