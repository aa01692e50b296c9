"""The snippet runner of scripts/check_docs.py: every Python, Ruby, Rust and C block of the docs runs (or, when
marked syntax-only, compiles) against a dev agent started for it, with the library from target/debug."""

from __future__ import annotations

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
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from check_docs import SNIPPET_SKIP_FILES, SNIPPET_TIMEOUT, Report, markdown_files


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
