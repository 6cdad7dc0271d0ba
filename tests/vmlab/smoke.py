#!/usr/bin/env python3
"""vmlab smoke scenario (run through smoke.sh): two VMs, real LVM thin and real DRBD 8.4.

  smoke.py [--record DIR] [--image-dir DIR] [--keep]

Without --record: proves that the tier works and exits non-zero on the first failure.
With --record DIR: also writes verbatim outputs of the real tools into DIR (test data for
parsers; every file starts with comment lines naming the command, the VM and the versions).
"""

import argparse
import os
import re
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmlab import VM, VMError, free_port, install_signal_exit, make_cpio, port_listening, stop_all  # noqa: E402

RES = """resource r0 {
    net {
        protocol C;
        cram-hmac-alg sha1;
        shared-secret "vmlab-secret";
    }
    on a {
        volume 0 {
            device /dev/drbd0 minor 0;
            disk /dev/vg0/r0_00000;
            meta-disk internal;
        }
        address 10.99.0.1:7000;
    }
    on b {
        volume 0 {
            device /dev/drbd0 minor 0;
            disk /dev/vg0/r0_00000;
            meta-disk internal;
        }
        address 10.99.0.2:7000;
    }
}
"""

HOOK = """#!/bin/sh
# Added by the smoke test's second cpio archive: proves that appended archives are unpacked
# and that /etc/vmlab.d hooks run; answers on port 3366 for the host port forward.
echo "smoke hook ran on $(hostname)" >/run/smoke-hook
( nc -ll -p 3366 -e echo "hello from $(hostname)" </dev/null >/dev/null 2>&1 & )
"""

T0 = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def check(cond, msg):
    if not cond:
        raise VMError("CHECK FAILED: " + msg)
    log("ok: " + msg)


class Recorder:
    """Writes recorded outputs; does nothing without --record."""

    def __init__(self, outdir):
        self.dir = outdir
        self.versions = {}
        if outdir:
            os.makedirs(outdir, exist_ok=True)

    def on(self):
        return self.dir is not None

    def learn_versions(self, vm):
        k = vm.out("uname -r").strip()
        d = vm.out("head -n1 /proc/drbd").strip()
        u = vm.out("drbdadm --version | sed -n 's/^DRBDADM_VERSION=//p'").strip()
        l = vm.out("lvm version | sed -n 's/^ *LVM version: *//p'").strip()
        self.versions[vm.name] = "Linux %s, DRBD %s, drbd-utils %s, lvm2 %s" % (
            k, d.replace("version: ", ""), u, l)

    def header(self, what, vm_name):
        return "# %s -- in VM %s (%s); recorded by tests/vmlab/smoke.py --record\n" % (
            what, vm_name, self.versions.get(vm_name, "?"))

    def write(self, name, text):
        if not self.dir:
            return
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)
        log("recorded " + name)

    def one(self, name, vm, cmd, rc_out=None, note=None):
        """Record the output of one command (run now unless rc_out is given)."""
        if not self.dir:
            return
        rc, out = rc_out if rc_out else vm.run(cmd, check=False)
        head = self.header("`%s` (exit status %d)" % (cmd, rc), vm.name)
        if note:
            head += "".join("# %s\n" % line for line in note.splitlines())
        self.write(name, head + out)

    def many(self, name, vm, cmds, what, note=None):
        """Record several commands into one file; each output follows a `# $ cmd` line."""
        if not self.dir:
            return
        text = self.header(what, vm.name)
        if note:
            text += "".join("# %s\n" % line for line in note.splitlines())
        for cmd in cmds:
            rc, out = vm.run(cmd, check=False)
            text += "# $ %s\n%s# (exit status %d)\n" % (cmd, out, rc)
        self.write(name, text)


def md5_of(vm, dev, skip_mib, count_mib):
    out = vm.out("dd if=%s bs=1M skip=%d count=%d iflag=direct 2>/dev/null | md5sum"
                 % (dev, skip_mib, count_mib), timeout=120)
    return out.split()[0]


def write_random(vm, dev, seek_mib, count_mib):
    """Write fresh random data to dev at seek_mib; returns its md5."""
    vm.run("dd if=/dev/urandom of=/tmp/payload bs=1M count=%d 2>/dev/null" % count_mib, timeout=120)
    vm.run("dd if=/tmp/payload of=%s bs=1M seek=%d oflag=direct conv=fsync 2>/dev/null"
           % (dev, seek_mib), timeout=180)
    return vm.out("md5sum /tmp/payload").split()[0]


