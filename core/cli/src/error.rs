//! Exit codes (the values of the upstream client's `ExitCode`) and the error type every command
//! returns.

use std::fmt;

/// Everything went fine.
pub const OK: i32 = 0;
/// Anything not covered below (an unexpected local failure).
pub const UNKNOWN_ERROR: i32 = 1;
/// The command line could not be used: bad syntax, bad size, unknown driver, unresolvable name.
pub const ARGPARSE_ERROR: i32 = 2;
/// The object asked for does not exist.
pub const OBJECT_NOT_FOUND: i32 = 3;
/// An option this client does not support.
pub const OPTION_NOT_SUPPORTED: i32 = 4;
/// The controller answered with at least one error reply.
pub const API_ERROR: i32 = 10;
/// No controller could be reached.
pub const CONNECTION_ERROR: i32 = 20;
/// A controller was reached but did not answer in time.
pub const CONNECTION_TIMEOUT: i32 = 21;
/// The controller answered something this client cannot read.
pub const UNEXPECTED_REPLY: i32 = 22;

/// A failed command: the exit code and, unless everything was already printed, a message for
/// standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub code: i32,
    pub message: Option<String>,
}

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: Some(message.into()),
        }
    }

    /// The command line is not usable.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(ARGPARSE_ERROR, message)
    }

    pub fn not_found(message: impl Into<String>) -> CliError {
        CliError::new(OBJECT_NOT_FOUND, message)
    }

    pub fn unexpected(message: impl Into<String>) -> CliError {
        CliError::new(UNEXPECTED_REPLY, message)
    }

    /// The failure was already reported on the terminal; only the exit code is left.
    pub fn reported(code: i32) -> CliError {
        CliError {
            code,
            message: None,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{m}"),
            None => write!(f, "exit code {}", self.code),
        }
    }
}

impl From<strata_client::ClientError> for CliError {
    fn from(e: strata_client::ClientError) -> CliError {
        use strata_client::ClientError as E;
        let e_text = e.to_string();
        match e {
            E::BadController(c) => {
                CliError::usage(format!("Error: invalid controller address '{c}'"))
            }
            E::Unreachable { tried, reason } => {
                if reason == "no answer in time" {
                    CliError::new(
                        CONNECTION_TIMEOUT,
                        format!("Error: no answer from the controller at {tried} in time"),
                    )
                } else {
                    CliError::new(
                        CONNECTION_ERROR,
                        format!(
                            "Error: Unable to connect to any controller (tried {tried}): {reason}"
                        ),
                    )
                }
            }
            E::Api { status, .. } => CliError::new(
                API_ERROR,
                format!("Error: the controller answered HTTP {status}"),
            ),
            E::Protocol(m) => {
                CliError::unexpected(format!("Error: unexpected answer from the controller: {m}"))
            }
            E::TokenWithheld(_) => CliError::new(CONNECTION_ERROR, format!("Error: {e_text}")),
            E::Settings(m) => CliError::usage(format!("Error: {m}")),
        }
    }
}
