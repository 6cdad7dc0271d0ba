//! A dockerd of a test's own (Debian's docker.io): its own data and exec roots, no bridge
//! network (containers use `--network none` or the host's), stopped with its containers.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::{run_ok, Proc};

pub struct Docker {
    pub proc: Proc,
    /// `DOCKER_HOST` of this daemon.
    pub host: String,
}

impl Docker {
    /// Starts dockerd in `dir` and waits until it answers.
    pub fn start(dir: &Path) -> Docker {
        let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("dockerd is missing: install docker.io (scripts/test-all.sh does)");
        std::fs::create_dir_all(dir).expect("docker directory");
        let sock = dir.join("docker.sock");
        let proc = Proc::spawn(
            Command::new(dockerd)
                .arg("--data-root")
                .arg(dir.join("data"))
                .arg("--exec-root")
                .arg(dir.join("exec"))
                .arg("--pidfile")
                .arg(dir.join("docker.pid"))
                .arg("-H")
                .arg(format!("unix://{}", sock.display()))
                .args([
                    "--bridge=none",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--ip-masq=false",
                ]),
            &dir.join("dockerd.log"),
        );
        let d = Docker {
            proc,
            host: format!("unix://{}", sock.display()),
        };
        let start = Instant::now();
        while !d.docker(&["info"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "dockerd did not start:\n{}",
                d.proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .output()
            .expect("docker runs")
    }

    /// Runs docker, which must succeed; answers stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs docker, which must fail; answers stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(!out.status.success(), "docker {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A busybox image named `image`, built offline: `docker import` of a directory with
    /// busybox.
    pub fn import_busybox(&self, dir: &Path, image: &str) {
        let root = dir.join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("busybox-static (scripts/test-all.sh installs it)");
        for applet in ["sh", "cat", "echo", "sleep", "df", "ls"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        run_ok(
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "tar -C '{}' -c . | docker import - {image}",
                    root.display()
                ))
                .env("DOCKER_HOST", &self.host),
        );
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // Containers first, then dockerd itself (SIGTERM: it stops its containerd).
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        self.proc.stop();
    }
}
