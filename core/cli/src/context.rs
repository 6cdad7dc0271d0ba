//! The running command's settings and its connection: sends requests, prints replies, fetches
//! lists.

use std::io::Write;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use strata_api::ApiCallRc;
use strata_client::Client;

use crate::common::Request;
use crate::error::{self, CliError};
use crate::output::{self, Style};

/// Writes to standard output; a closed pipe (`linstor n l | head -1`) is not an error.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

pub fn err(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = e.write_all(b"\n");
    }
}

/// How lists and answers are printed (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// The global options that apply to one command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub controllers: Vec<String>,
    pub timeout: Duration,
    /// The controller's data instead of tables (`-m`, `--format json|yaml`).
    pub machine: bool,
    /// ... as YAML (`--format yaml`).
    pub yaml: bool,
    pub style: Style,
    pub warn_as_error: bool,
    pub security: strata_client::Security,
}

pub struct Ctx {
    pub settings: Settings,
    client: Option<(Vec<String>, Duration, strata_client::Security, Client)>,
}

/// Reads a typed answer; a body this client cannot read is `UNEXPECTED_REPLY`.
pub fn parse<T: DeserializeOwned>(raw: &str, what: &str) -> Result<T, CliError> {
    serde_json::from_str(raw).map_err(|e| {
        CliError::unexpected(format!(
            "Error: cannot read the {what} the controller sent: {e}"
        ))
    })
}

impl Ctx {
    pub fn new(settings: Settings) -> Ctx {
        Ctx {
            settings,
            client: None,
        }
    }