def lvm_part(a, rec):
    """Part a: LVM thin on one VM."""
    t = time.monotonic()
    a.run("pvcreate /dev/vda")
    a.run("vgcreate vg0 /dev/vda")
    a.run("lvcreate -L 512M -T vg0/pool")
    a.run("lvcreate -V 128M -T vg0/pool -n thin1")
    a.run("dd if=/dev/urandom of=/dev/vg0/thin1 bs=1M count=4 oflag=direct 2>/dev/null")
    a.run("lvcreate -s -n thin1_snap vg0/thin1")
    lvs = a.out("lvs --noheadings -o lv_name,origin,pool_lv,lv_size --units m --nosuffix vg0")
    check(re.search(r"thin1_snap\s+thin1\s+pool", lvs) is not None, "thin snapshot of thin1 listed by lvs")
    a.run("lvchange -ay -K vg0/thin1_snap")
    check(md5_of(a, "/dev/vg0/thin1", 0, 4) == md5_of(a, "/dev/vg0/thin1_snap", 0, 4),
          "thin snapshot has the origin's data")
    a.run("lvextend -L 192M vg0/thin1")
    size = a.out("lvs --noheadings -o lv_size --units m --nosuffix vg0/thin1").strip()
    check(size == "192.00", "lvextend grew thin1 to 192 MiB (lvs says %s)" % size)
    rec.many("lvm-lvs.txt", a, ["lvs", "lvs --noheadings --units k --nosuffix --separator ';' "
                                "-o lv_name,vg_name,lv_attr,lv_size,pool_lv,origin,data_percent,metadata_percent"],
             "lvs after creating thin pool vg0/pool, thin LV thin1 and thin snapshot thin1_snap")
    a.run("lvremove -y vg0/thin1_snap vg0/thin1")
    lvs = a.out("lvs --noheadings -o lv_name vg0")
    check("thin1" not in lvs and "pool" in lvs, "lvremove removed thin1 and its snapshot")
    vgs_cmd = "vgs --noheadings --units k --nosuffix --separator ';' -o vg_name,vg_size,vg_free"
    vgs = a.out(vgs_cmd)
    log("vgs: %r" % vgs)
    check(vgs.strip().startswith("vg0;"), "vgs reports vg0")
    rec.one("lvm-vgs.txt", a, vgs_cmd, rc_out=(0, vgs),
            note="1 GiB raw virtio disk /dev/vda as the only PV; thin pool vg0/pool of 512 MiB present")
    log("LVM part took %.1fs" % (time.monotonic() - t))


def record_dry_runs(a, rec):
    cmds = ["create-md r0", "create-md --force r0/0", "up r0", "adjust r0", "down r0", "resize r0",
            "new-current-uuid --clear-bitmap r0/0", "-- --clear-bitmap new-current-uuid r0",
            "primary --force r0", "primary r0", "secondary r0", "attach r0", "detach r0", "connect r0",
            "disconnect r0", "invalidate r0", "verify r0", "dump-md r0", "wipe-md r0",
            "create-md --max-peers=7 r0", "create-md --max-peers 7 r0"]
    rec.many("drbdadm-dry-run.txt", a, ["drbdadm -d %s" % c for c in cmds],
             "drbdadm -d (dry run) of resource r0 (config: drbd84-r0.res) before `drbdadm up`",
             note="drbdadm 9.22 sees DRBD 8.4 in /proc/drbd and runs drbdadm-84, which prints drbdsetup-84 commands")


