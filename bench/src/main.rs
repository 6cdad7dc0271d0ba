//! `bench`: prints the figures the project promises, each with its target, and a ratio against
//! a baseline measured in the same run where there is one.
//!
//!   bench [scale|real|cli|io|pve|failover|all] [--quick] [--size=30k|--size=100k]
//!
//! Build it in release mode (`cargo build --release --bins`): it runs the release binaries
//! next to itself. `--quick` shrinks the scale run for a smoke test. The `real` and `io` runs
//! need root (loop devices); `io` needs fio; `cli` needs python-linstor (STRATA_PYTHON);
//! `failover` needs etcd (etcd-server).

mod cli;
mod failover;
mod io;
mod pve;
mod real;
mod scale;
mod stats;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let what: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let all = what.is_empty() || what.contains(&"all");
    let want = |name: &str| all || what.contains(&name);
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().map(|l| l
                .split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")))
            .map(|m| format!("{m} memory"))
            .unwrap_or_default()
    );
    let preset = args.iter().find_map(|a| a.strip_prefix("--size="));
    if want("scale") {
        scale::run(quick, preset)?;
    }
    if want("real") {
        real::run(quick)?;
    }
    if want("cli") {
        cli::run(quick)?;
    }
    if want("io") {
        io::run(quick)?;
    }
    if want("pve") {
        pve::run(quick)?;
    }
    if want("failover") {
        failover::run(quick)?;
    }
    Ok(())
}
