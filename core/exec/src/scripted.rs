//! A runner for tests that answers from a script of expected commands, fed with output
//! captured from the real tools, and records what was run.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::stream::{LineSource, ScriptedLines, StreamRunner};
use crate::{Cmd, CommandRunner, ExecError, Output};

#[derive(Debug, Clone)]
pub struct Expectation {
    pub argv: Vec<String>,
    pub output: Output,
}

/// Answers commands in the order they were scripted. An unexpected command is answered with
/// a failure naming it, and recorded, so a test sees exactly what was run.
#[derive(Debug, Default)]
pub struct ScriptedRunner {
    script: Mutex<VecDeque<Expectation>>,
    calls: Mutex<Vec<Vec<String>>>,
    available: Mutex<Vec<String>>,
    streams: Mutex<VecDeque<(Vec<String>, ScriptedLines)>>,
}

impl ScriptedRunner {
    pub fn new() -> ScriptedRunner {
        ScriptedRunner::default()
    }

    /// Expects `argv` next and answers it with `output`.
    pub fn expect(&self, argv: &[&str], output: Output) -> &Self {
        self.script.lock().unwrap().push_back(Expectation {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            output,
        });
        self
    }

    /// Expects `argv` to be started as a stream next (see [`StreamRunner`]) and answers it
    /// with `lines`. Streams are scripted apart from ordinary commands.
    pub fn expect_stream(&self, argv: &[&str], lines: ScriptedLines) -> &Self {
        self.streams
            .lock()
            .unwrap()
            .push_back((argv.iter().map(|s| s.to_string()).collect(), lines));
        self
    }

    /// Declares programs as installed for `available`.
    pub fn with_programs(&self, programs: &[&str]) -> &Self {
        self.available
            .lock()
            .unwrap()
            .extend(programs.iter().map(|s| s.to_string()));
        self
    }

    /// Every command run so far, as argv vectors.
    pub fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }

    /// Scripted commands that were never run.
    pub fn remaining(&self) -> Vec<Vec<String>> {
        self.script
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.argv.clone())
            .collect()
    }
}

impl CommandRunner for ScriptedRunner {
    fn run_any(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let argv: Vec<String> = cmd.argv().iter().map(|s| s.to_string()).collect();
        self.calls.lock().unwrap().push(argv.clone());
        let mut script = self.script.lock().unwrap();
        match script.front() {
            Some(e) if e.argv == argv => Ok(script.pop_front().unwrap().output),
            Some(e) => Err(ExecError::Failed {
                cmd: cmd.to_string(),
                status: 127,
                stdout: String::new(),
                stderr: format!(
                    "unexpected command; the script expected: {}",
                    e.argv.join(" ")
                ),
            }),
            None => Err(ExecError::Failed {
                cmd: cmd.to_string(),
                status: 127,
                stdout: String::new(),
                stderr: "unexpected command; the script is empty".into(),
            }),
        }
    }

    fn available(&self, program: &str) -> bool {
        self.available.lock().unwrap().iter().any(|p| p == program)
    }
}

impl StreamRunner for ScriptedRunner {
    fn stream(&self, cmd: &Cmd) -> Result<Box<dyn LineSource>, ExecError> {
        let argv: Vec<String> = cmd.argv().iter().map(|s| s.to_string()).collect();
        self.calls.lock().unwrap().push(argv.clone());
        let mut streams = self.streams.lock().unwrap();
        match streams.front() {
            Some((want, _)) if *want == argv => {
                let (_, lines) = streams.pop_front().unwrap();
                Ok(Box::new(lines.named(cmd)))
            }
            other => Err(ExecError::Spawn {
                cmd: cmd.to_string(),
                reason: match other {
                    Some((want, _)) => {
                        format!("unexpected stream; the script expected: {}", want.join(" "))
                    }
                    None => "unexpected stream; the script is empty".into(),
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_order_and_records() {
        let r = ScriptedRunner::new();
        r.expect(&["vgs", "--noheadings"], Output::ok("vg0\n"))
            .expect(&["lvs"], Output::failed(5, "boom"));
        assert_eq!(
            r.run(&Cmd::new("vgs").arg("--noheadings")).unwrap().stdout,
            "vg0\n"
        );
        let err = r.run(&Cmd::new("lvs")).unwrap_err();
        assert_eq!(err.status(), Some(5));
        assert!(r.run(&Cmd::new("extra")).is_err());
        assert_eq!(r.calls().len(), 3);
        assert!(r.remaining().is_empty());
    }

    #[test]
    fn wrong_command_names_what_was_expected() {
        let r = ScriptedRunner::new();
        r.expect(&["a"], Output::ok(""));
        let err = r.run(&Cmd::new("b")).unwrap_err();
        assert!(err.stderr().contains("expected: a"));
        assert_eq!(r.remaining().len(), 1);
    }
}
