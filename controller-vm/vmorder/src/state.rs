//! What the daemon decided, kept in `<state dir>/state.json` (written whole: temporary file,
//! rename) for `strata-vmorder status`; every decision also goes to the journal.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The file's name in the state directory.
pub const FILE: &str = "state.json";

/// The controller VM as this host sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControllerStatus {
    pub name: String,
    /// `active` (runs here), `starting`, `promoting`, `standby`, `waiting`.
    pub role: String,
    /// Why, in words.
    pub detail: String,
    /// Since when (seconds since the epoch).
    pub since: u64,
}

/// One guest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuestStatus {
    pub name: String,
    pub unit: String,
    /// `at-once` or `after-controller`.
    pub plan: String,
    /// `queued`, `started`, `already-active`, or `failed: ...`.
    pub result: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub node: String,
    pub pid: u32,
    pub controller_vm: ControllerStatus,
    pub guests: Vec<GuestStatus>,
    /// The last decisions, newest last: (seconds since the epoch, text).
    pub history: Vec<(u64, String)>,
}

const HISTORY: usize = 50;

/// The status, shared between the daemon's parts and written at each change.
#[derive(Clone)]
pub struct Shared {
    inner: Arc<Mutex<Status>>,
    path: PathBuf,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Shared {
    pub fn new(dir: &Path, status: Status) -> Shared {
        let s = Shared {
            inner: Arc::new(Mutex::new(status)),
            path: dir.join(FILE),
        };
        s.write();
        s
    }

    /// Changes the status with `f` and writes it.
    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        {
            let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut st);
        }
        self.write();
    }

    /// Sets the controller VM's role; logs and records it when it changed.
    pub fn controller(&self, role: &str, detail: &str) {
        self.update(|st| {
            let c = &mut st.controller_vm;
            if c.role == role && c.detail == detail {
                return;
            }
            tracing::info!(vm = %c.name, role, "{detail}");
            c.role = role.to_string();
            c.detail = detail.to_string();
            c.since = now();
            push_history(st, format!("controller VM: {role}: {detail}"));
        });
    }

    /// Records a guest's result.
    pub fn guest(&self, name: &str, result: &str) {
        self.update(|st| {
            if let Some(g) = st.guests.iter_mut().find(|g| g.name == name) {
                if g.result == result {
                    return;
                }
                g.result = result.to_string();
            }
            push_history(st, format!("guest {name}: {result}"));
        });
    }

    pub fn snapshot(&self) -> Status {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn write(&self) {
        let st = self.snapshot();
        if let Err(e) = write_atomic(&self.path, &st) {
            tracing::warn!("cannot write {}: {e}", self.path.display());
        }
    }
}

fn push_history(st: &mut Status, text: String) {
    st.history.push((now(), text));
    let over = st.history.len().saturating_sub(HISTORY);
    st.history.drain(..over);
}

fn write_atomic(path: &Path, st: &Status) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(st)?)?;
    std::fs::rename(&tmp, path)
}

/// Reads the status the daemon wrote in `dir`.
pub fn read(dir: &Path) -> Result<Status, String> {
    let path = dir.join(FILE);
    let text = std::fs::read(&path).map_err(|e| {
        format!(
            "cannot read {}: {e} (is strata-vmorder running? systemctl status strata-vmorder)",
            path.display()
        )
    })?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The status as lines for a person.
pub fn render(st: &Status, alive: bool) -> String {
    let mut out = String::new();
    let c = &st.controller_vm;
    out += &format!(
        "node {} — strata-vmorder pid {}{}\n",
        st.node,
        st.pid,
        if alive { "" } else { " (not running)" }
    );
    out += &format!(
        "controller VM {}: {} since {}\n    {}\n",
        c.name,
        c.role,
        age(c.since),
        c.detail
    );
    if st.guests.is_empty() {
        out += "guests: none configured\n";
    } else {
        out += "guests:\n";
        for g in &st.guests {
            out += &format!(
                "    {:<20} {:<17} {:<15} {}\n",
                g.name, g.plan, g.result, g.unit
            );
        }
    }
    if !st.history.is_empty() {
        out += "recent decisions:\n";
        for (t, text) in st.history.iter().rev().take(10).rev() {
            out += &format!("    {} {text}\n", age(*t));
        }
    }
    out
}

fn age(t: u64) -> String {
    let secs = now().saturating_sub(t);
    match secs {
        0..=119 => format!("{secs}s ago"),
        120..=7199 => format!("{}m ago", secs / 60),
        _ => format!("{}h ago", secs / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_written_read_and_rendered() {
        let dir = tempfile::tempdir().unwrap();
        let s = Shared::new(
            dir.path(),
            Status {
                node: "alpha".into(),
                pid: 42,
                controller_vm: ControllerStatus {
                    name: "ctl".into(),
                    ..Default::default()
                },
                guests: vec![GuestStatus {
                    name: "web1".into(),
                    unit: "strata-guest-web1.service".into(),
                    plan: "after-controller".into(),
                    result: "queued".into(),
                }],
                history: vec![],
            },
        );
        s.controller("standby", "beta holds the lock");
        s.controller("standby", "beta holds the lock");
        s.guest("web1", "started");
        let st = read(dir.path()).unwrap();
        assert_eq!(st.controller_vm.role, "standby");
        assert_eq!(st.guests[0].result, "started");
        assert_eq!(st.history.len(), 2, "{:?}", st.history);
        let text = render(&st, true);
        assert!(text.contains("controller VM ctl: standby"), "{text}");
        assert!(text.contains("web1"), "{text}");
        assert!(render(&st, false).contains("(not running)"));
        for i in 0..60 {
            s.controller("waiting", &format!("step {i}"));
        }
        assert_eq!(read(dir.path()).unwrap().history.len(), HISTORY);
        let err = read(&dir.path().join("nope")).unwrap_err();
        assert!(err.contains("is strata-vmorder running"), "{err}");
    }
}
