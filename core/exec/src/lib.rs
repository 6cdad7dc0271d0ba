//! Running external tools.
//!
//! Every command of the suite goes through a [`CommandRunner`]: argv only (never a shell), a
//! cleared environment with `LC_ALL=C`, a timeout, and an error that carries the command, its
//! exit status, stdout and stderr. Tests replace the real runner with [`ScriptedRunner`], fed
//! with output captured from the real tools.

mod scripted;

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub use scripted::{Expectation, ScriptedRunner};

/// The search path commands run with; the environment is otherwise empty.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Default time a command may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub timeout: Duration,
    pub stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            stdin: None,
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Cmd {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }

    /// The full argv, program first.
    pub fn argv(&self) -> Vec<&str> {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect()
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Quoted so that a reader can tell argument boundaries apart.
        let parts: Vec<String> = self
            .argv()
            .iter()
            .map(|a| {
                if !a.is_empty()
                    && a.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
                {
                    a.to_string()
                } else {
                    format!("'{}'", a.replace('\'', "'\\''"))
                }
            })
            .collect();
        f.write_str(&parts.join(" "))
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(stdout: impl Into<String>) -> Output {
        Output {
            status: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    pub fn failed(status: i32, stderr: impl Into<String>) -> Output {
        Output {
            status,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("'{cmd}' could not be started: {program} was not found in {SAFE_PATH}")]
    NotFound { cmd: String, program: String },
    #[error("'{cmd}' could not be started: {reason}")]
    Spawn { cmd: String, reason: String },
    #[error("'{cmd}' did not finish within {}s and was killed; stderr: {}", timeout.as_secs(), stderr.trim())]
    Timeout {
        cmd: String,
        timeout: Duration,
        stdout: String,
        stderr: String,
    },
    #[error(
        "'{cmd}' failed with exit status {status}: {}",
        summary(stderr, stdout)
    )]
    Failed {
        cmd: String,
        status: i32,
        stdout: String,
        stderr: String,
    },
}

fn summary(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let text = text.trim();
    if text.is_empty() {
        "no output".to_string()
    } else {
        text.to_string()
    }
}

impl ExecError {
    /// Stderr of a failed or timed-out command.
    pub fn stderr(&self) -> &str {
        match self {
            ExecError::Failed { stderr, .. } | ExecError::Timeout { stderr, .. } => stderr,
            _ => "",
        }
    }

    pub fn status(&self) -> Option<i32> {
        match self {
            ExecError::Failed { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Runs commands; implemented by the real runner and by the scripted fake.
pub trait CommandRunner: Send + Sync {
    /// Runs `cmd` and returns its output whatever its exit status.
    fn run_any(&self, cmd: &Cmd) -> Result<Output, ExecError>;

    /// Runs `cmd`; a non-zero exit status is an error.
    fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let out = self.run_any(cmd)?;
        if out.status != 0 {
            return Err(ExecError::Failed {
                cmd: cmd.to_string(),
                status: out.status,
                stdout: out.stdout,
                stderr: out.stderr,
            });
        }
        Ok(out)
    }

    /// Whether `program` can be run at all (found on the safe path).
    fn available(&self, program: &str) -> bool;
}

/// Runs real processes.
#[derive(Debug, Default, Clone)]
pub struct RealRunner;

fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = Path::new(program);
        return p.is_file().then(|| p.to_path_buf());
    }
    SAFE_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

fn read_all(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

impl CommandRunner for RealRunner {
    fn run_any(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let shown = cmd.to_string();
        let Some(path) = find_program(&cmd.program) else {
            return Err(ExecError::NotFound {
                cmd: shown,
                program: cmd.program.clone(),
            });
        };
        let started = Instant::now();
        let mut child = Command::new(&path)
            .args(&cmd.args)
            .env_clear()
            .env("LC_ALL", "C")
            .env("PATH", SAFE_PATH)
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ExecError::Spawn {
                cmd: shown.clone(),
                reason: e.to_string(),
            })?;
        if let (Some(data), Some(mut stdin)) = (cmd.stdin.clone(), child.stdin.take()) {
            thread::spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        let out = read_all(child.stdout.take().expect("stdout is piped"));
        let err = read_all(child.stderr.take().expect("stderr is piped"));
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(cmd.timeout) {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                return Err(ExecError::Spawn {
                    cmd: shown,
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                // Kill the command we started (by its own PID) and collect what it said.
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .env_clear()
                    .env("PATH", SAFE_PATH)
                    .status();
                let _ = rx.recv_timeout(Duration::from_secs(5));
                return Err(ExecError::Timeout {
                    cmd: shown,
                    timeout: cmd.timeout,
                    stdout: out.join().unwrap_or_default(),
                    stderr: err.join().unwrap_or_default(),
                });
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        let code = status.code().unwrap_or(-1);
        tracing::debug!(cmd = %shown, status = code, ms = started.elapsed().as_millis() as u64, "ran");
        Ok(Output {
            status: code,
            stdout,
            stderr,
        })
    }

    fn available(&self, program: &str) -> bool {
        find_program(program).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_with_clean_environment() {
        let out = RealRunner.run(&Cmd::new("env")).unwrap();
        let mut lines: Vec<&str> = out.stdout.lines().collect();
        lines.sort();
        assert_eq!(lines, vec!["LC_ALL=C", &format!("PATH={SAFE_PATH}")]);
    }

    #[test]
    fn arguments_are_not_interpreted_by_a_shell() {
        let out = RealRunner
            .run(&Cmd::new("echo").arg("$(touch /tmp/should-not-exist); *"))
            .unwrap();
        assert_eq!(out.stdout, "$(touch /tmp/should-not-exist); *\n");
        assert!(!Path::new("/tmp/should-not-exist").exists());
    }

    #[test]
    fn failure_carries_everything() {
        let err = RealRunner
            .run(&Cmd::new("ls").arg("/definitely/not/here"))
            .unwrap_err();
        match &err {
            ExecError::Failed {
                cmd,
                status,
                stderr,
                ..
            } => {
                assert_eq!(cmd, "ls /definitely/not/here");
                assert_ne!(*status, 0);
                assert!(stderr.contains("No such file"), "{stderr}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("No such file"));
    }

    #[test]
    fn missing_program_is_reported() {
        let err = RealRunner.run(&Cmd::new("no-such-tool-xyz")).unwrap_err();
        assert!(matches!(err, ExecError::NotFound { .. }));
        assert!(!RealRunner.available("no-such-tool-xyz"));
        assert!(RealRunner.available("sh"));
    }

    #[test]
    fn timeout_kills() {
        let started = Instant::now();
        let err = RealRunner
            .run(
                &Cmd::new("sleep")
                    .arg("10")
                    .timeout(Duration::from_millis(200)),
            )
            .unwrap_err();
        assert!(matches!(err, ExecError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn stdin_is_fed() {
        let out = RealRunner.run(&Cmd::new("cat").stdin("hello")).unwrap();
        assert_eq!(out.stdout, "hello");
    }

    #[test]
    fn display_quotes_odd_arguments() {
        let c = Cmd::new("lvcreate").arg("-n").arg("my res").arg("it's");
        assert_eq!(c.to_string(), "lvcreate -n 'my res' 'it'\\''s'");
    }
}
