#!/usr/bin/env python3
"""Checks the documentation against the code (run by scripts/check-docs.sh; standard library only).

Checks, each item counted as one check:

- keys:     every configuration key the C ABI accepts (``CONFIG_KEYS`` and the ``"key" =>`` arms of
            ``ClientOptions::set`` in core/src/api/options.rs) has a row in a table of docs/configuration.md;
- codes:    every result code (src/result.rs and include/consulnative.h) has a row in a table of
            docs/result-codes.md that names it (``CONSULNATIVE_RESULT_X``) and gives its number;
- env:      every environment variable the library, the bindings and the dev agent read (found by scanning
            their sources for env::var, var("..."), getenv, os.environ, ENV[...]) has a row in a table of
            docs/configuration.md;
- snippets: every ```python and ```ruby block of docs/**/*.md runs against a fresh dev agent (a DevAgent of
            the binding, as `agent`, and `agent.client()` as `client`), with the library from CONSULNATIVE_LIB;
            every ```rust block runs as a doctest (rustdoc --test against the core crate cargo built) and every
            ```c block holding `int main(` is compiled (-Wall -Wextra -Werror) and run, both with
            CONSUL_HTTP_ADDR pointing at a dev agent; a block preceded by ``<!-- snippet: https-agent -->``
            runs with CONSUL_HTTP_ADDR, CONSUL_CACERT and CONSUL_HTTP_TOKEN_FILE pointing at a dev agent that
            requires a token, behind an HTTPS proxy; one preceded by ``<!-- snippet: syntax-only (why) -->`` is
            only compiled;
- links:    every relative link (and #anchor) in every Markdown file of the repository resolves.

Usage: check_docs.py [--root DIR] [--only keys,codes,env,snippets,links] [--verbose]
The last line printed is ``N passed, M failed``; the exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

GROUPS = ("keys", "codes", "env", "snippets", "links")

# Directories never scanned for Markdown files (build output, VCS, caches).
SKIP_DIRS = {"target", "node_modules", "__pycache__", "build", "vendor"}

# Where the library, its bindings and the dev agent read environment variables (tests and benches excluded).
ENV_SOURCES = ("core/src", "src", "devagent/src", "bindings/python/consulnative", "bindings/ruby/lib",
               "examples/c/dev_agent.c")
# Standard variables read only to find programs; not the library's configuration.
ENV_IGNORED = {"PATH", "HOME", "TMPDIR"}

# Generated pages: their snippets are not the docs' own.
SNIPPET_SKIP_FILES = {"docs/benchmarks.md"}
SNIPPET_TIMEOUT = 90.0


class Report:
    """Collects check outcomes and prints them: failures always, passes with --verbose."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.passed = 0
        self.failed = 0
        self.by_group: Dict[str, List[int]] = {}

    def check(self, group: str, ok: bool, what: str, why: str = "") -> None:
        counts = self.by_group.setdefault(group, [0, 0])
        if ok:
            self.passed += 1
            counts[0] += 1
            if self.verbose:
                print(f"ok    {group}: {what}")
        else:
            self.failed += 1
            counts[1] += 1
            print(f"FAIL  {group}: {what}" + (f"\n      {why}" if why else ""))
            sys.stdout.flush()


# ---------------------------------------------------------------------------------------------------------------
# Reading the code


def read(root: Path, rel: str) -> str:
    path = root / rel
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def config_keys(root: Path) -> List[str]:
    """CONFIG_KEYS, plus every key `ClientOptions::set` matches on (a key accepted but not listed counts too)."""
    text = read(root, "core/src/api/options.rs")
    keys: List[str] = []
    m = re.search(r"pub const CONFIG_KEYS: &\[&str\] = &\[(.*?)\];", text, re.S)
    if m:
        keys += re.findall(r'"([^"]+)"', m.group(1))
    # `set` and the helpers it hands keys to (`set_agent_key`...).
    for body in re.finditer(r"(?:pub )?fn set\w*\(.*?\n    }\n", text, re.S):
        keys += re.findall(r'^\s*"([a-z][a-z0-9_]*)"\s*(?:if [^=]*)?=>', body.group(0), re.M)
    return list(dict.fromkeys(keys))