def record_metadata_sizes(a, rec):
    """Internal v08 metadata: size on three backing sizes (thin LVs, sparse)."""
    text = rec.header("drbdmeta v08 internal create-md / dump-md and the DRBD device size, per backing size", "a")
    text += "# backing devices: thin LVs in vg0/pool (sparse); minor 10; resource md\n"
    text += "# the DRBD device size is /sys/block/drbd10/size (512-byte sectors): a Secondary cannot be opened\n"
    table = []
    for name, size in (("md64m", "64M"), ("md1g", "1G"), ("md10g", "10G")):
        a.run("lvcreate -V %s -T vg0/pool -n %s" % (size, name))
        dev = "/dev/vg0/%s" % name
        backing = int(a.out("blockdev --getsize64 %s" % dev))
        steps = [
            "drbdmeta --force 10 v08 %s internal create-md" % dev,
            "drbdmeta --force 10 v08 %s internal dump-md" % dev,
            "drbdsetup new-resource md",
            "drbdsetup new-minor md 10 0",
            "drbdsetup attach 10 %s %s internal" % (dev, dev),
            "cat /sys/block/drbd10/size",
            "drbdsetup down md",
            "drbdmeta --force 10 v08 %s internal dump-md" % dev,
        ]
        text += "#\n# ===== backing %s: %s, %d bytes =====\n" % (size, dev, backing)
        usable = md_sect = la = None
        for cmd in steps:
            rc, out = a.run(cmd, check=False, timeout=120)
            text += "# $ %s\n%s# (exit status %d)\n" % (cmd, out, rc)
            if rc != 0:
                raise VMError("%s failed: %s" % (cmd, out))
            if cmd.startswith("cat /sys"):
                usable = int(out) * 512
            m = re.search(r"# md_size_sect (\d+)", out)
            if m:
                md_sect = int(m.group(1))
            m = re.search(r"^la-size-sect (\d+);", out, re.M)
            if m:
                la = int(m.group(1))
        table.append((size, backing, md_sect, la, usable))
        a.run("lvremove -y vg0/%s" % name)
    text += "#\n# summary: backing size | backing bytes | md_size_sect | la-size-sect after down | /dev/drbd10 bytes (sysfs size * 512) | backing - usable\n"
    for size, backing, md_sect, la, usable in table:
        text += "%s %d md_size_sect=%d la_size_sect=%d usable=%d overhead=%d\n" % (
            size, backing, md_sect, la, usable, backing - usable)
    rec.write("drbd84-metadata-sizes.txt", text)
    return table


