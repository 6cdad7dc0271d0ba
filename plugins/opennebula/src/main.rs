//! `strata-one`: OpenNebula's datastore and transfer-manager driver of the suite.
//!
//! Every action script of the driver is the same line, `exec strata-one "$0" "$@"`; the
//! script's place names what to do: `.../datastore/<driver>/<action>` or
//! `.../tm/<driver>/<action>` (so the driver may be installed under any name, `strata`, or
//! `linstor` in place of OpenNebula's LINSTOR add-on). Datastore actions read the action data
//! oned sends (base64 XML) on stdin and print their answer; transfer actions take their
//! arguments as oned writes them. A failure exits 1 with one line on stderr, which OpenNebula
//! shows in the image's or VM's log.

mod conf;
mod ds;
mod host;
mod tm;
mod xml;

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

const USAGE: &str = "usage: strata-one <remotes>/{datastore,tm}/<driver>/<action> [ARG...] (as the driver's action scripts run it)";

/// Runs `<remotes>/<kind>/<driver>/<action>` of OpenNebula's own drivers with the same
/// arguments (and stdin), for what the system datastore's usual driver does.
pub fn delegate(
    kind: &str,
    driver: &str,
    action: &str,
    args: &[String],
    stdin: Option<&str>,
) -> Result<String, String> {
    use std::io::Write;
    let script = ds::remotes_dir().join(kind).join(driver).join(action);
    let mut child = Command::new(&script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if let (Some(mut input), Some(text)) = (child.stdin.take(), stdin) {
        let _ = input.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{kind}/{driver}/{action}: {}",
            crate::host::one_line(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn read_stdin() -> Result<String, String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(s)
}

/// `(kind, driver, action)` of an action script's path.
fn place(script: &str) -> Option<(String, String, String)> {
    let p = Path::new(script);
    let action = p.file_name()?.to_str()?;
    let driver_dir = p.parent()?;
    let driver = driver_dir.file_name()?.to_str()?;
    let kind = driver_dir.parent()?.file_name()?.to_str()?;
    // One_tm.rb runs `<action>.<system tm>` where it exists; ours is the plain action.
    let action = action.split('.').next().unwrap_or(action);
    Some((kind.to_string(), driver.to_string(), action.to_string()))
}

async fn run(args: &[String]) -> Result<Option<String>, String> {
    let (script, rest) = args.split_first().ok_or(USAGE)?;
    let (kind, driver, action) = place(script).ok_or(USAGE)?;
    match kind.as_str() {
        "datastore" => Ok(Some(ds::run(&action, rest, &read_stdin()?).await?)),
        "tm" => {
            let stdin = match action.as_str() {
                "premigrate" | "postmigrate" | "failmigrate" | "monitor" => Some(read_stdin()?),
                _ => None,
            };
            tm::run(&driver, &action, rest, stdin.as_deref()).await?;
            Ok(None)
        }
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args)) {
        Ok(out) => {
            if let Some(out) = out.filter(|o| !o.is_empty()) {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line: what oned stores as the error.
            eprintln!("{}", e.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_place_says_what_to_do() {
        assert_eq!(
            place("/var/lib/one/remotes/tm/strata/clone.ssh"),
            Some(("tm".into(), "strata".into(), "clone".into()))
        );
        assert_eq!(
            place("/var/lib/one/remotes/datastore/linstor/cp"),
            Some(("datastore".into(), "linstor".into(), "cp".into()))
        );
        assert_eq!(place("cp"), None);
    }
}
