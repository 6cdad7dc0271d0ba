//! Error reports: every internal error of the controller and every failure a satellite
//! reports is written down once, with when, where, what and the details (for a failed
//! command: the command line, its exit status and its output), under an id that the
//! ApiCallRc entries of the answer carry in `error_report_ids`, as LINSTOR's do.
//!
//! Reports are files in `<data dir>/error-reports/` (one JSON document each), kept within
//! a bound on their count and age; an index of their summaries lives in memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a report comes from: the controller itself, or a satellite's failure it received.
pub const MODULE_CONTROLLER: &str = "CONTROLLER";
pub const MODULE_SATELLITE: &str = "SATELLITE";

/// Reports kept at most, and for at most this long; the oldest go first.
pub const DEFAULT_MAX_COUNT: usize = 2000;
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The same failure reported again within this time reuses its report.
const REPEAT_WINDOW_MS: i64 = 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// `<instance>-<origin>-<sequence>`, as LINSTOR's ids look.
    pub id: String,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// The node the failure happened on (`Controller` for the controller's own).
    pub node: String,
    pub module: String,
    /// A short name for the kind of failure.
    pub exception: String,
    /// One line: what failed.
    pub message: String,
    /// Everything known: the command run, its status and output, the object concerned.
    pub details: String,
    pub version: String,
}

impl ErrorReport {
    /// The file name LINSTOR's clients derive the id from (`ErrorReport-<id>.log`).
    pub fn filename(&self) -> String {
        format!("ErrorReport-{}.log", self.id)
    }

    /// The whole report as text, as `linstor error-reports show` prints it.
    pub fn text(&self) -> String {
        format!(
            "ERROR REPORT {}\n\n\
             ============================================================\n\n\
             Application:    strata controller\n\
             Version:        {}\n\
             Node:           {}\n\
             Module:         {}\n\
             Error time:     {}\n\n\
             Reported error:\n\
             ===============\n\n\
             Category:       {}\n\
             Error message:  {}\n\n\
             Details:\n{}\n",
            self.id,
            self.version,
            self.node,
            self.module,
            format_time(self.time_ms),
            self.exception,
            self.message,
            indent(&self.details)
        )
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn now_ms() -> i64 {
    use strata_model::plan::Env;
    crate::env::RealEnv.now_ms()
}

/// Which reports a listing or a deletion selects.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Upper-cased node names; empty: every node.
    pub nodes: Vec<String>,
    pub since_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Ids, or their beginnings; empty: every id.
    pub ids: Vec<String>,
    pub exception: Option<String>,
    pub version: Option<String>,
}

impl Selection {
    /// Whether nothing narrows the selection down.
    pub fn is_everything(&self) -> bool {
        self.nodes.is_empty()
            && self.since_ms.is_none()
            && self.to_ms.is_none()
            && self.ids.is_empty()
            && self.exception.is_none()
            && self.version.is_none()
    }

    fn matches(&self, r: &ErrorReport) -> bool {
        (self.nodes.is_empty() || self.nodes.contains(&r.node.to_ascii_uppercase()))
            && self.since_ms.is_none_or(|s| r.time_ms >= s)
            && self.to_ms.is_none_or(|t| r.time_ms <= t)
            && (self.ids.is_empty() || self.ids.iter().any(|i| r.id.starts_with(i.as_str())))
            && self.exception.as_ref().is_none_or(|e| &r.exception == e)
            && self.version.as_ref().is_none_or(|v| &r.version == v)
    }
}

pub struct ErrorReports {
    dir: PathBuf,
    instance: String,
    seq: AtomicU64,
    max_count: usize,
    max_age: Duration,
    /// Every report kept, oldest first.
    index: Mutex<Vec<ErrorReport>>,
}

impl ErrorReports {
    /// Opens (creating) the report directory under `data_dir` and reads what it holds.
    pub fn open(data_dir: &Path) -> ErrorReports {
        Self::open_bounded(data_dir, DEFAULT_MAX_COUNT, DEFAULT_MAX_AGE)
    }

