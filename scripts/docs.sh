#!/usr/bin/env bash
# Builds the API references from the code into target/docs/ (not committed), with target/docs/index.html linking
# them:
#   rust/    rustdoc of consulnative-core (cargo doc -p consulnative-core --no-deps)
#   python/  pdoc of bindings/python/consulnative (pdoc from PyPI, in the venv target/docs-venv)
#   ruby/    YARD of bindings/ruby/lib (Debian's yard package, installed with apt-get when missing)
#   c/       include/consulnative.h rendered: every function, type, callback and enum with its comment
# The guide is docs/ (plain Markdown, start at docs/README.md).
#
#   bash scripts/docs.sh
#
# pdoc imports the Python package, which loads libconsulnative.so: the library is built first if
# target/debug/libconsulnative.so is missing (or CONSULNATIVE_LIB names one).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/docs
step() { printf '==> %s\n' "$*"; }
started=$SECONDS

rm -rf "$OUT"
mkdir -p "$OUT"

step "rustdoc: consulnative-core"
cargo doc -p consulnative-core --no-deps --locked --quiet
cp -r target/doc "$OUT/rust"

step "pdoc: the Python binding"
LIB="${CONSULNATIVE_LIB:-$PWD/target/debug/libconsulnative.so}"
if [ ! -f "$LIB" ]; then
  cargo build -p consulnative-ffi --locked --quiet
fi
VENV=target/docs-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import pdoc" 2>/dev/null ||
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check pdoc
CONSULNATIVE_LIB="$LIB" PYTHONPATH="$PWD/bindings/python" \
  "$VENV/bin/python" -m pdoc --docformat restructuredtext -o "$OUT/python" consulnative

step "YARD: the Ruby binding"
if ! command -v yard >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq yard >/dev/null
fi
(cd bindings/ruby && yard doc --quiet --no-save --no-cache --no-stats --markup markdown --readme README.md \
  -o "../../$OUT/ruby" 'lib/**/*.rb')

step "the C header"
mkdir -p "$OUT/c"
python3 - include/consulnative.h "$OUT/c/index.html" <<'PY'
"""Renders consulnative.h as one HTML page: the preface, then every declaration with its comment, grouped."""
import html
import re
import sys

src, dest = sys.argv[1], sys.argv[2]
lines = open(src, encoding="utf-8").read().split("\n")

preface = []
i = 0
if lines and lines[0].startswith("/*"):
    i = 1
    while i < len(lines) and not lines[i].strip().endswith("*/"):
        preface.append(re.sub(r"^\s*\*\s?", "", lines[i]).rstrip())
        i += 1
    i += 1

items = []  # (kind, name, declaration, comment, enum members)
comment = []
while i < len(lines):
    line = lines[i]
    s = line.strip()
    if s.startswith("//"):
        comment.append(s[2:].strip())
        i += 1
        continue
    if s.startswith("/*"):  # a block comment: not documentation of a declaration
        while i < len(lines) and not lines[i].strip().endswith("*/"):
            i += 1
        i += 1
        comment = []
        continue
    if not s or s.startswith("#") or s.startswith("}") or s == 'extern "C" {':
        if s:
            comment = []
        i += 1
        continue
    m = re.match(r"enum (\w+)", s)
    if m:
        members, sub = [], []
        decl = [line]
        i += 1
        while i < len(lines) and lines[i].strip() != "};":
            t = lines[i].strip()
            if t.startswith("//"):
                sub.append(t[2:].strip())
            elif re.match(r"[A-Z_0-9]+\s*=", t):
                name, value = [x.strip() for x in t.rstrip(",").split("=")]
                members.append((name, value, " ".join(sub)))
                sub = []
            i += 1
        items.append(("enum", m.group(1), "", " ".join(comment), members))
        comment = []
        i += 1
        continue
    decl = [line]
    while not decl[-1].rstrip().endswith(";") and i + 1 < len(lines):
        i += 1
        decl.append(lines[i])
    i += 1
    text = "\n".join(decl)
    if not comment:  # the typedefs cbindgen adds for C without a fixed enum type
        continue
    if text.startswith("typedef struct"):
        kind, name = "type", re.search(r"typedef struct (\w+)", text).group(1)
    elif text.startswith("typedef"):
        kind, name = "callback", re.search(r"\(\*(\w+)\)", text).group(1)
    else:
        kind, name = "function", re.search(r"(\w+)\(", text).group(1)
    items.append((kind, name, text, " ".join(comment), []))
    comment = []

names = {name for _, name, _, _, _ in items} | {m for *_, members in items for m, _, _ in members}


