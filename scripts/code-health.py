#!/usr/bin/env python3
"""Code-health checks of the workspace: long functions and module import circles.

    scripts/code-health.py            # report, exit 1 if a limit is broken
    scripts/code-health.py --list N   # also list every non-test function over N lines

Limits: no non-test function longer than 120 lines (generated files and the
REST route table excepted) and no circle among the `use crate::...` imports of
one crate's modules.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LIMIT = 120
# Generated code and the route table are exempt, as the code-health rule says.
EXEMPT_FILES = {"core/model/src/props/drbd_catalog.rs", "core/model/src/props/catalog.rs"}
EXEMPT_FNS = {("core/controller/src/rest/mod.rs", "router")}

FN_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def rust_files():
    for top in ("core", "drbd", "plugins", "bench", "tests"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            if "/target" in d:
                continue
            for f in files:
                if f.endswith(".rs"):
                    p = os.path.join(d, f)
                    yield os.path.relpath(p, ROOT)


def strip(line):
    """The line without string/char literals and comments (good enough for brace counting)."""
    line = re.sub(r'"(?:\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(?:\\.|[^'\\])'", "''", line)
    i = line.find("//")
    return line if i < 0 else line[:i]


def functions(path):
    """(name, first line, length, in_test) of every fn with a body."""
    lines = open(os.path.join(ROOT, path), encoding="utf-8").read().split("\n")
    out = []
    test_depth = None  # brace depth at which a #[cfg(test)] module started
    depth = 0
    pending_test = False
    stack = []  # (name, start, depth_before)
    pending_fn = None
    i = 0
    in_raw = False
    while i < len(lines):
        raw = lines[i]
        if in_raw:
            if '"#' in raw:
                in_raw = False
            i += 1
            continue
        if 'r#"' in raw and '"#' not in raw.split('r#"', 1)[1]:
            in_raw = True
        s = strip(raw)
        if re.match(r"\s*#\[cfg\(test\)\]", s) or re.match(r"\s*#\[(tokio::)?test", s):
            pending_test = True
        m = FN_RE.match(s)
        if m:
            pending_fn = (m.group(1), i + 1)
        for ch in s:
            if ch == "{":
                if pending_fn:
                    stack.append((pending_fn[0], pending_fn[1], depth))
                    if pending_test and test_depth is None:
                        test_depth = depth
                        pending_test = False
                    pending_fn = None
                elif pending_test and test_depth is None and re.match(r"\s*(pub\s+)?mod\s", s):
                    test_depth = depth
                    pending_test = False
                depth += 1
            elif ch == "}":
                depth -= 1
                if stack and stack[-1][2] == depth:
                    name, start, _ = stack.pop()
                    in_test = test_depth is not None or path.startswith("tests/") or "/tests/" in path
                    out.append((name, start, i + 1 - start + 1, in_test))
                if test_depth is not None and depth == test_depth:
                    test_depth = None
            elif ch == ";" and pending_fn:
                pending_fn = None  # a declaration without body
        i += 1
    return out


def long_functions(limit):
    found = []
    for path in rust_files():
        if path in EXEMPT_FILES or path.startswith("bench/") or path.startswith("tests/"):
            continue
        for name, start, length, in_test in functions(path):
            if in_test or (path, name) in EXEMPT_FNS:
                continue
            if length > limit:
                found.append((length, path, start, name))
    return sorted(found, reverse=True)


def crate_roots():
    for path in rust_files():
        if path.endswith("src/lib.rs") or path.endswith("src/main.rs"):
            yield os.path.dirname(path)


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3]
    parts = rel.split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts) or "crate"


def import_graph(src):
    mods = {}
    for d, _, files in os.walk(os.path.join(ROOT, src)):
        for f in files:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                mods[module_of(os.path.join(ROOT, src), p)] = p
    if "bin" in {m.split("::")[0] for m in mods}:
        mods = {m: p for m, p in mods.items() if not m.startswith("bin")}
    edges = {m: set() for m in mods}
    for m, p in mods.items():
        text = open(p, encoding="utf-8").read()
        # Only non-test code counts.
        text = text.split("#[cfg(test)]\nmod tests")[0]
        refs = set(re.findall(r"\bcrate::((?:\w+::)*\w+)", text))
        parent = m.rsplit("::", 1)[0] if "::" in m else "crate"
        for sup in re.findall(r"\bsuper::((?:\w+::)*\w+)", text):
            refs.add((parent + "::" + sup) if parent != "crate" else sup)
        for r in refs:
            parts = r.split("::")
            # the longest module prefix that names a module
            for k in range(len(parts), 0, -1):
                cand = "::".join(parts[:k])
                if cand in mods:
                    if cand != m and not m.startswith(cand + "::") and not cand.startswith(m + "::"):
                        edges[m].add(cand)
                    break
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def main():
    listing = None
    if "--list" in sys.argv:
        listing = int(sys.argv[sys.argv.index("--list") + 1])
    bad = False
    over = long_functions(LIMIT)
    for length, path, start, name in long_functions(listing if listing is not None else LIMIT):
        mark = "OVER" if length > LIMIT else "    "
        print(f"{mark} {length:4} lines  {path}:{start}  fn {name}")
    if over:
        bad = True
        print(f"{len(over)} non-test function(s) over {LIMIT} lines")
    for src in sorted(set(crate_roots())):
        for comp in cycles(import_graph(src)):
            bad = True
            print(f"import circle in {src}: {' <-> '.join(comp)}")
    if not bad:
        print(f"code health: no function over {LIMIT} lines, no import circle")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
