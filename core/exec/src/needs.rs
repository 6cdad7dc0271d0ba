//! What a test needs from the machine, and skipping a test whose needs are not met.
//!
//! Tests that attach loop devices, run drbd-utils, start dockerd or boot the VM image begin
//! with [`needs!`](crate::needs!): on a machine without what they need (a developer's laptop,
//! `cargo test` as a normal user) they print why and end as passed. Where everything must run
//! (CI: `scripts/test-all.sh` installs all of it and sets `STRATA_TESTS_REQUIRE_ALL=1`) an
//! unmet need fails the test instead, so nothing is silently skipped there.
//!
//! ```ignore
//! #[test]
//! fn attaches_a_loop_device() {
//!     strata_exec::needs!(needs::root(), needs::loop_devices());
//!     // ...
//! }
//! ```

use std::path::{Path, PathBuf};

/// Set (to anything) where every test must run: an unmet need is then a failure.
pub const REQUIRE_ALL: &str = "STRATA_TESTS_REQUIRE_ALL";

/// The check of one need: `Err` says what is missing and how to get it.
pub type Need = Result<(), String>;

/// Running as root.
pub fn root() -> Need {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err("needs root; run it as root, as CI does".into())
    }
}

/// Loop devices can be created (`/dev/loop-control`, as root).
pub fn loop_devices() -> Need {
    root()?;
    if Path::new("/dev/loop-control").exists() {
        Ok(())
    } else {
        Err("needs /dev/loop-control; load the loop module (modprobe loop)".into())
    }
}

/// `program` is installed; `package` is the Debian package that has it.
pub fn tool(program: &str, package: &str) -> Need {
    match crate::find_program(program) {
        Some(_) => Ok(()),
        None => Err(format!(
            "needs {program}; install {package} (scripts/test-all.sh does)"
        )),
    }
}

/// Every file of `files` exists; `how` says how to make them.
pub fn files(files: &[PathBuf], how: &str) -> Need {
    match files.iter().find(|f| !f.is_file()) {
        None => Ok(()),
        Some(missing) => Err(format!("needs {} ({how})", missing.display())),
    }
}

/// Reports an unmet need: a failure when [`REQUIRE_ALL`] is set, a skip otherwise. Returns
/// only when the test is to be skipped.
pub fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    if std::env::var_os(REQUIRE_ALL).is_some() {
        panic!("{test} {why}; {REQUIRE_ALL} is set, so nothing may be skipped");
    }
    // Straight to the standard error, past the test harness's capture of print macros,
    // so that a skip and its reason show in a plain `cargo test`.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {test} {why}");
}

/// Ends the calling test as skipped (or fails it, see [`skip`]) unless every need is met.
#[macro_export]
macro_rules! needs {
    ($($need:expr),+ $(,)?) => {
        #[allow(unused_imports)]
        use $crate::needs;
        let unmet: Option<String> = [$($need),+].into_iter().find_map(|n: $crate::needs::Need| n.err());
        if let Some(why) = unmet {
            $crate::needs::skip(&why);
            return;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_package() {
        let err = tool("no-such-program-here", "no-such-package").unwrap_err();
        assert!(err.contains("no-such-program-here"), "{err}");
        assert!(err.contains("install no-such-package"), "{err}");
        assert!(tool("sh", "dash").is_ok());
    }

    #[test]
    fn missing_files_are_named_with_how_to_make_them() {
        let err = files(&[PathBuf::from("/no/such/file")], "build it").unwrap_err();
        assert_eq!(err, "needs /no/such/file (build it)");
        assert!(files(&[PathBuf::from("/bin/sh")], "x").is_ok());
    }

    fn skipped_early(ran: &mut bool) {
        crate::needs!(Ok(()), Err("needs a unicorn".to_string()));
        *ran = true;
    }

    #[test]
    fn an_unmet_need_ends_the_test_before_its_body() {
        let mut ran = false;
        if std::env::var_os(REQUIRE_ALL).is_some() {
            // Where everything must run, the same need is a failure.
            let result = std::panic::catch_unwind(|| {
                let mut ran = false;
                skipped_early(&mut ran);
            });
            assert!(result.is_err());
        } else {
            skipped_early(&mut ran);
            assert!(!ran);
        }
    }
}
