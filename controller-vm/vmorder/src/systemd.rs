//! The order of the guests' starts, expressed to systemd over D-Bus: each guest is a transient
//! unit `strata-guest-<name>.service` whose job runs `strata-vmorder start-guest <name>`;
//! the units of guests that need the controller require and come after
//! `strata-controller-ready.target`, which systemd reaches only once
//! `strata-controller-health.service` saw the controller answer. systemd holds those jobs;
//! nothing here sleeps.

use std::collections::HashMap;

use futures_util::StreamExt;
use zbus::zvariant::{OwnedObjectPath, Value};

/// The target guests that need the controller wait for.
pub const READY_TARGET: &str = "strata-controller-ready.target";

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    fn subscribe(&self) -> zbus::Result<()>;

    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;

    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, Value<'_>)],
        aux: &[(&str, &[(&str, Value<'_>)])],
    ) -> zbus::Result<OwnedObjectPath>;

    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
trait Unit {
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
}

/// systemd's unit name for guest `name`: characters outside `[A-Za-z0-9:_.]` written as
/// `\xNN`, as `systemd-escape` does.
pub fn guest_unit(name: &str) -> String {
    let mut out = String::from("strata-guest-");
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b':' || b == b'_' || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push_str(".service");
    out
}

/// One guest's unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestUnit {
    pub guest: String,
    pub unit: String,
    /// The program and its arguments that start the guest.
    pub argv: Vec<String>,
    /// Whether the start waits for the controller.
    pub after_controller: bool,
}

/// What became of a queued start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// A job was queued: its object path.
    Job(String),
    /// The unit is already active (or activating) from an earlier run of the daemon.
    AlreadyActive,
}

/// A connection to systemd on the system bus, subscribed to its job signals.
pub struct Systemd {
    manager: ManagerProxy<'static>,
    conn: zbus::Connection,
}

/// The stream of finished jobs: (job path, unit, result).
pub type JobResults =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = (String, String, String)> + Send>>;

impl Systemd {
    pub async fn connect() -> Result<Systemd, String> {
        let conn = zbus::Connection::system()
            .await
            .map_err(|e| format!("cannot reach systemd on the system bus: {e}"))?;
        let manager = ManagerProxy::new(&conn)
            .await
            .map_err(|e| format!("systemd's manager: {e}"))?;
        manager
            .subscribe()
            .await
            .map_err(|e| format!("cannot subscribe to systemd's jobs: {e}"))?;
        Ok(Systemd { manager, conn })
    }

    /// Every job systemd finishes from now on (subscribe before queueing, so none is missed).
    pub async fn job_results(&self) -> Result<JobResults, String> {
        let stream = self
            .manager
            .receive_job_removed()
            .await
            .map_err(|e| format!("cannot follow systemd's jobs: {e}"))?;
        Ok(Box::pin(stream.filter_map(|sig| async move {
            let a = sig.args().ok()?;
            Some((a.job.to_string(), a.unit.clone(), a.result.clone()))
        })))
    }

    /// The active state of `unit` (`None`: systemd has not loaded it).
    pub async fn active_state(&self, unit: &str) -> Result<Option<String>, String> {
        let path = match self.manager.get_unit(unit).await {
            Ok(p) => p,
            Err(e) if is_error(&e, "org.freedesktop.systemd1.NoSuchUnit") => return Ok(None),
            Err(e) => return Err(format!("systemd: {unit}: {e}")),
        };
        let unit_proxy = UnitProxy::builder(&self.conn)
            .path(path)
            .map_err(|e| e.to_string())?
            .build()
            .await
            .map_err(|e| e.to_string())?;
        unit_proxy
            .active_state()
            .await
            .map(Some)
            .map_err(|e| format!("systemd: {unit}: {e}"))
    }

    /// Queues the start of a guest's transient unit.
    pub async fn start_guest(&self, g: &GuestUnit) -> Result<Queued, String> {
        match self.active_state(&g.unit).await?.as_deref() {
            Some("active") | Some("activating") | Some("reloading") => {
                return Ok(Queued::AlreadyActive)
            }
            Some(_) => {
                // A failed unit of an earlier run: cleared so that its name can be used.
                let _ = self.manager.reset_failed_unit(&g.unit).await;
            }
            None => {}
        }
        let description = format!("Start guest {} in order (strata-vmorder)", g.guest);
        let exec = vec![(g.argv[0].clone(), g.argv.clone(), false)];
        let mut props: Vec<(&str, Value<'_>)> = vec![
            ("Description", Value::from(description.as_str())),
            ("Type", Value::from("oneshot")),
            ("RemainAfterExit", Value::from(true)),
            ("TimeoutStartUSec", Value::from(u64::MAX)),
            ("ExecStart", Value::from(exec)),
        ];
        if g.after_controller {
            props.push(("Requires", Value::from(vec![READY_TARGET])));
            props.push(("After", Value::from(vec![READY_TARGET])));
        }
        match self
            .manager
            .start_transient_unit(&g.unit, "fail", &props, &[])
            .await
        {
            Ok(job) => Ok(Queued::Job(job.to_string())),
            // Made by an earlier run of the daemon and still waiting (its start job queued,
            // e.g. for the controller): another start request joins that job.
            Err(e) if is_error(&e, "org.freedesktop.systemd1.UnitExists") => {
                let job = self
                    .manager
                    .start_unit(&g.unit, "replace")
                    .await
                    .map_err(|e| format!("systemd: {}: {e}", g.unit))?;
                Ok(Queued::Job(job.to_string()))
            }
            Err(e) => Err(format!("systemd refused the unit {}: {e}", g.unit)),
        }
    }
}

/// Whether `e` is systemd's D-Bus error `name`.
fn is_error(e: &zbus::Error, name: &str) -> bool {
    matches!(e, zbus::Error::MethodError(n, _, _) if n.as_str() == name)
}

/// Which guest each queued job belongs to.
pub type Jobs = HashMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_escape_like_systemd() {
        assert_eq!(guest_unit("web1"), "strata-guest-web1.service");
        assert_eq!(guest_unit("100"), "strata-guest-100.service");
        assert_eq!(guest_unit("db-1.x"), "strata-guest-db\\x2d1.x.service");
        assert_eq!(guest_unit(".a"), "strata-guest-\\x2ea.service");
        assert_eq!(guest_unit("ü"), "strata-guest-\\xc3\\xbc.service");
    }
}