    /// Replaces the settings for the next command line, keeping the connection if it still fits.
    pub fn reset(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// The table style for a list; `--pastable` means ASCII without colours.
    pub fn style(&self, pastable: bool) -> Style {
        if pastable {
            Style::PLAIN
        } else {
            self.settings.style
        }
    }

    pub fn colors(&self) -> bool {
        self.settings.style.color
    }

    fn client(&mut self) -> Result<Client, CliError> {
        let s = &self.settings;
        if let Some((c, t, sec, client)) = &self.client {
            if (c, *t, sec) == (&s.controllers, s.timeout, &s.security) {
                return Ok(client.clone());
            }
        }
        let client = Client::with_security(&s.controllers, s.timeout, &s.security)?;
        self.client = Some((
            s.controllers.clone(),
            s.timeout,
            s.security.clone(),
            client.clone(),
        ));
        Ok(client)
    }

    /// Sends one request and returns its status and body text.
    async fn call(&mut self, req: &Request) -> Result<(u16, String), CliError> {
        let client = self.client()?;
        let (status, bytes) = client
            .raw(req.method.clone(), &req.path, req.body.as_ref())
            .await?;
        Ok((
            status.as_u16(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    }

    /// Sends the requests one after the other, prints all their replies and returns the exit
    /// code they stand for.
    pub async fn send(&mut self, reqs: Vec<Request>) -> Result<i32, CliError> {
        let mut raws = Vec::new();
        let mut replies: Vec<ApiCallRc> = Vec::new();
        let mut http_error = false;
        let mut failure = None;
        for req in &reqs {
            let (status, text) = match self.call(req).await {
                Ok(x) => x,
                Err(e) if replies.is_empty() => return Err(e),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            if text.trim().is_empty() && status < 400 {
                continue;
            }
            // Most writes answer a list of replies; some (clone) an object carrying them.
            let parsed = serde_json::from_str::<Vec<ApiCallRc>>(&text).or_else(|e| {
                serde_json::from_str::<WithMessages>(&text)
                    .map(|w| w.messages)
                    .map_err(|_| e)
            });
            match parsed {
                Ok(r) => {
                    http_error |= status >= 400;
                    replies.extend(r);
                    raws.push(text);
                }
                Err(_) => {
                    failure = Some(CliError::unexpected(format!(
                        "Error: {} {} answered HTTP {status} with a body that is not a list of replies: {}",
                        req.method,
                        req.path,
                        text.trim()
                    )));
                    break;
                }
            }
        }
        let mut code = self.print_replies(&replies, &raws);
        if http_error && code == error::OK {
            code = error::API_ERROR;
        }
        match failure {
            Some(f) => Err(f),
            None => Ok(code),
        }
    }

    /// Prints machine-readable data: the JSON given, or it as YAML with `--format yaml`.
    pub fn machine(&self, json: &str) {
        if self.settings.yaml {
            out(&output::yaml_of(json));
        } else {
            out(&format!("{}\n", json.trim_end()));
        }
    }

    /// Prints replies (as blocks or, with `-m`, as JSON) and returns their exit code.
    pub fn print_replies(&self, replies: &[ApiCallRc], raws: &[String]) -> i32 {
        if self.settings.machine {
            self.machine(&output::py_json_pretty(&output::concat_json_arrays(raws)));
        } else {
            out(&output::format_replies(replies, self.colors()));
        }
        output::replies_exit_code(replies, self.settings.warn_as_error)
    }

    /// Asks for a list or object. On an HTTP error the replies are printed and the error
    /// carries only the exit code.
    pub async fn fetch(&mut self, req: Request) -> Result<String, CliError> {
        let (status, text) = self.call(&req).await?;
        if status < 400 {
            return Ok(text);
        }
        match serde_json::from_str::<Vec<ApiCallRc>>(&text) {
            Ok(replies) => {
                let code = self.print_replies(&replies, &[text]);
                Err(CliError::reported(if code == error::OK {
                    error::API_ERROR
                } else {
                    code
                }))
            }
            Err(_) => Err(CliError::unexpected(format!(
                "Error: {} {} answered HTTP {status}: {}",
                req.method,
                req.path,
                text.trim()
            ))),
        }
    }

    /// Prints a list answer: the JSON with `-m`, otherwise what `render` makes of it.
    pub fn show_list(
        &self,
        raw: &str,
        render: impl FnOnce() -> Result<String, CliError>,
    ) -> Result<i32, CliError> {
        if self.settings.machine {
            self.machine(&output::machine_list(raw));
        } else {
            out(&render()?);
        }
        Ok(error::OK)
    }
}

impl Ctx {
    /// Prints a property map as the `list-properties` commands do: a Key/Value table, or with
    /// `-m` a list holding one list of `{"key", "value"}` objects.
    pub fn show_props(
        &self,
        props: Option<&std::collections::BTreeMap<String, String>>,
        pastable: bool,
    ) -> i32 {
        if self.settings.machine {
            self.machine(&props_json(props));
            return error::OK;
        }
        match props {
            Some(p) => out(&crate::table::props_table(p, self.style(pastable))),
            None => out(&format!(
                "{}\n",
                output::paint(
                    "No property map found for this entry.",
                    output::color::YELLOW,
                    self.colors()
                )
            )),
        }
        error::OK
    }
}

/// The machine-readable form of a property map: a list holding one list of `{"key", "value"}`
/// objects, or nothing when there is no map.
pub fn props_json(props: Option<&std::collections::BTreeMap<String, String>>) -> String {
    match props {
        Some(p) => {
            #[derive(Serialize)]
            struct Item<'a> {
                key: &'a str,
                value: &'a str,
            }
            let items: Vec<Item<'_>> = p.iter().map(|(key, value)| Item { key, value }).collect();
            let text = serde_json::to_string(&vec![items]).unwrap_or_else(|_| "[]".into());
            output::py_json_pretty(&text)
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_readable_props() {
        let mut p = std::collections::BTreeMap::new();
        p.insert("StorPoolName".to_string(), "thinpool".to_string());
        p.insert("Aux/a".to_string(), "1".to_string());
        assert_eq!(
            props_json(Some(&p)),
            "[\n  [\n    {\n      \"key\": \"Aux/a\",\n      \"value\": \"1\"\n    },\n    {\n      \"key\": \"StorPoolName\",\n      \"value\": \"thinpool\"\n    }\n  ]\n]"
        );
        assert_eq!(
            props_json(Some(&std::collections::BTreeMap::new())),
            "[\n  []\n]"
        );
        assert_eq!(props_json(None), "");
    }
}

/// An answer object that carries its replies in `messages` (e.g. a started clone).
#[derive(serde::Deserialize)]
struct WithMessages {
    messages: Vec<ApiCallRc>,
}