def camel_to_upper_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def result_codes(root: Path) -> List[Tuple[str, int]]:
    """(CONSULNATIVE_RESULT_X, number) from the C ABI crate's enum and from the header, merged."""
    codes: Dict[str, int] = {}
    src = read(root, "src/result.rs")
    m = re.search(r"pub enum consulnative_result \{(.*?)\n\}", src, re.S)
    if m:
        for name, number in re.findall(r"^\s*([A-Z][A-Za-z0-9]*)\s*=\s*(\d+)\s*,", m.group(1), re.M):
            codes["CONSULNATIVE_RESULT_" + camel_to_upper_snake(name)] = int(number)
    header = read(root, "include/consulnative.h")
    for name, number in re.findall(r"\b(CONSULNATIVE_RESULT_[A-Z0-9_]+)\s*=\s*(\d+)", header):
        codes.setdefault(name, int(number))
    return sorted(codes.items(), key=lambda kv: kv[1])


def _strip_rust_tests(text: str) -> str:
    m = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod ", text, re.M)
    return text[: m.start()] if m else text


_STR = r"""["']([A-Z][A-Z0-9_]*)["']"""
_IDENT = r"([A-Z][A-Z0-9_]*)"
_READS = {
    ".rs": [r"(?<![\w.])(?:env::)?var(?:_os)?\(\s*{x}\s*\)"],
    ".py": [r"os\.environ\.get\(\s*{x}", r"os\.getenv\(\s*{x}", r"os\.environ\[\s*{x}\s*\](?!\s*=[^=])"],
    ".rb": [r"ENV\[\s*{x}\s*\](?!\s*\|?\|?=[^=])", r"ENV\.fetch\(\s*{x}", r"ENV\.key\?\(\s*{x}"],
    ".c": [r"getenv\(\s*{x}\s*\)"],
}


def env_reads(root: Path) -> Dict[str, List[str]]:
    """Every environment variable read in ENV_SOURCES: name -> ["file:line", ...]."""
    found: Dict[str, List[str]] = {}
    files: List[Path] = []
    for rel in ENV_SOURCES:
        p = root / rel
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += [f for f in sorted(p.rglob("*")) if f.suffix in _READS and "tests" not in f.relative_to(p).parts]
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        if f.suffix == ".rs":
            text = _strip_rust_tests(text)
        # Comment lines (an example in a doc comment is not a read); blanked so line numbers stay right.
        comment = r"^\s*(#|//|\*|/\*)" if f.suffix != ".c" else r"^\s*(//|\*|/\*)"
        text = "\n".join("" if re.match(comment, l) else l for l in text.split("\n"))
        constants = dict(re.findall(r"^\s*(?:pub\s+)?(?:const\s+)?([A-Z][A-Z0-9_]*)\s*(?::\s*&(?:'static\s+)?str\s*)?=\s*"
                                    r"""["']([A-Z][A-Z0-9_]*)["']""", text, re.M))
        for pattern in _READS[f.suffix]:
            for kind, sub in (("str", _STR), ("ident", _IDENT)):
                for m in re.finditer(pattern.replace("{x}", sub), text):
                    name = m.group(1) if kind == "str" else constants.get(m.group(1))
                    if name is None or name in ENV_IGNORED:
                        continue
                    line = text.count("\n", 0, m.start()) + 1
                    where = f"{f.relative_to(root)}:{line}"
                    if where not in found.setdefault(name, []):
                        found[name].append(where)
    return found


# ---------------------------------------------------------------------------------------------------------------
# Reading the docs


def strip_code(text: str) -> str:
    """The Markdown text with fenced code blocks blanked out (line numbers kept)."""
    out: List[str] = []
    fence: Optional[str] = None
    for line in text.split("\n"):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if fence is None and m:
            fence = m.group(1)[0] * 3
            out.append("")
        elif fence is not None and line.strip().startswith(fence):
            fence = None
            out.append("")
        else:
            out.append("" if fence is not None else line)
    return "\n".join(out)


def table_first_cells(text: str) -> List[Tuple[str, str]]:
    """(first cell, whole row) of every Markdown table row outside code blocks."""
    rows = []
    for line in strip_code(text).split("\n"):
        s = line.strip()
        if s.startswith("|") and not re.match(r"^\|[\s:|-]+\|?$", s):
            cells = [c.strip() for c in s.strip("|").split("|")]
            rows.append((cells[0] if cells else "", s))
    return rows


def documented_names(text: str) -> Set[str]:
    """Names written as `code` in the first cell of a table row."""
    names: Set[str] = set()
    for first, _ in table_first_cells(text):
        names.update(re.findall(r"`([^`]+)`", first))
    return names


# ---------------------------------------------------------------------------------------------------------------
# Table checks


def check_keys(root: Path, report: Report) -> None:
    keys = config_keys(root)
    if not keys:
        report.check("keys", False, "core/src/api/options.rs", "no CONFIG_KEYS found: has the code moved?")
        return
    doc = read(root, "docs/configuration.md")
    documented = documented_names(doc)
    for key in keys:
        report.check("keys", key in documented, f"`{key}`",
                     f"the C ABI accepts `{key}` but no table row of docs/configuration.md starts with it")


