//! What this host can do: storage providers and device layers, each unsupported one with the
//! reason a person can act on. DRBD is judged by the satellite's DRBD layer (`strata-drbd`
//! detection), not here.

use std::fs;
use std::path::Path;

use strata_exec::CommandRunner;
use strata_model::kinds::{LayerKind, ProviderKind};
use strata_model::observed::Capabilities;

/// Where the host's facts are read from; tests point it at a fake tree.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub proc_misc: String,
    pub loop_control: String,
    pub dev_zfs: String,
    pub os_release: String,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            proc_misc: "/proc/misc".into(),
            loop_control: "/dev/loop-control".into(),
            dev_zfs: "/dev/zfs".into(),
            os_release: "/etc/os-release".into(),
        }
    }
}

/// Whether `/proc/misc` lists the device-mapper control device.
pub fn has_device_mapper(proc_misc: &str) -> bool {
    proc_misc
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("device-mapper"))
}

/// `PRETTY_NAME` from os-release.
pub fn parse_os_release(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

pub fn detect(runner: &dyn CommandRunner, paths: &HostPaths) -> Capabilities {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let mut caps = Capabilities::default();
    caps.providers.push(ProviderKind::Diskless);
    caps.layers.push(LayerKind::Storage);
    caps.os_variant = parse_os_release(&read(&paths.os_release));

    let unsupported = |kind: ProviderKind, why: Vec<String>, caps: &mut Capabilities| {
        if why.is_empty() {
            caps.providers.push(kind);
        } else {
            caps.unsupported_providers.insert(kind, why);
        }
    };

    let mut file_why = Vec::new();
    if !runner.available("losetup") {
        file_why.push("'losetup' not found (install util-linux)".to_string());
    }
    if !Path::new(&paths.loop_control).exists() {
        file_why.push(format!(
            "{} does not exist (load the 'loop' kernel module)",
            paths.loop_control
        ));
    }
    unsupported(ProviderKind::File, file_why.clone(), &mut caps);
    unsupported(ProviderKind::FileThin, file_why, &mut caps);

    let mut lvm_why = Vec::new();
    if !runner.available("lvm") {
        lvm_why.push("'lvm' not found (install lvm2)".to_string());
    }
    if !has_device_mapper(&read(&paths.proc_misc)) {
        lvm_why.push(format!(
            "device-mapper is not available in the kernel ({} lists no device-mapper; load 'dm-mod')",
            paths.proc_misc
        ));
    }
    let mut thin_why = lvm_why.clone();
    if !runner.available("thin_check") {
        thin_why.push("'thin_check' not found (install thin-provisioning-tools)".to_string());
    }
    unsupported(ProviderKind::Lvm, lvm_why, &mut caps);
    unsupported(ProviderKind::LvmThin, thin_why, &mut caps);

    let mut zfs_why = Vec::new();
    if !runner.available("zfs") {
        zfs_why.push("'zfs' not found (install zfsutils-linux)".to_string());
    }
    if !Path::new(&paths.dev_zfs).exists() {
        zfs_why.push(format!(
            "{} does not exist (load the 'zfs' kernel module)",
            paths.dev_zfs
        ));
    }
    unsupported(ProviderKind::Zfs, zfs_why.clone(), &mut caps);
    unsupported(ProviderKind::ZfsThin, zfs_why, &mut caps);

    for kind in [
        ProviderKind::Spdk,
        ProviderKind::EbsTarget,
        ProviderKind::EbsInit,
    ] {
        caps.unsupported_providers
            .insert(kind, vec!["not supported by this implementation".into()]);
    }

    for layer in [
        LayerKind::Luks,
        LayerKind::Nvme,
        LayerKind::Writecache,
        LayerKind::Cache,
        LayerKind::Bcache,
    ] {
        caps.unsupported_layers
            .insert(layer, vec!["not supported by this implementation".into()]);
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_exec::ScriptedRunner;

    // Captured /proc/misc of a host without device-mapper, and one with it.
    const MISC_NO_DM: &str = "234 btrfs-control\n237 loop-control\n229 fuse\n";
    const MISC_DM: &str = "236 device-mapper\n237 loop-control\n";

    #[test]
    fn device_mapper_detection() {
        assert!(!has_device_mapper(MISC_NO_DM));
        assert!(has_device_mapper(MISC_DM));
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_os_release(
                "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
            ),
            Some("Debian GNU/Linux 12 (bookworm)".into())
        );
    }

    #[test]
    fn reasons_for_missing_tools_and_modules() {
        let dir = tempfile::tempdir().unwrap();
        let misc = dir.path().join("misc");
        fs::write(&misc, MISC_NO_DM).unwrap();
        let loop_control = dir.path().join("loop-control");
        fs::write(&loop_control, "").unwrap();
        let paths = HostPaths {
            proc_misc: misc.display().to_string(),
            loop_control: loop_control.display().to_string(),
            dev_zfs: dir.path().join("zfs").display().to_string(),
            os_release: dir.path().join("os-release").display().to_string(),
        };
        let runner = ScriptedRunner::new();
        runner.with_programs(&["losetup", "lvm"]);
        let caps = detect(&runner, &paths);
        assert!(caps.supports_provider(ProviderKind::FileThin));
        assert!(caps.supports_provider(ProviderKind::Diskless));
        assert!(!caps.supports_provider(ProviderKind::Lvm));
        assert!(caps
            .provider_reason(ProviderKind::Lvm)
            .contains("device-mapper"));
        assert!(caps
            .provider_reason(ProviderKind::LvmThin)
            .contains("thin_check"));
        assert!(caps
            .provider_reason(ProviderKind::Zfs)
            .contains("'zfs' not found"));
    }
}
