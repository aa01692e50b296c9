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
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
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

FENCE_LANGS = {"python": "python", "py": "python", "python3": "python", "ruby": "ruby", "rb": "ruby",
               "rust": "rust", "c": "c"}
MARKER = re.compile(r"<!--\s*snippet:\s*(syntax-only|https-agent)\b.*?-->")


class Snippet:
    def __init__(self, path: Path, rel: str, line: int, lang: str, code: str, marker: Optional[str]) -> None:
        self.path, self.rel, self.line, self.lang, self.code = path, rel, line, lang, code
        self.syntax_only = marker == "syntax-only"
        self.https = marker == "https-agent"

    @property
    def name(self) -> str:
        how = ", syntax only" if self.syntax_only else ", agent over HTTPS" if self.https else ""
        return f"{self.rel}:{self.line} ({self.lang}{how})"


def snippets(root: Path) -> List[Snippet]:
    found: List[Snippet] = []
    docs = root / "docs"
    if not docs.is_dir():
        return found
    for md in markdown_files(docs):
        rel = str(md.relative_to(root))
        if rel in SNIPPET_SKIP_FILES:
            continue
        lines = md.read_text(encoding="utf-8").split("\n")
        i = 0
        while i < len(lines):
            m = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", lines[i])
            if not m:
                i += 1
                continue
            indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
            start = i + 1
            j = start
            while j < len(lines) and not lines[j].strip().startswith(fence[0] * len(fence)):
                j += 1
            if lang in FENCE_LANGS:
                before = "\n".join(lines[max(0, i - 3):i])
                body = "\n".join(l[len(indent):] if l.startswith(indent) else l for l in lines[start:j])
                kind = FENCE_LANGS[lang]
                # C: only complete programs are checked; fragments showing one call are not.
                if kind != "c" or re.search(r"^int main\(", body, re.M):
                    marker = MARKER.search(before)
                    found.append(Snippet(md, rel, start + 1, kind, body, marker.group(1) if marker else None))
            i = j + 1
    return found


PY_DRIVER = r'''
import sys
path, rel, line = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, encoding="utf-8") as f:
    source = f.read()
code = compile("\n" * (line - 1) + source, rel, "exec")
if sys.argv[4] == "syntax":
    sys.exit(0)
import consulnative
agent = consulnative.DevAgent()
client = agent.client()
namespace = {"__name__": "__main__", "consulnative": consulnative, "agent": agent, "client": client}
try:
    exec(code, namespace)
finally:
    client.close()
    agent.close()
'''

RB_DRIVER = r'''
path, rel, line, mode = ARGV
source = File.read(path)
if mode == "syntax"
  RubyVM::InstructionSequence.compile(source, rel, rel, Integer(line))
  exit 0
end
require "consulnative"
agent = ConsulNative::DevAgent.new
client = agent.client
begin
  eval(source, binding, rel, Integer(line)) # rubocop:disable Security/Eval
ensure
  client.close
  agent.close
end
'''