def check_codes(root: Path, report: Report) -> None:
    codes = result_codes(root)
    if not codes:
        report.check("codes", False, "src/result.rs", "no result codes found: has the code moved?")
        return
    rows = table_first_cells(read(root, "docs/result-codes.md"))
    for name, number in codes:
        hits = [row for _, row in rows if re.search(rf"\b{name}\b", row)]
        ok = any(re.search(rf"\|\s*`?{number}`?\s*\|", row) for row in hits)
        why = (f"no table row of docs/result-codes.md names {name}" if not hits else
               f"docs/result-codes.md names {name} but not with its number {number}")
        report.check("codes", ok, f"{name} = {number}", why)


def check_env(root: Path, report: Report) -> None:
    reads = env_reads(root)
    if not reads:
        report.check("env", False, "environment reads", "found no environment variable read: has the code moved?")
        return
    documented = documented_names(read(root, "docs/configuration.md"))
    for name in sorted(reads):
        where = ", ".join(reads[name][:3])
        report.check("env", name in documented, f"{name} (read at {where})",
                     f"{name} is read at {where} but no table row of docs/configuration.md starts with it")


# ---------------------------------------------------------------------------------------------------------------
# Links


def markdown_files(root: Path) -> List[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".md")]
    return found


def github_slug(heading: str) -> str:
    h = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    h = re.sub(r"<[^>]+>", "", h).lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def anchors(path: Path, cache: Dict[Path, Set[str]]) -> Set[str]:
    if path not in cache:
        seen: Dict[str, int] = {}
        result: Set[str] = set()
        for line in strip_code(path.read_text(encoding="utf-8", errors="replace")).split("\n"):
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if not m:
                continue
            slug = github_slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            result.add(slug if n == 0 else f"{slug}-{n}")
        result.update(re.findall(r"""<a\s+(?:name|id)=["']([^"']+)["']""", path.read_text(encoding="utf-8")))
        cache[path] = result
    return cache[path]


def links_in(text: str) -> List[Tuple[int, str]]:
    """(line, target) of inline links, images and reference definitions, outside code."""
    out = []
    for n, line in enumerate(strip_code(text).split("\n"), 1):
        line = re.sub(r"`[^`]*`", "", line)
        for m in re.finditer(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)", line):
            out.append((n, m.group(1)))
        m = re.match(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", line)
        if m:
            out.append((n, m.group(1)))
    return out


def check_links(root: Path, report: Report) -> None:
    cache: Dict[Path, Set[str]] = {}
    for md in markdown_files(root):
        rel = md.relative_to(root)
        for line, target in links_in(md.read_text(encoding="utf-8", errors="replace")):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # http:, https:, mailto:...
                continue
            path_part, _, fragment = target.partition("#")
            path_part = urllib.parse.unquote(path_part)
            if path_part.startswith("/"):
                dest = root / path_part.lstrip("/")
            elif path_part:
                dest = md.parent / path_part
            else:
                dest = md
            what = f"{rel}:{line}: {target}"
            if not dest.exists():
                report.check("links", False, what, f"{dest.relative_to(root) if root in dest.parents else dest} "
                             "does not exist")
                continue
            if fragment and dest.suffix == ".md" and dest.is_file():
                ok = fragment.lower() in anchors(dest.resolve(), cache)
                report.check("links", ok, what, f"no heading of {dest.name} has the anchor #{fragment}")
                continue
            report.check("links", True, what)


# ---------------------------------------------------------------------------------------------------------------
# Snippets

def check_snippets(root: Path, report: Report) -> None:
    """The snippet checks live in scripts/docs_snippets.py (imported here so that module can import ours)."""
    from docs_snippets import check_snippets as run

    run(root, report)


CHECKS: Dict[str, Callable[[Path, Report], None]] = {
    "keys": check_keys, "codes": check_codes, "env": check_env, "snippets": check_snippets, "links": check_links,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--only", default=",".join(GROUPS), help="comma-separated: " + ", ".join(GROUPS))
    parser.add_argument("--verbose", "-v", action="store_true", help="also list the checks that pass")
    args = parser.parse_args(argv)
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in groups if g not in CHECKS]
    if unknown:
        parser.error(f"unknown check group(s): {', '.join(unknown)}")
    root = args.root.resolve()
    report = Report(args.verbose)
    for group in groups:
        started = time.monotonic()
        CHECKS[group](root, report)
        p, f = report.by_group.get(group, [0, 0])
        print(f"--    {group}: {p} passed, {f} failed ({time.monotonic() - started:.1f} s)")
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
