//! Running external tools.
//!
//! Every command of the suite goes through a [`CommandRunner`]: argv only (never a shell), a
//! cleared environment with `LC_ALL=C`, a timeout, and an error that carries the command, its
//! exit status, stdout and stderr. Tests replace the real runner with [`ScriptedRunner`], fed
//! with output captured from the real tools.
//!
//! Long-lived processes whose output is read line by line while they run (such as
//! `drbdsetup events2`) go through [`StreamRunner`] and [`LineSource`] (see `stream.rs`).

pub mod needs;
mod scripted;
mod stream;

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use scripted::{Expectation, ScriptedRunner};
pub use stream::{LineProcess, LineSource, ScriptedLines, StreamRunner};

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
    /// Variables set on top of the cleared environment.
    pub env: Vec<(String, String)>,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            stdin: None,
            env: Vec::new(),
        }
    }

    /// Sets `key` in the command's (otherwise cleared) environment.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
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
    /// A streaming process ended (see [`LineSource`]); for a process meant to run on, any end
    /// is one, whatever its status.
    #[error("'{cmd}' ended with exit status {status}: {}", summary(stderr, ""))]
    Ended {
        cmd: String,
        status: i32,
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
            ExecError::Failed { stderr, .. }
            | ExecError::Timeout { stderr, .. }
            | ExecError::Ended { stderr, .. } => stderr,
            _ => "",
        }
    }

    pub fn status(&self) -> Option<i32> {
        match self {
            ExecError::Failed { status, .. } | ExecError::Ended { status, .. } => Some(*status),
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

/// Where `program` is: itself when it names a path, else the first match on [`SAFE_PATH`],
/// the search path commands run with.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = Path::new(program);
        return p.is_file().then(|| p.to_path_buf());
    }
    SAFE_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// Feeds stdin and collects stdout and stderr of a child in this thread, with `poll`, until
/// both pipes close or `deadline` passes. Returns false on timeout.
fn pump(
    child: &mut std::process::Child,
    mut input: Option<(std::process::ChildStdin, Vec<u8>)>,
    out: &mut Vec<u8>,
    err: &mut Vec<u8>,
    deadline: Instant,
) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut written = 0usize;
    let mut buf = [0u8; 16384];
    while stdout.is_some() || stderr.is_some() || input.is_some() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fds = Vec::with_capacity(3);
        if let Some(s) = &stdout {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if let Some(s) = &stderr {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if let Some((s, _)) = &input {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
        }
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut i = 0;
        if stdout.is_some() {
            if ready[i] {
                match stdout.as_mut().map(|s| s.read(&mut buf)) {
                    Some(Ok(0)) | Some(Err(_)) | None => stdout = None,
                    Some(Ok(n)) => out.extend_from_slice(&buf[..n]),
                }
            }
            i += 1;
        }
        if stderr.is_some() {
            if ready[i] {
                match stderr.as_mut().map(|s| s.read(&mut buf)) {
                    Some(Ok(0)) | Some(Err(_)) | None => stderr = None,
                    Some(Ok(n)) => err.extend_from_slice(&buf[..n]),
                }
            }
            i += 1;
        }
        if let Some((pipe, data)) = &mut input {
            if ready[i] {
                match pipe.write(&data[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => written = data.len(),
                }
                if written >= data.len() {
                    // Dropping the pipe closes it: end of input for the child.
                    input = None;
                }
            }
        }
    }
    true
}

/// Starts `cmd` the one way every process of ours starts: found on the safe `PATH`, with a
/// cleared environment (`LC_ALL=C`, the safe `PATH`, the command's own variables), stdout
/// and stderr piped, stdin as given.
pub(crate) fn spawn_child(cmd: &Cmd, stdin: Stdio) -> Result<std::process::Child, ExecError> {
    let Some(path) = find_program(&cmd.program) else {
        return Err(ExecError::NotFound {
            cmd: cmd.to_string(),
            program: cmd.program.clone(),
        });
    };
    Command::new(&path)
        .args(&cmd.args)
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", SAFE_PATH)
        .envs(cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ExecError::Spawn {
            cmd: cmd.to_string(),
            reason: e.to_string(),
        })
}

impl CommandRunner for RealRunner {
    fn run_any(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let shown = cmd.to_string();
        let started = Instant::now();
        let deadline = started + cmd.timeout;
        let stdin = if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = spawn_child(cmd, stdin)?;
        let input = match (cmd.stdin.clone(), child.stdin.take()) {
            (Some(data), Some(pipe)) => {
                // Never block on a full pipe while the child waits for us to read its output.
                use nix::fcntl::{fcntl, FcntlArg, OFlag};
                let _ = fcntl(&pipe, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
                Some((pipe, data))
            }
            _ => None,
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut finished = pump(&mut child, input, &mut out, &mut err, deadline);
        let mut status = None;
        if finished {
            // The pipes are closed; the process is exiting (or detached them and lingers).
            loop {
                match child.try_wait() {
                    Ok(Some(s)) => {
                        status = Some(s);
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Ok(None) => {
                        finished = false;
                        break;
                    }
                    Err(e) => {
                        return Err(ExecError::Spawn {
                            cmd: shown,
                            reason: e.to_string(),
                        })
                    }
                }
            }
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let Some(status) = status.filter(|_| finished) else {
            // The command we started, killed by its own handle, and reaped.
            let _ = child.kill();
            let _ = child.wait();
            return Err(ExecError::Timeout {
                cmd: shown,
                timeout: cmd.timeout,
                stdout: text(&out),
                stderr: text(&err),
            });
        };
        let code = status.code().unwrap_or(-1);
        tracing::debug!(cmd = %shown, status = code, us = started.elapsed().as_micros() as u64, "ran");
        Ok(Output {
            status: code,
            stdout: text(&out),
            stderr: text(&err),
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
    fn large_input_and_output_do_not_deadlock() {
        // More than a pipe buffer each way at once.
        let data: Vec<u8> = (0..2_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let out = RealRunner
            .run(
                &Cmd::new("cat")
                    .stdin(data.clone())
                    .timeout(Duration::from_secs(20)),
            )
            .unwrap();
        assert_eq!(out.stdout.as_bytes(), &data[..]);
        let out = RealRunner
            .run(&Cmd::new("sh").arg("-c").arg(
                "head -c 300000 /dev/zero | tr '\\0' x; head -c 300000 /dev/zero | tr '\\0' y >&2",
            ))
            .unwrap();
        assert_eq!(out.stdout.len(), 300_000);
        assert_eq!(out.stderr.len(), 300_000);
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
