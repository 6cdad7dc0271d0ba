//! Long-lived processes read line by line, such as `drbdsetup events2` that a satellite keeps
//! running for as long as it runs.
//!
//! The same rules hold as for [`RealRunner`](crate::RealRunner): argv only, a cleared environment
//! with `LC_ALL=C` and the safe `PATH`. There is no overall timeout (the process is meant to run
//! on); instead each [`LineSource::next_line`] waits at most the time it is given, so a caller can
//! look at its own shutdown flag between lines. Dropping a [`LineProcess`] kills and reaps its
//! child: no process outlives its handle.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::AsFd;
use std::process::{Child, ChildStderr, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use crate::{spawn_child, Cmd, ExecError};

/// How much of a streaming process's stderr is kept (the end of it) for the error at its exit.
const STDERR_KEEP: usize = 64 * 1024;

/// A source of output lines.
pub trait LineSource: Send {
    /// The next line, without its line ending.
    ///
    /// `Ok(None)`: no complete line arrived within `timeout` and the source is still alive.
    /// `Err(ExecError::Ended { .. })`: the process ended (whatever its status) and every line it
    /// wrote was delivered before; later calls answer the same. Other errors: reading failed.
    fn next_line(&mut self, timeout: Duration) -> Result<Option<String>, ExecError>;
}

/// Starts line sources; implemented by [`RealRunner`](crate::RealRunner) and by
/// [`ScriptedRunner`](crate::ScriptedRunner), so code that streams can be tested without processes.
pub trait StreamRunner: Send + Sync {
    /// Starts `cmd` (its `timeout` and `stdin` are not used: the process runs until it ends or the
    /// source is dropped, with stdin from `/dev/null`).
    fn stream(&self, cmd: &Cmd) -> Result<Box<dyn LineSource>, ExecError>;
}

impl StreamRunner for crate::RealRunner {
    fn stream(&self, cmd: &Cmd) -> Result<Box<dyn LineSource>, ExecError> {
        Ok(Box::new(LineProcess::spawn(cmd)?))
    }
}

/// A running child process whose stdout is read line by line.
#[derive(Debug)]
pub struct LineProcess {
    shown: String,
    child: Child,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    /// Stdout bytes not yet handed out as lines.
    pending: Vec<u8>,
    /// The end of stderr.
    err: Vec<u8>,
    /// Exit status once the child was reaped.
    status: Option<i32>,
}

impl LineProcess {
    /// Spawns `cmd` with a cleared environment (`LC_ALL=C`, the safe `PATH`).
    pub fn spawn(cmd: &Cmd) -> Result<LineProcess, ExecError> {
        let shown = cmd.to_string();
        let mut child = spawn_child(cmd, Stdio::null())?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        // Reads never block: waiting happens in poll, bounded by the caller's timeout.
        {
            use nix::fcntl::{fcntl, FcntlArg, OFlag};
            if let Some(s) = &stdout {
                let _ = fcntl(s, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
            }
            if let Some(s) = &stderr {
                let _ = fcntl(s, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
            }
        }
        tracing::debug!(cmd = %shown, pid = child.id(), "streaming");
        Ok(LineProcess {
            shown,
            child,
            stdout,
            stderr,
            pending: Vec::new(),
            err: Vec::new(),
            status: None,
        })
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    fn take_line(&mut self) -> Option<String> {
        let at = self.pending.iter().position(|&b| b == b'\n')?;
        let mut line: Vec<u8> = self.pending.drain(..=at).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(String::from_utf8_lossy(&line).into_owned())
    }

    fn ended(&self, status: i32) -> ExecError {
        ExecError::Ended {
            cmd: self.shown.clone(),
            status,
            stderr: String::from_utf8_lossy(&self.err).into_owned(),
        }
    }

    /// Waits up to `deadline` for readable pipes and reads what is there. Returns false when
    /// nothing became readable in time.
    fn pump(&mut self, deadline: Instant) -> Result<bool, ExecError> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        if self.stdout.is_none() && self.stderr.is_none() {
            return Ok(false);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let (out_ready, err_ready) = {
            let mut fds = Vec::with_capacity(2);
            if let Some(s) = &self.stdout {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            if let Some(s) = &self.stderr {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => return Ok(true),
                Err(e) => {
                    return Err(ExecError::Spawn {
                        cmd: self.shown.clone(),
                        reason: format!("poll failed: {e}"),
                    })
                }
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            let mut it = ready.into_iter();
            let out = if self.stdout.is_some() {
                it.next().unwrap_or(false)
            } else {
                false
            };
            let err = if self.stderr.is_some() {
                it.next().unwrap_or(false)
            } else {
                false
            };
            (out, err)
        };
        let mut buf = [0u8; 16384];
        if out_ready {
            if let Some(s) = self.stdout.as_mut() {
                match s.read(&mut buf) {
                    Ok(0) => self.stdout = None,
                    Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => self.stdout = None,
                }
            }
        }
        if err_ready {
            if let Some(s) = self.stderr.as_mut() {
                match s.read(&mut buf) {
                    Ok(0) => self.stderr = None,
                    Ok(n) => {
                        self.err.extend_from_slice(&buf[..n]);
                        if self.err.len() > STDERR_KEEP {
                            let cut = self.err.len() - STDERR_KEEP;
                            self.err.drain(..cut);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => self.stderr = None,
                }
            }
        }
        Ok(true)
    }

    /// After stdout closed: collects the rest of stderr and the exit status, up to `deadline`.
    fn reap(&mut self, deadline: Instant) -> Result<Option<i32>, ExecError> {
        loop {
            if let Some(s) = self.status {
                return Ok(Some(s));
            }
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    // Whatever stderr still holds is already written: read it without waiting.
                    while self.stderr.is_some() && self.pump(Instant::now())? {}
                    let code = s.code().unwrap_or(-1);
                    self.status = Some(code);
                    tracing::debug!(cmd = %self.shown, status = code, "stream ended");
                    return Ok(Some(code));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(ExecError::Spawn {
                        cmd: self.shown.clone(),
                        reason: e.to_string(),
                    })
                }
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let step = (Instant::now() + Duration::from_millis(5)).min(deadline);
            if !self.pump(step)? {
                std::thread::sleep(
                    step.saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(5)),
                );
            }
        }
    }
}

impl LineSource for LineProcess {
    fn next_line(&mut self, timeout: Duration) -> Result<Option<String>, ExecError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.take_line() {
                return Ok(Some(line));
            }
            if self.stdout.is_none() {
                if !self.pending.is_empty() {
                    // A last line without a line ending.
                    let rest = std::mem::take(&mut self.pending);
                    return Ok(Some(String::from_utf8_lossy(&rest).into_owned()));
                }
                return match self.reap(deadline)? {
                    Some(status) => Err(self.ended(status)),
                    None => Ok(None),
                };
            }
            if !self.pump(deadline)? {
                return Ok(None);
            }
        }
    }
}

impl Drop for LineProcess {
    fn drop(&mut self) {
        if self.status.is_none() {
            // Our own child, by its handle: killed and reaped, never left behind.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a [`ScriptedLines`] yields next.
#[derive(Debug, Clone)]
enum Step {
    Line(String),
    Idle,
    /// Nothing more until the test opens the gate (the stream stays idle meanwhile).
    Gate(std::sync::Arc<std::sync::atomic::AtomicBool>),
}

impl PartialEq for Step {
    fn eq(&self, other: &Step) -> bool {
        match (self, other) {
            (Step::Line(a), Step::Line(b)) => a == b,
            (Step::Idle, Step::Idle) => true,
            (Step::Gate(a), Step::Gate(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Step {}

/// A fake line source for tests: yields the given lines, `Ok(None)` where an idle step was
/// scripted, and then either ends (see [`ScriptedLines::ends`]) or stays idle forever, like a
/// process that keeps running.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptedLines {
    steps: VecDeque<Step>,
    end: Option<(i32, String)>,
    cmd: String,
}

impl ScriptedLines {
    pub fn new<I, S>(lines: I) -> ScriptedLines
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ScriptedLines {
            steps: lines.into_iter().map(|l| Step::Line(l.into())).collect(),
            end: None,
            cmd: "scripted".into(),
        }
    }

    /// Appends a line.
    pub fn line(mut self, line: impl Into<String>) -> ScriptedLines {
        self.steps.push_back(Step::Line(line.into()));
        self
    }

    /// Appends one call that answers "no line within the timeout".
    pub fn idle(mut self) -> ScriptedLines {
        self.steps.push_back(Step::Idle);
        self
    }

    /// Appends a gate: the steps after it come only once `open` is set (until then the
    /// source is idle), so that a test can hold events back until it has done something.
    pub fn gate(mut self, open: std::sync::Arc<std::sync::atomic::AtomicBool>) -> ScriptedLines {
        self.steps.push_back(Step::Gate(open));
        self
    }

    /// After the scripted steps, the source ends with this exit status and stderr.
    pub fn ends(mut self, status: i32, stderr: impl Into<String>) -> ScriptedLines {
        self.end = Some((status, stderr.into()));
        self
    }

    /// Steps not yet consumed (lines and idles).
    pub fn remaining(&self) -> usize {
        self.steps.len()
    }
}

impl LineSource for ScriptedLines {
    fn next_line(&mut self, timeout: Duration) -> Result<Option<String>, ExecError> {
        match self.steps.pop_front() {
            Some(Step::Line(l)) => Ok(Some(l)),
            Some(Step::Idle) => Ok(None),
            Some(Step::Gate(open)) => {
                if !open.load(std::sync::atomic::Ordering::SeqCst) {
                    self.steps.push_front(Step::Gate(open));
                    std::thread::sleep(timeout.min(Duration::from_millis(10)));
                }
                Ok(None)
            }
            None => match &self.end {
                Some((status, stderr)) => Err(ExecError::Ended {
                    cmd: self.cmd.clone(),
                    status: *status,
                    stderr: stderr.clone(),
                }),
                None => {
                    // A live process with nothing to say: the caller waits (briefly, here).
                    std::thread::sleep(timeout.min(Duration::from_millis(20)));
                    Ok(None)
                }
            },
        }
    }
}

impl ScriptedLines {
    pub(crate) fn named(mut self, cmd: &Cmd) -> ScriptedLines {
        self.cmd = cmd.to_string();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RealRunner, ScriptedRunner, SAFE_PATH};

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn reads_lines_then_reports_the_end() {
        let mut p = LineProcess::spawn(&Cmd::new("seq").arg("3")).unwrap();
        assert_eq!(p.next_line(T).unwrap().as_deref(), Some("1"));
        assert_eq!(p.next_line(T).unwrap().as_deref(), Some("2"));
        assert_eq!(p.next_line(T).unwrap().as_deref(), Some("3"));
        let err = p.next_line(T).unwrap_err();
        assert!(
            matches!(&err, ExecError::Ended { status: 0, cmd, .. } if cmd == "seq 3"),
            "{err:?}"
        );
        assert_eq!(err.status(), Some(0));
        // It stays ended.
        assert!(matches!(p.next_line(T), Err(ExecError::Ended { .. })));
    }

    #[test]
    fn idle_process_times_out_without_a_line_and_is_killed_on_drop() {
        let started = Instant::now();
        let mut p = RealRunner.stream(&Cmd::new("sleep").arg("30")).unwrap();
        assert_eq!(p.next_line(Duration::from_millis(100)).unwrap(), None);
        assert_eq!(p.next_line(Duration::ZERO).unwrap(), None);
        drop(p);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn drop_reaps_the_child() {
        let p = LineProcess::spawn(&Cmd::new("sleep").arg("30")).unwrap();
        let pid = p.id();
        drop(p);
        // A reaped child has no /proc entry left (a zombie would still have one).
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn failure_carries_status_and_stderr_and_the_last_unterminated_line() {
        let mut p = LineProcess::spawn(
            &Cmd::new("sh")
                .arg("-c")
                .arg("echo first; printf 'no newline'; echo oops >&2; exit 3"),
        )
        .unwrap();
        assert_eq!(p.next_line(T).unwrap().as_deref(), Some("first"));
        assert_eq!(p.next_line(T).unwrap().as_deref(), Some("no newline"));
        match p.next_line(T).unwrap_err() {
            ExecError::Ended { status, stderr, .. } => {
                assert_eq!(status, 3);
                assert_eq!(stderr, "oops\n");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn environment_is_cleared() {
        let mut p = LineProcess::spawn(&Cmd::new("env")).unwrap();
        let mut lines = Vec::new();
        while let Some(l) = p.next_line(T).unwrap_or(None) {
            lines.push(l);
        }
        lines.sort();
        assert_eq!(
            lines,
            vec!["LC_ALL=C".to_string(), format!("PATH={SAFE_PATH}")]
        );
    }

    #[test]
    fn many_lines_arrive_in_order() {
        let mut p = LineProcess::spawn(&Cmd::new("seq").arg("20000")).unwrap();
        for i in 1..=20000 {
            assert_eq!(p.next_line(T).unwrap(), Some(i.to_string()));
        }
        assert!(p.next_line(T).is_err());
    }

    #[test]
    fn missing_program_is_reported() {
        assert!(matches!(
            LineProcess::spawn(&Cmd::new("no-such-tool-xyz")),
            Err(ExecError::NotFound { .. })
        ));
    }

    #[test]
    fn scripted_lines() {
        let mut s = ScriptedLines::new(["a", "b"])
            .idle()
            .line("c")
            .ends(20, "gone");
        assert_eq!(s.next_line(T).unwrap().as_deref(), Some("a"));
        assert_eq!(s.next_line(T).unwrap().as_deref(), Some("b"));
        assert_eq!(s.next_line(T).unwrap(), None);
        assert_eq!(s.next_line(T).unwrap().as_deref(), Some("c"));
        assert_eq!(s.next_line(T).unwrap_err().stderr(), "gone");
        let mut forever = ScriptedLines::new(["x"]);
        assert_eq!(forever.next_line(T).unwrap().as_deref(), Some("x"));
        assert_eq!(forever.next_line(T).unwrap(), None);
        assert_eq!(forever.next_line(T).unwrap(), None);
    }

    #[test]
    fn scripted_runner_streams() {
        let r = ScriptedRunner::new();
        r.expect_stream(
            &["drbdsetup", "events2", "--full"],
            ScriptedLines::new(["exists -"]).ends(1, "bye"),
        );
        let cmd = Cmd::new("drbdsetup").arg("events2").arg("--full");
        let mut s = r.stream(&cmd).unwrap();
        assert_eq!(s.next_line(T).unwrap().as_deref(), Some("exists -"));
        match s.next_line(T).unwrap_err() {
            ExecError::Ended { cmd, status, .. } => {
                assert_eq!(cmd, "drbdsetup events2 --full");
                assert_eq!(status, 1);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(r.stream(&cmd).is_err(), "nothing more scripted");
        assert_eq!(r.calls().len(), 2);
    }
}