    pub fn open_bounded(data_dir: &Path, max_count: usize, max_age: Duration) -> ErrorReports {
        let dir = data_dir.join("error-reports");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::error!(
                "cannot create {}: {e}; error reports are kept in memory only",
                dir.display()
            );
        }
        let mut index: Vec<ErrorReport> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        index.sort_by(|a: &ErrorReport, b| a.time_ms.cmp(&b.time_ms).then(a.id.cmp(&b.id)));
        // A new instance id per start, so that ids never repeat across restarts.
        let instance = format!("{:08X}", (now_ms() / 1000) as u32 ^ std::process::id());
        let reports = ErrorReports {
            dir,
            instance,
            seq: AtomicU64::new(0),
            max_count,
            max_age,
            index: Mutex::new(index),
        };
        reports.prune(&mut reports.index.lock().unwrap_or_else(|e| e.into_inner()));
        reports
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("ErrorReport-{id}.json"))
    }

    fn prune(&self, index: &mut Vec<ErrorReport>) {
        let oldest = now_ms() - self.max_age.as_millis() as i64;
        let too_many = index.len().saturating_sub(self.max_count);
        let mut drop = 0;
        while drop < index.len() && (drop < too_many || index[drop].time_ms < oldest) {
            drop += 1;
        }
        for r in index.drain(..drop) {
            let _ = std::fs::remove_file(self.path_of(&r.id));
        }
    }

    /// Records a failure and returns its report id. The same failure (node, module and
    /// message) seen again within the hour keeps its first report.
    pub fn record(
        &self,
        node: &str,
        module: &str,
        exception: &str,
        message: &str,
        details: &str,
    ) -> String {
        let now = now_ms();
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = index
            .iter()
            .rev()
            .take_while(|r| now - r.time_ms < REPEAT_WINDOW_MS)
            .find(|r| {
                r.node == node && r.module == module && r.message == message && r.details == details
            })
        {
            return r.id.clone();
        }
        let origin = if module == MODULE_CONTROLLER { 0 } else { 1 };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let report = ErrorReport {
            id: format!("{}-{origin:05}-{seq:06}", self.instance),
            time_ms: now,
            node: node.to_string(),
            module: module.to_string(),
            exception: exception.to_string(),
            message: message.to_string(),
            details: details.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        tracing::warn!(id = %report.id, node, "error report: {message}");
        let path = self.path_of(&report.id);
        let tmp = path.with_extension("json.tmp");
        let written = serde_json::to_vec_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&tmp, b))
            .and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::error!("cannot write error report {}: {e}", path.display());
        }
        let id = report.id.clone();
        index.push(report);
        self.prune(&mut index);
        id
    }

    /// How many reports are kept, by node and module.
    pub fn counts(&self) -> std::collections::BTreeMap<(String, String), u64> {
        let mut out = std::collections::BTreeMap::new();
        for r in self.index.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            *out.entry((r.node.clone(), r.module.clone())).or_default() += 1;
        }
        out
    }

    /// The reports `sel` selects, oldest first.
    pub fn list(&self, sel: &Selection) -> Vec<ErrorReport> {
        self.index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| sel.matches(r))
            .cloned()
            .collect()
    }

    /// Deletes the reports `sel` selects; answers how many went.
    pub fn delete(&self, sel: &Selection) -> Vec<String> {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let mut gone = Vec::new();
        index.retain(|r| {
            if sel.matches(r) {
                let _ = std::fs::remove_file(self.path_of(&r.id));
                gone.push(r.id.clone());
                false
            } else {
                true
            }
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_kept_found_deduplicated_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let reports = ErrorReports::open_bounded(dir.path(), 3, DEFAULT_MAX_AGE);
        let a = reports.record(
            "alpha",
            MODULE_SATELLITE,
            "StorageError",
            "lvcreate failed",
            "lvcreate -n x vg: exit status 5\nstderr: no space",
        );
        let again = reports.record(
            "alpha",
            MODULE_SATELLITE,
            "StorageError",
            "lvcreate failed",
            "lvcreate -n x vg: exit status 5\nstderr: no space",
        );
        assert_eq!(a, again, "the same failure keeps its report");
        let b = reports.record("beta", MODULE_SATELLITE, "StorageError", "other", "");
        assert_ne!(a, b);
        let all = reports.list(&Selection::default());
        assert_eq!(all.len(), 2);
        assert!(
            all[0].text().contains("lvcreate -n x vg"),
            "{}",
            all[0].text()
        );
        assert_eq!(all[0].filename(), format!("ErrorReport-{a}.log"));
        let only_beta = reports.list(&Selection {
            nodes: vec!["BETA".into()],
            ..Default::default()
        });
        assert_eq!(only_beta.len(), 1);
        assert_eq!(only_beta[0].id, b);
        // Read back after a restart.
        let reopened = ErrorReports::open_bounded(dir.path(), 3, DEFAULT_MAX_AGE);
        assert_eq!(reopened.list(&Selection::default()).len(), 2);
        // Bounded: the oldest goes, file and all.
        reports.record("c", MODULE_CONTROLLER, "Internal", "x1", "");
        reports.record("c", MODULE_CONTROLLER, "Internal", "x2", "");
        let kept = reports.list(&Selection::default());
        assert_eq!(kept.len(), 3);
        assert!(kept.iter().all(|r| r.id != a));
        assert!(!dir
            .path()
            .join(format!("error-reports/ErrorReport-{a}.json"))
            .exists());
        // Deleted by id prefix.
        let gone = reports.delete(&Selection {
            ids: vec![b.clone()],
            ..Default::default()
        });
        assert_eq!(gone, vec![b]);
        assert_eq!(reports.list(&Selection::default()).len(), 2);
    }
}