class BinaryAgent:
    """The consulnative-dev-agent binary as a child process, for the C and Rust snippets (they read
    CONSUL_HTTP_ADDR). It exits when its stdin closes, so it never outlives the checker."""

    def __init__(self, binary: str) -> None:
        self.proc = subprocess.Popen([binary, "--http-addr", "127.0.0.1:0", "--exit-on-stdin-eof"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode("utf-8", "replace").strip()
        prefix = "consulnative-dev-agent listening on http://"
        if not line.startswith(prefix):
            self.close()
            raise RuntimeError(f"{binary} did not start: {line!r}")
        self.address = line[len(prefix):]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


class HttpsAgent:
    """A dev agent that requires an ACL token, behind a TLS-terminating proxy with a certificate from a throwaway CA
    (made with the openssl command): a Consul agent over HTTPS, for the snippets marked `https-agent`. They run
    with CONSUL_HTTP_ADDR=https://127.0.0.1:PORT, CONSUL_CACERT and CONSUL_HTTP_TOKEN_FILE set."""

    TOKEN = "docs-check-token"

    def __init__(self, binary: str, workdir: Path) -> None:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("the openssl command is not installed")
        d = workdir / "https-agent"
        d.mkdir(exist_ok=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        subprocess.run([openssl, "req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"),
                        "-days", "1", "-subj", "/CN=docs check CA"], **quiet)
        subprocess.run([openssl, "req", *ec, "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"),
                        "-subj", "/CN=server.dc1.consul"], **quiet)
        (d / "ext.cnf").write_text("subjectAltName=DNS:server.dc1.consul,DNS:localhost,IP:127.0.0.1\n"
                                   "extendedKeyUsage=serverAuth\n")
        subprocess.run([openssl, "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"),
                        "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out", str(d / "server.pem"), "-days", "1",
                        "-extfile", str(d / "ext.cnf")], **quiet)
        (d / "token").write_text(self.TOKEN + "\n")
        self.ca_file, self.token_file = d / "ca.pem", d / "token"

        os.environ["CONSUL_DEV_AGENT_TOKEN"] = self.TOKEN  # the binary reads it at start
        try:
            self.agent = BinaryAgent(binary)
        finally:
            del os.environ["CONSUL_DEV_AGENT_TOKEN"]
        host, port = self.agent.address.rsplit(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(d / "server.pem"), str(d / "server.key"))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"https://127.0.0.1:{self.listener.getsockname()[1]}"

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def serve() -> None:
            while True:
                try:
                    raw, _ = self.listener.accept()
                except OSError:
                    return  # closed
                try:
                    tls = ctx.wrap_socket(raw, server_side=True)
                    upstream = socket.create_connection((host, int(port)))
                except OSError:
                    raw.close()
                    continue
                threading.Thread(target=pipe, args=(tls, upstream), daemon=True).start()
                threading.Thread(target=pipe, args=(upstream, tls), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()

    def env(self) -> Dict[str, str]:
        return {"CONSUL_HTTP_ADDR": self.address, "CONSUL_CACERT": str(self.ca_file),
                "CONSUL_HTTP_TOKEN_FILE": str(self.token_file)}

    def close(self) -> None:
        self.listener.close()
        self.agent.close()


def dev_agent_binary(lib: str) -> str:
    return os.environ.get("CONSULNATIVE_DEV_AGENT") or str(Path(lib).resolve().parent / "consulnative-dev-agent")


def run_c(root: Path, snippet: Snippet, workdir: Path, env: Dict[str, str]) -> Tuple[bool, str]:
    """Compiles a C program with -Wall -Wextra -Werror against the header and the library, and runs it against
    a fresh dev agent."""
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        return False, "no C compiler (gcc) is installed"
    lib = Path(env["CONSULNATIVE_LIB"]).resolve()
    linkdir = workdir / "lib"
    linkdir.mkdir(exist_ok=True)
    soname = linkdir / "libconsulnative.so.0"  # the soname cargo does not write
    if not soname.exists():
        soname.symlink_to(lib)
    src = workdir / f"snippet-{snippet.line}.c"
    src.write_text(f'#line {snippet.line} "{snippet.rel}"\n' + snippet.code + "\n", encoding="utf-8")
    exe = workdir / f"snippet-{snippet.line}"
    compile_cmd = [cc, "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-I", str(root / "include"),
                   str(src), "-L", str(lib.parent), f"-Wl,-rpath,{linkdir}", "-lconsulnative", "-lpthread",
                   "-o", str(exe)]
    proc = subprocess.run(compile_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        return False, "does not compile:\n" + tail(proc.stdout.decode("utf-8", "replace"))
    if snippet.syntax_only:
        return True, ""
    agent = BinaryAgent(dev_agent_binary(env["CONSULNATIVE_LIB"]))
    try:
        run_env = dict(env, CONSUL_HTTP_ADDR=agent.address)
        proc = subprocess.run([str(exe)], env=run_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=SNIPPET_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {SNIPPET_TIMEOUT:g} s"
    finally:
        agent.close()
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        return False, f"exit status {proc.returncode}\n" + tail(out)
    return True, out


def run_rust(root: Path, group: List[Snippet], workdir: Path, env: Dict[str, str]) -> Dict[int, Tuple[bool, str]]:
    """Runs the Rust blocks of one page as doctests (`rustdoc --test`) against the core crate built by
    `cargo build`, with CONSUL_HTTP_ADDR pointing at a fresh dev agent. Returns line -> outcome."""
    rustdoc = shutil.which("rustdoc")
    lib = Path(env["CONSULNATIVE_LIB"]).resolve()
    rlib = lib.parent / "libconsulnative_core.rlib"
    if rustdoc is None or not rlib.is_file():
        why = "rustdoc is not installed" if rustdoc is None else f"{rlib} does not exist: run `cargo build` first"
        return {s.line: (False, why) for s in group}
    # A Markdown file holding only the Rust blocks, each at its original line, so rustdoc names them by it.
    lines: List[str] = []
    for s in group:
        lines += [""] * (s.line - 2 - len(lines))
        lines += ["```rust" + (",no_run" if s.syntax_only else "")] + s.code.split("\n") + ["```"]
    page = workdir / Path(group[0].rel).name
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    agent = BinaryAgent(dev_agent_binary(env["CONSULNATIVE_LIB"]))
    try:
        cmd = [rustdoc, "--test", str(page), "--edition", "2021", "-L", f"dependency={lib.parent / 'deps'}",
               "--extern", f"consulnative_core={rlib}", "--test-args", "--test-threads=2"]
        proc = subprocess.run(cmd, cwd=str(workdir), env=dict(env, CONSUL_HTTP_ADDR=agent.address),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=SNIPPET_TIMEOUT * max(1, len(group)))
        out = proc.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return {s.line: (False, "rustdoc --test timed out") for s in group}
    finally:
        agent.close()
    results: Dict[int, Tuple[bool, str]] = {}
    for m in re.finditer(r"^test .*? - \(line (\d+)\)(?: - compile)? \.\.\. (\w+)", out, re.M):
        results[int(m.group(1)) + 1] = (m.group(2) == "ok", out)  # rustdoc names the fence line
    for s in group:
        if s.line not in results:
            results[s.line] = (False, "rustdoc did not report this block:\n" + tail(out))
        elif not results[s.line][0]:
            results[s.line] = (False, tail(out, 40))
    return results


def run_snippet(root: Path, snippet: Snippet, workdir: Path, env: Dict[str, str],
                https: Optional[HttpsAgent] = None) -> Tuple[bool, str]:
    src = workdir / f"snippet-{abs(hash((snippet.rel, snippet.line)))}.{ 'py' if snippet.lang == 'python' else 'rb'}"
    src.write_text(snippet.code + "\n", encoding="utf-8")
    mode = "syntax" if snippet.syntax_only else "run"
    if snippet.lang == "python":
        cmd = [sys.executable, "-X", "dev", str(workdir / "driver.py"), str(src), snippet.rel, str(snippet.line), mode]
    else:
        ruby = shutil.which("ruby")
        if ruby is None:
            return False, "ruby is not installed"
        cmd = [ruby, "-I", str(root / "bindings/ruby/lib"), str(workdir / "driver.rb"), str(src), snippet.rel,
               str(snippet.line), mode]
    if snippet.https:
        if https is None:
            return False, "no agent over HTTPS could be started for it"
        env = dict(env, **https.env())
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=str(workdir), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=SNIPPET_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = (e.output or b"").decode("utf-8", "replace")
        return False, f"timed out after {SNIPPET_TIMEOUT:g} s\n" + tail(out)
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        return False, f"exit status {proc.returncode} after {time.monotonic() - started:.1f} s\n" + tail(out)
    if snippet.lang == "python" and re.search(r"ResourceWarning|Exception ignored", out):
        return False, "it leaves something unclosed (python -X dev warned):\n" + tail(out)
    return True, out


def tail(text: str, lines: int = 15) -> str:
    return "\n".join("      | " + l for l in text.rstrip().split("\n")[-lines:])


def check_snippets(root: Path, report: Report) -> None:
    found = snippets(root)
    if not found:
        report.check("snippets", False, "docs/", "no Python or Ruby snippet found in docs/")
        return
    lib = os.environ.get("CONSULNATIVE_LIB") or str(root / "target/debug/libconsulnative.so")
    env = dict(os.environ)
    env["CONSULNATIVE_LIB"] = lib
    env["PYTHONPATH"] = str(root / "bindings/python") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                                          else "")
    for var in ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "CONSUL_HTTP_SSL",
                "CONSULNATIVE_LOG"):
        env.pop(var, None)  # the snippets' client is the dev agent's, whatever this shell points at
    needs_lib = any(not s.syntax_only for s in found)
    if needs_lib and not Path(lib).is_file():
        for s in found:
            report.check("snippets", False, s.name, f"{lib} does not exist: run `cargo build` first")
        return
    with tempfile.TemporaryDirectory(prefix="check-docs-") as tmp:
        workdir = Path(tmp)
        (workdir / "driver.py").write_text(PY_DRIVER, encoding="utf-8")
        (workdir / "driver.rb").write_text(RB_DRIVER, encoding="utf-8")
        rust_pages: Dict[str, List[Snippet]] = {}
        for s in found:
            if s.lang == "rust":
                rust_pages.setdefault(s.rel, []).append(s)
        rust_results = {rel: run_rust(root, group, workdir, env) for rel, group in rust_pages.items()}
        https: Optional[HttpsAgent] = None
        if any(s.https for s in found):
            try:
                https = HttpsAgent(dev_agent_binary(lib), workdir)
            except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
                print(f"--    snippets: no agent over HTTPS: {e}")
        for s in found:
            if s.lang == "rust":
                ok, detail = rust_results[s.rel][s.line]
                detail = "" if ok else detail
            elif s.lang == "c":
                ok, detail = run_c(root, s, workdir, env)
            else:
                ok, detail = run_snippet(root, s, workdir, env, https)
            report.check("snippets", ok, s.name, detail)
            if ok and report.verbose and detail.strip():
                print(tail(detail, 8))
        if https is not None:
            https.close()


# ---------------------------------------------------------------------------------------------------------------

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
