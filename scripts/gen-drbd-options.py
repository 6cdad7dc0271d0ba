#!/usr/bin/env python3
"""Generates core/model/src/props/drbd_catalog.rs: the DRBD options a `DrbdOptions/<Section>/<name>`
property can carry, with their value types and bounds.

Usage: scripts/gen-drbd-options.py > core/model/src/props/drbd_catalog.rs && cargo fmt -p strata-model

The facts come from the installed drbd-utils: `drbdsetup xml-help <command>` describes every
option of a command (type, bounds, default, scale). LINSTOR's property sections map onto
drbdsetup's commands like this:

    DrbdOptions/Resource/<name>    resource-options
    DrbdOptions/Disk/<name>        disk-options
    DrbdOptions/Net/<name>         net-options (plus what only new-peer takes, see below)
    DrbdOptions/PeerDevice/<name>  peer-device-options
    DrbdOptions/Handlers/<name>    the handlers section of drbd.conf (no drbdsetup command)

The generated file is committed: building the model never needs drbdsetup.
"""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

# (LINSTOR section, drbdsetup commands whose options it carries). An option that several
# commands print is taken from the first.
SECTIONS = [
    ("Resource", ["resource-options"]),
    ("Disk", ["disk-options"]),
    # `transport` can only be chosen when a connection is made (new-peer), not changed later
    # (net-options), but it is written in the net section of drbd.conf like the others, and
    # LINSTOR's Net section has always carried it.
    ("Net", ["net-options", "new-peer"]),
    ("PeerDevice", ["peer-device-options"]),
]

# Options that are not settings a property could hold.
DROPPED = {
    # A modifier of the drbdsetup call (reset everything not given), not an option value.
    "set-defaults",
    # The connection's name; the satellite names every connection after its peer node.
    "_name",
}

# drbdsetup's numeric `resync-after` is a minor number; in drbd.conf (which the satellite
# writes) it names the resource and volume to wait for (`res/volume`), and drbdadm turns that
# into the minor. A property holds what drbd.conf holds.
AS_STRING = {"resync-after"}

# Enumerations drbdsetup matches without regard to case. xml-help does not say so; in
# drbd-utils the wire protocol is the only enumeration declared that way (`protocol c` works,
# `on-io-error Detach` does not).
IGNORE_CASE = {"protocol"}

# The handlers section of drbd.conf(5) for DRBD 9. drbdsetup has no xml-help for it: handlers
# are commands drbdadm runs, not kernel options. drbdadm 9.22 parses every one of these names.
HANDLERS = [
    "after-resync-target",
    "before-resync-source",
    "before-resync-target",
    "disconnected",
    "fence-peer",
    "initial-split-brain",
    "local-io-error",
    "out-of-sync",
    "pri-lost",
    "pri-lost-after-sb",
    "pri-on-incon-degr",
    "quorum-lost",
    "split-brain",
    "unfence-peer",
]

SCALES = {"1": "DrbdScale::One", "k": "DrbdScale::Kibi", "s": "DrbdScale::Sector"}

ENV = {"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}


def run(argv):
    # drbdsetup complains on stderr when it cannot load the kernel module; the XML on stdout
    # does not depend on it.
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          env=ENV, text=True).stdout


def drbd_utils_version():
    for line in run(["drbdadm", "--version"]).splitlines():
        if line.startswith("DRBDADM_VERSION="):
            return line.split("=", 1)[1]
    return "unknown"


def text_of(opt, tag):
    el = opt.find(tag)
    return None if el is None else (el.text or "")


def rust_str(s):
    return json.dumps(s)


def rust_strs(items):
    return "&[%s]" % ", ".join(rust_str(i) for i in items)


def value_of(name, opt):
    """The Rust `DrbdValue` for one <option> element."""
    kind = opt.get("type")
    if name in AS_STRING:
        return "DrbdValue::String"
    if kind == "boolean":
        return "DrbdValue::Boolean { default: %s }" % ("true" if text_of(opt, "default") == "yes" else "false")
    if kind == "string":
        return "DrbdValue::String"
    if kind == "handler":
        values = [h.text for h in opt.findall("handler")]
        return "DrbdValue::Enum { values: %s, ignore_case: %s }" % (
            rust_strs(values), "true" if name in IGNORE_CASE else "false")
    if kind == "numeric":
        lo, hi, default = (int(text_of(opt, t)) for t in ("min", "max", "default"))
        if lo < 0:
            raise SystemExit("option %s: negative minimum %d is not supported" % (name, lo))
        scale = text_of(opt, "unit_prefix")
        if scale not in SCALES:
            raise SystemExit("option %s: unknown unit_prefix %r" % (name, scale))
        unit = text_of(opt, "unit")
        return "DrbdValue::Numeric { min: %d, max: %d, default: %d, scale: %s, unit: %s }" % (
            lo, hi, default, SCALES[scale], "Some(%s)" % rust_str(unit) if unit else "None")
    if kind == "numeric-or-symbol":
        lo, hi = int(text_of(opt, "min")), int(text_of(opt, "max"))
        symbols = [s.text for s in opt.findall("symbol")]
        return "DrbdValue::NumericOrSymbol { min: %d, max: %d, default: %s, symbols: %s }" % (
            lo, hi, rust_str(text_of(opt, "default")), rust_strs(symbols))
    raise SystemExit("option %s: type %r is not known to this script; decide how to carry it" % (name, kind))


def main():
    entries = []
    for section, commands in SECTIONS:
        seen = {}
        for command in commands:
            root = ET.fromstring(run(["drbdsetup", "xml-help", command]))
            for opt in root.findall("option"):
                name = opt.get("name")
                if name in DROPPED or name in seen:
                    continue
                seen[name] = value_of(name, opt)
        entries += [(section, name, seen[name]) for name in sorted(seen)]
    entries += [("Handlers", name, "DrbdValue::String") for name in sorted(HANDLERS)]

    out = ["// Generated by scripts/gen-drbd-options.py; do not edit by hand.",
           "// Source: drbdsetup xml-help of drbd-utils %s, and drbd.conf(5) for the handlers." % drbd_utils_version(),
           "",
           "use super::drbd_def::{DrbdOptionDef, DrbdScale, DrbdSection, DrbdValue};",
           "",
           "pub(crate) static DRBD_CATALOG: &[DrbdOptionDef] = &["]
    for section, name, value in entries:
        out.append("    DrbdOptionDef {")
        out.append("        section: DrbdSection::%s," % section)
        out.append("        name: %s," % rust_str(name))
        out.append("        value: %s," % value)
        out.append("    },")
    out.append("];")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