def scenario(args, work):
    rec = Recorder(args.record)
    cpio = os.path.join(work, "extra.cpio.gz")
    make_cpio({"etc/vmlab.d/10-smoke": (0o755, HOOK.encode()),
               "etc/drbd.d/r0.res": (0o644, RES.encode())}, cpio)
    link, fwd = free_port(), free_port()
    vms = []
    try:
        a = VM("a", addr="10.99.0.1/24", listen=link, fwd=fwd, disk=os.path.join(work, "a.img") + ":1G",
               extra=[cpio], log_path=os.path.join(work, "a.console.log"), image_dir=args.image_dir)
        vms.append(a.start())
        deadline = time.monotonic() + 30
        while not port_listening(link):
            if time.monotonic() > deadline or not a.alive():
                raise VMError("VM a does not listen on 127.0.0.1:%d; console:\n%s" % (link, a.tail()))
            time.sleep(0.1)
        b = VM("b", addr="10.99.0.2/24", connect=link, disk=os.path.join(work, "b.img") + ":1G",
               extra=[cpio], log_path=os.path.join(work, "b.console.log"), image_dir=args.image_dir)
        vms.append(b.start())
        ta, tb = a.wait_ready(), b.wait_ready()
        log("VMLAB-READY: a after %.1fs, b after %.1fs (both booting at once)" % (ta, tb))

        # The appended archive and its hook; the port forward of the user NIC.
        check(a.out("cat /run/smoke-hook").strip() == "smoke hook ran on a",
              "appended cpio unpacked, /etc/vmlab.d hook ran (a)")
        check(b.out("cat /etc/drbd.d/r0.res") == RES, "file from the appended cpio present (b)")
        got = b""
        for _ in range(20):
            try:
                with socket.create_connection(("127.0.0.1", fwd), timeout=5) as s:
                    s.settimeout(5)
                    got = s.recv(100)
            except OSError:
                got = b""
            if got:
                break
            time.sleep(0.5)
        check(got.strip() == b"hello from a", "host 127.0.0.1:%d reaches guest a:3366 (got %r)" % (fwd, got))
        check(a.run("ping -c 1 -W 5 10.99.0.2 >/dev/null", check=False)[0] == 0,
              "a reaches b over the socket link")

        if rec.on():
            rec.learn_versions(a)
            rec.learn_versions(b)

        # ---- part a: LVM thin --------------------------------------------------------------
        lvm_part(a, rec)
        b.run("pvcreate -q /dev/vda && vgcreate -q vg0 /dev/vda && lvcreate -q -L 512M -T vg0/pool")

        # ---- part b: DRBD 8.4 --------------------------------------------------------------
        t_drbd = time.monotonic()
        for vm in (a, b):
            vm.run("lvcreate -q -V 256M -T vg0/pool -n r0_00000")
        if rec.on():
            rec.write("drbd84-r0.res", rec.header("the DRBD 8.4 configuration /etc/drbd.d/r0.res used on both VMs "
                                                  "(with /etc/drbd.conf and drbd.d/global_common.conf of the image)", "a")
                      + RES)
            rec.many("drbd84-versions.txt", a,
                     ["drbdadm --version", "drbdsetup --version", "cat /proc/drbd", "uname -a",
                      "drbdsetup help events2", "drbdsetup help status", "drbdsetup help show"],
                     "version outputs with the in-tree DRBD 8.4 module loaded and no resource configured")
            rec.one("drbd84-events2-full-unsupported.txt", a, "drbdsetup events2 --now --full all",
                    note="drbdsetup-84 (run by drbdsetup 9.22 for a DRBD 8.4 kernel) has no --full")
            rec.one("drbd84-events2-now-empty.txt", a, "drbdsetup events2 --now all",
                    note="no resource configured yet")
            record_dry_runs(a, rec)
        rc, out = a.run("drbdadm create-md --force r0", check=False)
        check(rc == 0, "drbdadm create-md --force r0 on a fresh thin LV (a)")
        rec.one("drbd84-create-md-force-fresh.txt", a, "drbdadm create-md --force r0", rc_out=(rc, out))
        rc, out = b.run("drbdadm create-md r0", check=False)
        check(rc == 0, "drbdadm create-md r0 (b)")
        rec.one("drbd84-create-md-fresh.txt", b, "drbdadm create-md r0", rc_out=(rc, out))
        rc, out = a.run("drbdadm create-md r0", check=False)
        check(rc != 0, "create-md without --force refuses to overwrite metadata when stdin is no terminal")
        rec.one("drbd84-create-md-existing-no-tty.txt", a, "drbdadm create-md r0", rc_out=(rc, out),
                note="metadata already present; stdin is /dev/null")
        rc, out = a.run("drbdadm create-md --force r0/0", check=False)
        check(rc == 0, "drbdadm create-md --force r0/0 overwrites without asking")
        rec.one("drbd84-create-md-existing-force.txt", a, "drbdadm create-md --force r0/0", rc_out=(rc, out),
                note="metadata already present; stdin is /dev/null")
        rc, out = a.run("drbdadm create-md --max-peers=7 --force r0", check=False)
        check(rc != 0, "drbdadm refuses --max-peers with DRBD 8.4")
        rec.one("drbd84-create-md-max-peers.txt", a, "drbdadm create-md --max-peers=7 --force r0", rc_out=(rc, out))

        # Event streams, started before `drbdadm up` on either node.
        streams_b = [("drbdsetup events2 all", "/tmp/ev2.log", "drbd84-events2-stream-b.txt"),
                     ("drbdsetup events2 --timestamps --statistics all", "/tmp/ev2ts.log",
                      "drbd84-events2-stream-timestamps-statistics-b.txt"),
                     ("drbdsetup events all", "/tmp/ev84.log", "drbd84-events-stream-b.txt")]
        streams_a = [("drbdsetup events2 --timestamps --statistics all", "/tmp/ev2ts.log",
                      "drbd84-events2-stream-timestamps-statistics-a.txt")]
        for vm, streams in ((b, streams_b), (a, streams_a)):
            for cmd, path, _ in streams:
                vm.spawn(cmd, path)

        a.run("drbdadm up r0")
        if rec.on():
            rec.one("drbd84-proc-drbd-wfconnection.txt", a, "cat /proc/drbd", note="after `drbdadm up r0` on a only")
            rec.many("drbd84-status-wfconnection.txt", a,
                     ["drbdadm status r0", "drbdsetup status r0 --verbose --statistics", "drbdsetup events2 --now all",
                      "drbdsetup events2 --now --statistics all"], "status of r0 after `drbdadm up r0` on a only")
        b.run("drbdadm up r0")
        for vm in (a, b):
            vm.wait_until("drbdadm cstate r0 | grep -qx Connected", timeout=60)
        check(True, "r0 connected over the socket link")
        if rec.on():
            rec.one("drbd84-proc-drbd-connected-inconsistent.txt", b, "cat /proc/drbd",
                    note="both nodes up, before new-current-uuid")
        a.run("drbdadm new-current-uuid --clear-bitmap r0/0")
        for vm in (a, b):
            vm.wait_until("drbdadm dstate r0 | grep -qx UpToDate/UpToDate", timeout=60)
        check(True, "new-current-uuid --clear-bitmap skipped the initial sync (UpToDate/UpToDate)")
        # DRBD 8.4 refuses every open() of a Secondary's device (EMEDIUMTYPE), even read-only:
        # the size of a Secondary comes from sysfs.
        rc, out = a.run("blockdev --getsize64 /dev/drbd0", check=False)
        check(rc != 0 and "Wrong medium type" in out, "8.4: a Secondary's /dev/drbd0 cannot be opened (%r)" % out)
        rec.one("drbd84-open-secondary.txt", a, "blockdev --getsize64 /dev/drbd0", rc_out=(rc, out),
                note="r0 connected, both Secondary/UpToDate: DRBD 8.4 refuses open() on a Secondary")
        usable = int(a.out("cat /sys/block/drbd0/size")) * 512
        log("/dev/drbd0 on a 256 MiB backing LV: %d bytes" % usable)

        a.run("drbdadm primary r0")
        check(int(a.out("blockdev --getsize64 /dev/drbd0")) == usable, "blockdev size of the Primary equals sysfs size")
        sum_a = write_random(a, "/dev/drbd0", 0, 8)
        if rec.on():
            rec.one("drbd84-proc-drbd-primary.txt", a, "cat /proc/drbd", note="a primary after writing 8 MiB")
            rec.many("drbd84-status-primary.txt", a,
                     ["drbdadm status r0", "drbdsetup status r0 --verbose --statistics",
                      "drbdsetup events2 --now all", "drbdsetup events2 --now --statistics all",
                      "drbdsetup events2 --now --timestamps --statistics all", "drbdsetup events all --now",
                      "drbdadm sh-status r0", "drbdadm show-gi r0/0", "drbdadm get-gi r0/0",
                      "drbdadm role r0", "drbdadm cstate r0", "drbdadm dstate r0", "drbdsetup status --json r0",
                      "drbdsetup show r0", "drbdadm dump r0", "drbdadm -d adjust r0"],
                     "state of r0 on a: connected, a primary, both UpToDate")
            rec.one("drbd84-show-defaults.txt", a, "drbdsetup show r0 --show-defaults",
                    note="r0 connected, a primary")
            changed = RES.replace("        protocol C;\n",
                                  "        protocol C;\n        max-buffers 4000;\n").replace(
                "    net {", "    disk {\n        c-max-rate 50M;\n    }\n    net {", 1)
            a.write_file("/etc/drbd.d/r0.res", changed)
            rec.one("drbd84-adjust-changed-config.txt", a, "drbdadm -d adjust r0",
                    note="r0 up and connected; /etc/drbd.d/r0.res changed to:\n" + changed.rstrip("\n"))
            a.write_file("/etc/drbd.d/r0.res", RES)
        a.run("drbdadm secondary r0")
        b.run("drbdadm primary r0")
        check(md5_of(b, "/dev/drbd0", 0, 8) == sum_a, "b reads back what a wrote (md5 %s)" % sum_a)
        b.run("drbdadm secondary r0")

        # Disconnect b, write on a, reconnect: resync.
        b.run("drbdadm disconnect r0")
        if rec.on():
            rec.one("drbd84-proc-drbd-standalone.txt", b, "cat /proc/drbd", note="after `drbdadm disconnect r0` on b")
        a.wait_until("drbdadm cstate r0 | grep -qx WFConnection", timeout=30)
        a.run("drbdadm primary r0")
        resync_mib = 32 if rec.on() else 12
        sum2 = write_random(a, "/dev/drbd0", 32, resync_mib)
        if rec.on():
            rec.one("drbd84-proc-drbd-primary-wfconnection.txt", a, "cat /proc/drbd",
                    note="a primary, b disconnected, %d MiB written on a" % resync_mib)
        t_sync = time.monotonic()
        b.run("drbdadm connect r0")
        samples_b, samples_a, seen_sync = [], [], False
        deadline = time.monotonic() + 120
        while True:
            out = b.out("cat /proc/drbd; drbdsetup events2 --now --statistics all")
            if "SyncTarget" in out:
                seen_sync = True
                samples_b.append(out)
                if rec.on() and len(samples_a) < 3:
                    samples_a.append(a.out("cat /proc/drbd; drbdsetup events2 --now --statistics all"))
            if "cs:Connected" in out and "ds:UpToDate/UpToDate" in out:
                final = out
                break
            if time.monotonic() > deadline:
                raise VMError("resync did not finish in 120 s:\n" + out)
            time.sleep(0.5)
        log("resync of %d MiB took %.1fs (reconnect to UpToDate)" % (resync_mib, time.monotonic() - t_sync))
        check(seen_sync, "b went through SyncTarget after reconnecting")
        if rec.on():
            text = rec.header("`cat /proc/drbd; drbdsetup events2 --now --statistics all`, repeated during the "
                              "resync after reconnecting", "b")
            text += "# b is SyncTarget for %d MiB written on a while b was disconnected; samples about 1 s apart\n" % resync_mib
            for s in samples_b:
                text += "# ---- sample\n" + s
            text += "# ---- after the resync\n" + final
            rec.write("drbd84-resync-samples-b.txt", text)
            text = rec.header("`cat /proc/drbd; drbdsetup events2 --now --statistics all` during the resync", "a")
            text += "# a is SyncSource (and primary)\n"
            for s in samples_a:
                text += "# ---- sample\n" + s
            rec.write("drbd84-resync-samples-a.txt", text)
        a.run("drbdadm secondary r0")
        b.run("drbdadm primary r0")
        check(md5_of(b, "/dev/drbd0", 32, resync_mib) == sum2, "b has the data written while it was disconnected")
        check(md5_of(b, "/dev/drbd0", 0, 8) == sum_a, "b still has the first data")
        b.run("drbdadm secondary r0")
        if rec.on():
            rec.one("drbd84-proc-drbd-connected-uptodate.txt", b, "cat /proc/drbd", note="after the resync, both secondary")
        b.run("drbdadm down r0")
        a.run("drbdadm down r0")
        for vm in (a, b):
            check(vm.run("grep -q '^ 0:' /proc/drbd", check=False)[0] != 0, "drbdadm down r0 removed minor 0 (%s)" % vm.name)
        log("DRBD part took %.1fs" % (time.monotonic() - t_drbd))
        if rec.on():
            time.sleep(1)
            rec.one("drbd84-proc-drbd-after-down.txt", a, "cat /proc/drbd", note="after `drbdadm down r0`")
            actions = ("actions, in order: (stream started) a: drbdadm up r0; b: drbdadm up r0; both Connected;\n"
                       "a: drbdadm new-current-uuid --clear-bitmap r0/0; a: primary, 8 MiB written, secondary;\n"
                       "b: primary, read, secondary; b: drbdadm disconnect r0; a: primary, %d MiB written;\n"
                       "b: drbdadm connect r0 -> resync a->b; a: secondary; b: primary, read, secondary;\n"
                       "b: drbdadm down r0; a: drbdadm down r0 (stream still running afterwards)" % resync_mib)
            for vm, streams in ((b, streams_b), (a, streams_a)):
                for cmd, path, fname in streams:
                    out = vm.out("cat %s" % path)
                    rec.write(fname, rec.header("`%s` started before `drbdadm up r0` on either node, "
                                                "output until after `drbdadm down r0`" % cmd, vm.name)
                              + "".join("# %s\n" % l for l in actions.splitlines()) + out)
            record_metadata_sizes(a, rec)
        return {"boot_a": ta, "boot_b": tb, "drbd": time.monotonic() - t_drbd, "usable_256m": usable}
    finally:
        stop_all(vms)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--record", metavar="DIR", help="write verbatim tool outputs into DIR")
    p.add_argument("--image-dir", metavar="DIR", help="vmlab image directory (default: boot.sh's)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (disk images, console logs)")
    args = p.parse_args()
    install_signal_exit()
    work = tempfile.mkdtemp(prefix="vmlab-smoke.")
    ok = False
    try:
        res = scenario(args, work)
        ok = True
        log("SMOKE PASSED in %.1fs (boot a %.1fs, b %.1fs; DRBD part %.1fs)"
            % (time.monotonic() - T0, res["boot_a"], res["boot_b"], res["drbd"]))
    except VMError as e:
        log("SMOKE FAILED: %s" % e)
    finally:
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log("work directory kept: %s (console logs a.console.log, b.console.log)" % work)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
