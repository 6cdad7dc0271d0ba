#!/usr/bin/env python3
"""Drive vmlab VMs over their serial console (used by smoke.py; importable by other tests).

A VM is started with boot.sh --batch: the guest's console has no echo and no prompts. The
protocol on the console, after the guest printed the line VMLAB-READY:

    host writes:  { COMMAND
                  } </dev/null >/run/vmlab.out 2>&1; echo "@@DONE $?" >>/run/vmlab.out; cat /run/vmlab.out
    guest prints: the command's output (stdout and stderr, in order), then "@@DONE <status>"

The command's stdin is /dev/null (a command that asks a question cannot swallow the next
command) and its stdout is a file, not the console, so programs print what they print to a
pipe (no colours), exactly what a satellite would read. The plain form
`COMMAND; echo "@@DONE $?"` works as well (humans, other drivers), but then the command sees
the console as its terminal.

Every VM is stopped by VM.stop() (poweroff in the guest, then SIGTERM/SIGKILL of the qemu PID
this module started, with bounded waits); use it as a context manager.
"""

import atexit
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BOOT = os.path.join(HERE, "boot.sh")
READY = b"VMLAB-READY\n"
DONE_RE = re.compile(rb"@@DONE (\d+)\n")


class VMError(Exception):
    pass


# Every VM started by this process, so that none outlives it (see _kill_leftovers).
_STARTED = []


