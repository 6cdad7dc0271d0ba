#!/usr/bin/env python3
"""Writes every method and path of a LINSTOR REST API openapi file, one "METHOD /path" a line.

    scripts/spec-routes.py linstor-rest-v1-openapi.yaml > core/api/linstor-rest-routes.txt

The list is what the controller's route test compares the served routes with.
"""
import re
import sys

METHODS = ("get", "put", "post", "delete", "patch", "options", "head")


def routes(text):
    path, version, out = None, None, []
    for line in text.splitlines():
        m = re.match(r"^  version: *(\S+)", line)
        if m and version is None:
            version = m.group(1).strip("'\"")
        m = re.match(r"^  (/\S*):\s*$", line)
        if m:
            path = m.group(1)
            continue
        if re.match(r"^\S", line):
            path = None
        m = re.match(r"^    (\w+):\s*$", line)
        if path and m and m.group(1) in METHODS:
            out.append(f"{m.group(1).upper()} {path}")
    return version, out


def main():
    version, found = routes(open(sys.argv[1], encoding="utf-8").read())
    print(f"# Methods and paths of the LINSTOR REST API v1 specification {version or ''}".rstrip())
    print("# (written by scripts/spec-routes.py from the openapi file; one route a line)")
    for r in sorted(set(found), key=lambda r: (r.split(" ", 1)[1], r)):
        print(r)


if __name__ == "__main__":
    main()
