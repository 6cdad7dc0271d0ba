//! What DRBD this host can run: the loaded kernel module (`/proc/drbd`) and the installed
//! utilities (`drbdadm --version`), as pure parsers plus [`detect`].
//!
//! `drbdadm --version` prints shell-style `KEY=VALUE` lines, e.g. (drbd-utils 9.22.0 here, no
//! module loaded):
//!
//! ```text
//! DRBDADM_API_VERSION=2
//! DRBD_KERNEL_VERSION_CODE=0x000000
//! DRBD_KERNEL_VERSION=0
//! DRBDADM_VERSION_CODE=0x091600
//! DRBDADM_VERSION=9.22.0
//! ```
//!
//! The codes are `0xMMmmpp`. Its kernel version is what drbdadm could find out about a module
//! (0 when none is loaded and `modinfo` knows none); only `/proc/drbd` says what is loaded, so
//! that is what decides.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use strata_exec::{Cmd, CommandRunner, ExecError};

/// Where the loaded module reports its version.
pub const PROC_DRBD: &str = "/proc/drbd";

/// A DRBD version (`9.2.8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// Parses `9.2.8`, also with a suffix (`9.0.29-1`, `9.2.0-rc.7`) or without a patch
    /// level (`9.2`).
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let mut parts = s[..end].split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some("") | None => 0,
            Some(p) => p.parse().ok()?,
        };
        Some(Version::new(major, minor, patch))
    }

    /// From a `0xMMmmpp` version code; `None` for 0 (nothing known).
    pub fn from_code(code: &str) -> Option<Version> {
        let hex = code.trim().strip_prefix("0x").unwrap_or(code.trim());
        let n = u32::from_str_radix(hex, 16).ok()?;
        (n != 0).then(|| Version::new(n >> 16, (n >> 8) & 0xff, n & 0xff))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The module version from the contents of `/proc/drbd`; its first line reads
/// `version: 9.2.8 (api:2/proto:86-122)` (DRBD 9) or `version: 8.4.11 (api:1/proto:86-101)`.
pub fn parse_proc_drbd(text: &str) -> Option<Version> {
    let first = text.lines().next()?;
    let rest = first.trim().strip_prefix("version:")?;
    Version::parse(rest.split_whitespace().next()?)
}

/// What `drbdadm --version` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UtilsVersion {
    /// drbd-utils (`DRBDADM_VERSION_CODE`, else `DRBDADM_VERSION`).
    pub utils: Option<Version>,
    /// The module drbdadm found (`DRBD_KERNEL_VERSION_CODE`); `None` when it found none.
    pub kernel: Option<Version>,
}

/// Parses the output of `drbdadm --version`.
pub fn parse_drbdadm_version(text: &str) -> UtilsVersion {
    let mut v = UtilsVersion::default();
    let mut utils_text = None;
    for line in text.lines() {
        let Some((k, val)) = line.trim().split_once('=') else {
            continue;
        };
        match k {
            "DRBDADM_VERSION_CODE" => v.utils = Version::from_code(val),
            "DRBDADM_VERSION" => utils_text = Version::parse(val),
            "DRBD_KERNEL_VERSION_CODE" => v.kernel = Version::from_code(val),
            _ => {}
        }
    }
    if v.utils.is_none() {
        v.utils = utils_text;
    }
    v
}

/// Whether this host can run DRBD resources, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capability {
    /// The loaded kernel module.
    pub kernel: Option<Version>,
    /// drbd-utils.
    pub utils: Option<Version>,
    /// A DRBD 9 module is loaded and drbd-utils 9 are installed.
    pub supported: bool,
    /// What to do about it when not supported.
    pub reason: Option<String>,
}

/// Detects the DRBD capability of this host from `proc_drbd` (normally [`PROC_DRBD`]) and
/// `drbdadm --version`.
pub fn detect(runner: &dyn CommandRunner, proc_drbd: &Path) -> Capability {
    let kernel = std::fs::read_to_string(proc_drbd)
        .ok()
        .and_then(|t| parse_proc_drbd(&t));
    let adm = if runner.available("drbdadm") {
        // Some versions exit non-zero here; the output is what counts.
        match runner.run_any(&Cmd::new("drbdadm").arg("--version")) {
            Ok(out) => Some(parse_drbdadm_version(&out.stdout)),
            Err(ExecError::NotFound { .. }) => None,
            Err(_) => Some(UtilsVersion::default()),
        }
    } else {
        None
    };
    capability(kernel, adm)
}