def _kill_leftovers():
    """Last resort at interpreter exit: kill the qemu processes this process started and
    that are still running (by their PIDs)."""
    for vm in _STARTED:
        p = vm.proc
        if p is not None and p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_kill_leftovers)


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_listening(port):
    """True when some process listens on TCP port `port` (reads /proc/net/tcp; connects nowhere,
    because a probe connection would be taken by qemu's -netdev socket as its peer)."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state = fields[1], fields[3]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        return True
        except FileNotFoundError:
            pass
    return False


def make_cpio(files, out_path):
    """Write a gzip'ed newc cpio archive to out_path. files: {path in guest: (mode, bytes)}.
    Parent directories are added with mode 0755 (never the archive's ".", whose mode would
    replace the mode of the guest's /)."""
    with tempfile.TemporaryDirectory(prefix="vmlab-cpio.") as stage:
        for path, (mode, data) in files.items():
            path = path.lstrip("/")
            full = os.path.join(stage, path)
            os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
            with open(full, "wb") as f:
                f.write(data)
            os.chmod(full, mode)
        for root, dirs, _ in os.walk(stage):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        subprocess.run(
            "find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -n > %s"
            % shlex_quote(os.path.abspath(out_path)),
            shell=True, cwd=stage, check=True)


def shlex_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


class VM:
    def __init__(self, name, addr=None, listen=None, connect=None, fwd=None, disk=None,
                 extra=(), mem=1024, log_path=None, append=None, image_dir=None):
        self.name = name
        self.args = ["--batch", "--name", name, "--mem", str(mem)]
        if addr:
            self.args += ["--addr", addr]
        if listen:
            self.args += ["--listen", str(listen)]
        if connect:
            self.args += ["--connect", str(connect)]
        if fwd:
            self.args += ["--fwd", str(fwd)]
        if disk:
            self.args += ["--disk", disk]
        for e in extra:
            self.args += ["--extra", e]
        if append:
            self.args += ["--append", append]
        if image_dir:
            self.args += ["--dir", image_dir]
        self.log_path = log_path
        self.proc = None
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.eof = False
        self.started_at = None
        self.ready_after = None
        self._log = None

    # -- process ---------------------------------------------------------------------------
    def start(self):
        self._log = open(self.log_path, "ab") if self.log_path else None
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen([BOOT] + self.args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _STARTED.append(self)
        threading.Thread(target=self._reader, daemon=True).start()
        return self

    def _reader(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self.cond:
                if not chunk:
                    self.eof = True
                    self.cond.notify_all()
                    break
                self.buf += chunk
                self.cond.notify_all()
            if self._log:
                self._log.write(chunk)
                self._log.flush()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _wait_for(self, pattern, start, timeout, what):
        """Wait until regex `pattern` matches self.buf at or after `start`; returns the match."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = pattern.search(self.buf, start)
                if m:
                    return m
                if self.eof:
                    raise VMError("%s: qemu ended while waiting for %s; console tail:\n%s"
                                  % (self.name, what, self.tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VMError("%s: timeout (%ss) waiting for %s; console tail:\n%s"
                                  % (self.name, timeout, what, self.tail()))
                self.cond.wait(min(left, 0.5))

    def tail(self, n=1500):
        return bytes(self.buf[-n:]).decode("utf-8", "replace")

    def wait_ready(self, timeout=120):
        m = self._wait_for(re.compile(re.escape(READY)), 0, timeout, "VMLAB-READY")
        self.ready_after = time.monotonic() - self.started_at
        self._pos = m.end()
        # The first exchange also swallows the shell's banner.
        self.run("true", timeout=30)
        return self.ready_after

    # -- console protocol --------------------------------------------------------------------
    def send_raw(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def run(self, cmd, timeout=60, check=True):
        """Run `cmd` (shell text, may span lines) in the guest; returns (status, output)."""
        with self.cond:
            start = len(self.buf)
        self.send_raw('{ %s\n} </dev/null >/run/vmlab.out 2>&1; echo "@@DONE $?" >>/run/vmlab.out; '
                      'cat /run/vmlab.out\n' % cmd)
        m = self._wait_for(DONE_RE, start, timeout, "the end of: %s" % cmd.splitlines()[0][:80])
        with self.cond:
            out = bytes(self.buf[start:m.start()]).decode("utf-8", "replace")
        rc = int(m.group(1))
        if check and rc != 0:
            raise VMError("%s: `%s` exited with %d:\n%s" % (self.name, cmd, rc, out))
        return rc, out

    def out(self, cmd, timeout=60):
        """Output of a command that must succeed."""
        return self.run(cmd, timeout=timeout)[1]

    def spawn(self, cmd, log):
        """Start `cmd` in the background in the guest, output to the guest file `log`."""
        self.run("( %s >%s 2>&1 </dev/null & )" % (cmd, log))

    def wait_until(self, cmd, timeout=60, interval=0.5):
        """Repeat `cmd` in the guest until it exits 0."""
        deadline = time.monotonic() + timeout
        while True:
            rc, out = self.run(cmd, check=False)
            if rc == 0:
                return out
            if time.monotonic() > deadline:
                raise VMError("%s: `%s` did not succeed within %ss; last output:\n%s"
                              % (self.name, cmd, timeout, out))
            time.sleep(interval)

    def write_file(self, path, text):
        if "VMLAB_EOF" in text:
            raise ValueError("text contains the heredoc terminator")
        self.run("cat >%s <<'VMLAB_EOF'\n%s\nVMLAB_EOF" % (path, text.rstrip("\n")))

    # -- stop --------------------------------------------------------------------------------
    def stop(self, timeout=20):
        """Power the guest off; kill qemu (by its PID, which is ours) if it does not end."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.send_raw("sync; poweroff -f\n")
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def install_signal_exit():
    """Turn the first SIGTERM/SIGHUP/SIGINT into SystemExit so `with VM(...)` blocks and
    `finally` clauses stop their VMs; later signals are ignored so that the cleanup is not cut
    short (GNU timeout, for one, signals both its child and its process group)."""
    def handler(signum, _frame):
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(s, signal.SIG_IGN)
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, handler)


def stop_all(vms):
    """Stop every VM in `vms`, even if stopping one of them fails."""
    for vm in vms:
        try:
            vm.stop()
        except Exception as e:  # keep going: the others must be stopped too
            print("vmlab: stopping %s: %s" % (vm.name, e), flush=True)