def prose(text):
    """Escapes text, turns `code` into <code> and links the names of other items."""
    out = []
    for k, part in enumerate(re.split(r"`([^`]*)`", text)):
        part = html.escape(part)
        if k % 2:
            part = re.sub(r"\b(consulnative_\w+|CONSULNATIVE_\w+)\b",
                          lambda m: f'<a href="#{m.group(1)}">{m.group(1)}</a>' if m.group(1) in names
                          else m.group(1), part)
            part = f"<code>{part}</code>"
        out.append(part)
    return "".join(out)


def group_of(name):
    for prefix, title in (("consulnative_config_", "Configuration"), ("consulnative_client_", "Client"),
                          ("consulnative_service_", "Service"), ("consulnative_listener_", "Listener"),
                          ("consulnative_conn_", "Connection")):
        if name.startswith(prefix):
            return title
    return "Library"


sections = [("Result codes and other enums", [x for x in items if x[0] == "enum"]),
            ("Handle types", [x for x in items if x[0] == "type"]),
            ("Callback types", [x for x in items if x[0] == "callback"])]
for title in ("Library", "Configuration", "Client", "Service", "Listener", "Connection"):
    sections.append((f"Functions: {title}", [x for x in items if x[0] == "function" and group_of(x[1]) == title]))

body = []
toc = []
for title, group in sections:
    if not group:
        continue
    anchor = re.sub(r"\W+", "-", title.lower()).strip("-")
    toc.append(f'<li><a href="#{anchor}">{html.escape(title)}</a>: '
               + ", ".join(f'<a href="#{n}"><code>{n}</code></a>' for _, n, *_ in group) + "</li>")
    body.append(f'<h2 id="{anchor}">{html.escape(title)}</h2>')
    for kind, name, decl, doc, members in group:
        body.append(f'<section id="{name}"><h3><code>{name}</code></h3>')
        if decl:
            body.append(f"<pre><code>{html.escape(decl)}</code></pre>")
        body.append(f"<p>{prose(doc)}</p>")
        if members:
            body.append("<table><tr><th>constant</th><th>value</th><th>meaning</th></tr>")
            for m, value, mdoc in members:
                body.append(f'<tr id="{m}"><td><code>{m}</code></td><td>{html.escape(value)}</td>'
                            f"<td>{prose(mdoc)}</td></tr>")
            body.append("</table>")
        body.append("</section>")

page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>consulnative.h</title>
<style>
body {{ font-family: sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }}
pre {{ background: #f4f4f4; padding: .6rem; overflow-x: auto; }} code {{ font-size: .92em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .2rem .5rem; vertical-align: top; }}
section {{ border-top: 1px solid #ddd; margin-top: 1rem; }} li {{ margin-bottom: .4rem; }}
</style></head><body>
<h1><code>include/consulnative.h</code></h1>
<p>The C API of libconsulnative, rendered from the header (generated from the C ABI crate by
<code>cargo run -p xtask -- header</code>). The guide is <code>docs/c.md</code>; result codes are explained in
<code>docs/result-codes.md</code>.</p>
<pre>{html.escape(chr(10).join(preface).strip())}</pre>
<ul>{"".join(toc)}</ul>
{"".join(body)}
</body></html>
"""
open(dest, "w", encoding="utf-8").write(page)
print(f"{sum(1 for x in items if x[0] == 'function')} functions, {len(items)} declarations")
PY

step "index"
version=$(sed -nE 's/^version = "(.*)"/\1/p' Cargo.toml | head -n 1)
cat >"$OUT/index.html" <<HTML
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>libconsulnative $version: API reference</title>
<style>body { font-family: sans-serif; max-width: 50rem; margin: 2rem auto; line-height: 1.5; }</style></head>
<body>
<h1>libconsulnative $version: API reference</h1>
<p>Generated from the code by <code>scripts/docs.sh</code>. The guide (concepts, one page per language,
configuration, result codes, operations) is the Markdown in <code>docs/</code>: start at
<a href="../../docs/README.md">docs/README.md</a>.</p>
<ul>
<li><a href="c/index.html">C</a>: <code>include/consulnative.h</code>, every function, type and code with its comment</li>
<li><a href="rust/consulnative_core/index.html">Rust</a>: the <code>consulnative-core</code> crate (rustdoc)</li>
<li><a href="python/consulnative.html">Python</a>: the <code>consulnative</code> package (pdoc)</li>
<li><a href="ruby/index.html">Ruby</a>: the <code>consulnative</code> gem (YARD)</li>
</ul>
</body></html>
HTML

for page in c/index.html rust/consulnative_core/index.html python/consulnative.html ruby/index.html; do
  [ -s "$OUT/$page" ] || { echo "docs.sh: $OUT/$page was not written" >&2; exit 1; }
done
echo "docs.sh: $OUT/index.html ($((SECONDS - started)) s)"
