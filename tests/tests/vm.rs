//! The virtual-machine tier: guests from `tests/vmlab`, driven over their serial console.
//! Needs the image that `tests/vmlab/build-image.sh` builds (scripts/test-all.sh does).

use strata_tests::vm::{Vm, VmSpec};

#[test]
fn guest_console_runs_commands_with_their_status() {
    strata_tests::require_root();
    let mut vm = Vm::boot(&VmSpec {
        name: "vmtest1".into(),
        ..Default::default()
    });
    assert_eq!(vm.sh("hostname").trim(), "vmtest1");
    let (status, out) = vm.run("echo to-stderr >&2; exit_code() { return 3; }; exit_code");
    assert_eq!(status, 3, "{out}");
    assert!(out.contains("to-stderr"), "{out}");
    // The guest kernel has what the host lacks.
    assert!(vm.sh("cat /proc/misc").contains("device-mapper"));
    assert!(vm.sh("cat /proc/drbd").starts_with("version: 8.4"));
}
