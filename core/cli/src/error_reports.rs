//! `error-reports` (`err`): list, show and delete the controller's error reports.

use clap::Subcommand;
use serde::Deserialize;
use strata_api::types::ErrorReportDelete;
use strata_client::calls;

use crate::context::{out, parse, Ctx};
use crate::error::CliError;
use crate::resource::created_on;
use crate::table::Table;

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ErrCmd {
    /// Lists the error reports.
    #[command(visible_alias = "l")]
    List {
        /// Only reports of these nodes.
        #[arg(short = 'n', long = "nodes", num_args = 1..)]
        nodes: Vec<String>,
        /// Only reports since: a date (YYYY-MM-DD) or an age (30m, 12h, 3d; a bare number is days).
        #[arg(short = 's', long)]
        since: Option<String>,
        /// Only reports up to: a date (YYYY-MM-DD) or an age.
        #[arg(short = 't', long)]
        to: Option<String>,
        /// Only these report ids (or their beginnings).
        #[arg(short = 'i', long = "report-id", num_args = 1..)]
        report_id: Vec<String>,
        /// Print each report's whole text.
        #[arg(short = 'f', long)]
        full: bool,
        /// Generate pastable output (ASCII, no colours).
        #[arg(short = 'p', long)]
        pastable: bool,
    },
    /// Prints the whole text of an error report.
    #[command(visible_alias = "s")]
    Show { report_id: String },
    /// Deletes error reports: the ones named, or those of a time range, nodes, exception or
    /// version.
    #[command(visible_alias = "d")]
    Delete {
        /// Report ids to delete.
        ids: Vec<String>,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long = "nodes", num_args = 1..)]
        nodes: Vec<String>,
        #[arg(long)]
        exception: Option<String>,
        #[arg(long)]
        version: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
struct Report {
    #[serde(default)]
    node_name: String,
    error_time: i64,
    #[serde(default)]
    filename: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    exception: String,
    #[serde(default)]
    exception_message: String,
}

impl Report {
    fn id(&self) -> &str {
        self.filename
            .strip_prefix("ErrorReport-")
            .and_then(|s| s.strip_suffix(".log"))
            .unwrap_or(&self.filename)
    }
}

/// Milliseconds since the epoch for `YYYY-MM-DD` or an age before now (`30m`, `12h`, `3d`, `3`).
fn time_arg(text: &str, now_ms: i64) -> Result<i64, CliError> {
    let t = text.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
        return Ok(midnight.and_utc().timestamp_millis());
    }
    let (num, unit_ms) = match t.char_indices().last() {
        Some((i, 'm')) => (&t[..i], 60_000),
        Some((i, 'h')) => (&t[..i], 3_600_000),
        Some((i, 'd')) => (&t[..i], 86_400_000),
        _ => (t, 86_400_000),
    };
    let n: i64 = num.trim().parse().map_err(|_| {
        CliError::usage(format!(
            "'{text}' is neither a date (YYYY-MM-DD) nor an age such as 30m, 12h or 3d"
        ))
    })?;
    Ok(now_ms - n * unit_ms)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn render(list: &[Report], style: crate::output::Style) -> String {
    let mut t = Table::new(style);
    t.column("Id")
        .column("Datetime")
        .column("Node")
        .column("Exception");
    for r in list {
        t.row(vec![
            t.cell(r.id().to_string(), None),
            t.cell(created_on(Some(r.error_time)), None),
            t.cell(r.node_name.clone(), None),
            t.cell(format!("{}: {}", r.exception, r.exception_message), None),
        ]);
    }
    t.render()
}

pub async fn run(ctx: &mut Ctx, cmd: ErrCmd) -> Result<i32, CliError> {
    match cmd {
        ErrCmd::List {
            nodes,
            since,
            to,
            report_id,
            full,
            pastable,
        } => {
            let since = since.map(|s| time_arg(&s, now_ms())).transpose()?;
            let to = to.map(|t| time_arg(&t, now_ms())).transpose()?;
            let raw = ctx
                .fetch(calls::error_reports(full, &nodes, since, to))
                .await?;
            let mut list: Vec<Report> = parse(&raw, "error report list")?;
            if !report_id.is_empty() {
                list.retain(|r| report_id.iter().any(|i| r.id().starts_with(i.as_str())));
            }
            let style = ctx.style(pastable);
            ctx.show_list(&raw, || {
                let mut text = render(&list, style);
                if full {
                    for r in &list {
                        text.push_str(r.text.as_deref().unwrap_or_default());
                        text.push('\n');
                    }
                }
                Ok(text)
            })
        }
        ErrCmd::Show { report_id } => {
            let raw = ctx.fetch(calls::error_report(&report_id)).await?;
            if ctx.settings.machine {
                ctx.machine(&crate::output::machine_list(&raw));
                return Ok(crate::error::OK);
            }
            let list: Vec<Report> = parse(&raw, "error report")?;
            for r in &list {
                out(&format!("{}\n", r.text.as_deref().unwrap_or_default()));
            }
            Ok(crate::error::OK)
        }
        ErrCmd::Delete {
            ids,
            since,
            to,
            nodes,
            exception,
            version,
        } => {
            let d = ErrorReportDelete {
                since: since.map(|s| time_arg(&s, now_ms())).transpose()?,
                to: to.map(|t| time_arg(&t, now_ms())).transpose()?,
                nodes,
                exception,
                version,
                ids,
            };
            if d == ErrorReportDelete::default() {
                return Err(CliError::usage("Name the reports to delete: ids, or --since/--to/--nodes/--exception/--version"));
            }
            ctx.send(vec![calls::error_reports_delete(&d)]).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_dates_or_ages() {
        let now = 10 * 86_400_000;
        assert_eq!(time_arg("3d", now).unwrap(), 7 * 86_400_000);
        assert_eq!(time_arg("2", now).unwrap(), 8 * 86_400_000);
        assert_eq!(time_arg("12h", now).unwrap(), now - 12 * 3_600_000);
        assert_eq!(time_arg("30m", now).unwrap(), now - 30 * 60_000);
        assert_eq!(time_arg("1970-01-02", now).unwrap(), 86_400_000);
        assert!(time_arg("yesterday", now).is_err());
    }
}
