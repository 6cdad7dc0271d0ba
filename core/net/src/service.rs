//! What every daemon of the suite does the same way at start: its log output (text for a
//! terminal or the journal, or one JSON object per line with `--log-format json`) and its
//! manual page (`--generate-man DIR`, for the packages).

use std::path::{Path, PathBuf};

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal only).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields.message`, the fields of the
    /// line and the spans it was written in (`request_id` of a REST call among them).
    Json,
}

/// Installs the log output: `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

/// Tells the service manager that started the daemon with `Type=notify` (through
/// `$NOTIFY_SOCKET`) that it is ready, with a status line; answers whether one was told.
/// Without `$NOTIFY_SOCKET` nothing is sent.
pub fn notify_ready(status: &str) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    let message = format!("READY=1\nSTATUS={status}\nMAINPID={}\n", std::process::id());
    let path = path.to_string_lossy().into_owned();
    match path.strip_prefix('@') {
        // An abstract socket name.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(message.as_bytes(), &addr)?;
        }
        None => {
            sock.send_to(message.as_bytes(), &path)?;
        }
    }
    Ok(true)
}

/// What every daemon does first: installs the log output, and with `--generate-man DIR`
/// writes its manual page (section 8) there. Answers whether the page was written (the
/// daemon then exits).
pub fn begin(
    format: LogFormat,
    generate_man: Option<&Path>,
    cmd: impl FnOnce() -> clap::Command,
) -> std::io::Result<bool> {
    init_logging(format);
    let Some(dir) = generate_man else {
        return Ok(false);
    };
    let page = write_man_page(cmd(), "8", dir)?;
    println!("manual page written to {}", page.display());
    Ok(true)
}

/// Writes the manual page of `cmd` to `DIR/<name>.<section>`; answers the file written.
pub fn write_man_page(cmd: clap::Command, section: &str, dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.{section}", cmd.get_name()));
    let mut text = Vec::new();
    clap_mangen::Man::new(cmd)
        .section(section.to_string())
        .render(&mut text)?;
    std::fs::write(&path, text)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_reaches_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        // The variable is read by this process only; tests that use it run here alone.
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(notify_ready("converged").unwrap());
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(got.starts_with("READY=1\nSTATUS=converged\n"), "{got}");
        assert!(!notify_ready("x").unwrap(), "no socket, nothing sent");
    }

    #[test]
    fn a_man_page_names_the_program_and_its_options() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = clap::Command::new("linstor-example")
            .about("An example daemon")
            .arg(clap::Arg::new("port").long("port").help("TCP port"));
        let path = write_man_page(cmd, "8", dir.path()).unwrap();
        assert_eq!(path, dir.path().join("linstor-example.8"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(".TH linstor-example 8"), "{text}");
        assert!(text.contains("\\-\\-port"), "{text}");
        assert!(text.contains("An example daemon"), "{text}");
    }
}