/// The verdict from what was found: the loaded module (`kernel`) and what `drbdadm --version`
/// said (`None` when drbdadm is not installed).
pub fn capability(kernel: Option<Version>, adm: Option<UtilsVersion>) -> Capability {
    let utils = adm.and_then(|a| a.utils);
    let mut reasons = Vec::new();
    match (&adm, utils) {
        (None, _) => {
            reasons.push("drbd-utils are not installed (drbdadm was not found)".to_string())
        }
        (Some(_), None) => {
            reasons.push("drbdadm did not report its version; reinstall drbd-utils".to_string())
        }
        (Some(_), Some(u)) if u.major < 9 => reasons.push(format!(
            "drbd-utils {u} are too old; DRBD 9 needs drbd-utils 9 or newer"
        )),
        _ => {}
    }
    match kernel {
        None => {
            let installed = adm.and_then(|a| a.kernel);
            reasons.push(match installed {
                Some(v) if v.major >= 9 || (v.major == 8 && v.minor >= 4) => format!(
                    "the DRBD kernel module is not loaded (drbdadm knows of {v}; modprobe drbd)"
                ),
                Some(v) => format!(
                    "the DRBD kernel module is not loaded, and the one installed is {v}; DRBD 9 or 8.4 is needed (install drbd-dkms or a kernel with DRBD 9, then modprobe drbd)"
                ),
                None => "the DRBD kernel module is not loaded (modprobe drbd)".to_string(),
            });
        }
        // 8.4 (the in-tree module) runs resources of at most two nodes; the planner keeps
        // them to that.
        Some(k) if k.major == 8 && k.minor >= 4 => {}
        Some(k) if k.major != 9 => reasons.push(format!(
            "the loaded DRBD kernel module is {k}; DRBD 9 or 8.4 is needed (load a DRBD 9 module, e.g. from drbd-dkms, or the kernel's own DRBD 8.4)"
        )),
        Some(_) => {}
    }
    Capability {
        kernel,
        utils,
        supported: reasons.is_empty(),
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_exec::{Output, ScriptedRunner};

    const ADM_HERE: &str = "DRBDADM_BUILDTAG=GIT-hash:\\ 409097fe02187f83790b88ac3e0d94f3c167adab\\ reproducible\\ build\\,\\ 2023-01-09\\ 14:51:18
DRBDADM_API_VERSION=2
DRBD_KERNEL_VERSION_CODE=0x000000
DRBD_KERNEL_VERSION=0
DRBDADM_VERSION_CODE=0x091600
DRBDADM_VERSION=9.22.0
";

    const ADM_WITH_MODULE: &str = "DRBDADM_API_VERSION=2
DRBD_KERNEL_VERSION_CODE=0x090208
DRBD_KERNEL_VERSION=9.2.8
DRBDADM_VERSION_CODE=0x091b00
DRBDADM_VERSION=9.27.0
";

    const PROC9: &str = "version: 9.2.8 (api:2/proto:86-122)
GIT-hash: e163b05a76254c0f51f999970e861d72bb16409a build by @buildsystem, 2024-03-06 10:56:51
Transports (api:20): tcp (9.2.8)
";
    const PROC84: &str = "version: 8.4.11 (api:1/proto:86-101)
srcversion: 2AE1F1D0A0B7C3A5F3D8C47
";

    #[test]
    fn versions() {
        assert_eq!(Version::parse("9.2.8"), Some(Version::new(9, 2, 8)));
        assert_eq!(Version::parse("9.0.29-1"), Some(Version::new(9, 0, 29)));
        assert_eq!(Version::parse("9.2.0-rc.7"), Some(Version::new(9, 2, 0)));
        assert_eq!(Version::parse("9.2"), Some(Version::new(9, 2, 0)));
        assert_eq!(Version::parse("nine"), None);
        assert_eq!(Version::from_code("0x091600"), Some(Version::new(9, 22, 0)));
        assert_eq!(Version::from_code("0x080411"), Some(Version::new(8, 4, 17)));
        assert_eq!(Version::from_code("0x000000"), None);
        assert!(Version::new(9, 10, 0) > Version::new(9, 2, 8));
        assert_eq!(Version::new(9, 22, 0).to_string(), "9.22.0");
    }

    #[test]
    fn proc_drbd() {
        assert_eq!(parse_proc_drbd(PROC9), Some(Version::new(9, 2, 8)));
        assert_eq!(parse_proc_drbd(PROC84), Some(Version::new(8, 4, 11)));
        assert_eq!(
            parse_proc_drbd("version: 9.0.29-1 (api:2/proto:86-120)\n"),
            Some(Version::new(9, 0, 29))
        );
        assert_eq!(parse_proc_drbd(""), None);
        assert_eq!(parse_proc_drbd("garbage\n"), None);
    }

    #[test]
    fn drbdadm_version() {
        let v = parse_drbdadm_version(ADM_HERE);
        assert_eq!(v.utils, Some(Version::new(9, 22, 0)));
        assert_eq!(v.kernel, None);
        let v = parse_drbdadm_version(ADM_WITH_MODULE);
        assert_eq!(v.utils, Some(Version::new(9, 27, 0)));
        assert_eq!(v.kernel, Some(Version::new(9, 2, 8)));
        let v = parse_drbdadm_version("DRBDADM_VERSION=9.5.0\n");
        assert_eq!(v.utils, Some(Version::new(9, 5, 0)));
    }

    fn runner_with(out: &str) -> ScriptedRunner {
        let r = ScriptedRunner::new();
        r.with_programs(&["drbdadm"])
            .expect(&["drbdadm", "--version"], Output::ok(out));
        r
    }

    fn proc_file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn supported_with_9_module_and_utils() {
        let p = proc_file(PROC9);
        let c = detect(&runner_with(ADM_WITH_MODULE), p.path());
        assert_eq!(
            c,
            Capability {
                kernel: Some(Version::new(9, 2, 8)),
                utils: Some(Version::new(9, 27, 0)),
                supported: true,
                reason: None,
            }
        );
    }

    #[test]
    fn no_module_loaded() {
        let c = detect(&runner_with(ADM_HERE), Path::new("/nonexistent/proc/drbd"));
        assert!(!c.supported);
        assert_eq!(c.kernel, None);
        assert_eq!(c.utils, Some(Version::new(9, 22, 0)));
        assert_eq!(
            c.reason.as_deref(),
            Some("the DRBD kernel module is not loaded (modprobe drbd)")
        );
        let c = capability(None, Some(parse_drbdadm_version(ADM_WITH_MODULE)));
        assert!(c.reason.unwrap().contains("knows of 9.2.8; modprobe drbd"));
    }

    #[test]
    fn drbd_84_is_supported_and_83_is_not() {
        let p = proc_file(PROC84);
        let c = detect(&runner_with(ADM_HERE), p.path());
        assert!(c.supported, "{:?}", c.reason);
        assert_eq!(c.kernel, Some(Version::new(8, 4, 11)));
        let c = capability(
            Some(Version::new(8, 3, 16)),
            Some(parse_drbdadm_version(ADM_HERE)),
        );
        assert!(!c.supported);
        let reason = c.reason.unwrap();
        assert!(reason.contains("8.3.16"), "{reason}");
        assert!(reason.contains("DRBD 9 or 8.4 is needed"), "{reason}");
    }

    #[test]
    fn no_utils() {
        let p = proc_file(PROC9);
        let c = detect(&ScriptedRunner::new(), p.path());
        assert!(!c.supported);
        assert_eq!(c.kernel, Some(Version::new(9, 2, 8)));
        assert_eq!(c.utils, None);
        assert_eq!(
            c.reason.as_deref(),
            Some("drbd-utils are not installed (drbdadm was not found)")
        );
        let c = capability(None, None);
        assert_eq!(
            c.reason.as_deref(),
            Some("drbd-utils are not installed (drbdadm was not found); the DRBD kernel module is not loaded (modprobe drbd)")
        );
    }

    #[test]
    fn old_utils() {
        let c = capability(
            Some(Version::new(9, 2, 8)),
            Some(UtilsVersion {
                utils: Some(Version::new(8, 9, 10)),
                kernel: None,
            }),
        );
        assert!(!c.supported);
        assert!(c.reason.unwrap().contains("drbd-utils 8.9.10 are too old"));
    }

    #[test]
    fn real_host() {
        strata_exec::needs!(needs::tool("drbdadm", "drbd-utils"));
        // This machine: drbd-utils 9.22 installed, no DRBD module.
        let c = detect(&strata_exec::RealRunner, Path::new(PROC_DRBD));
        assert!(c.utils.is_some_and(|u| u.major >= 9), "{c:?}");
        if c.kernel.is_none() {
            assert!(!c.supported);
            assert!(c.reason.unwrap().contains("modprobe drbd"));
        }
    }
}
