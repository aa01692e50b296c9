#!/usr/bin/env python3
"""Tests of scripts/check_docs.py itself: on a copy of the repository, adding a configuration key, a result code or
an environment variable without documenting it makes the checker fail and name it; documenting it makes it pass
again; a broken link, a missing anchor and a failing snippet fail too.

Run by scripts/check-docs.sh (standard library only): python3 scripts/test_check_docs.py [-v]
The snippet tests need the library built (target/debug, or CONSULNATIVE_LIB); without it they are skipped.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from typing import List, Set, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import check_docs  # noqa: E402

# What the table and link checks read: the sources they scan and every Markdown file.
COPIED = ["core/src", "src", "devagent/src", "bindings/python/consulnative", "bindings/ruby/lib", "examples/c",
          "include", "docs"]
TABLES = "keys,codes,env"


def run(root: Path, only: str) -> Tuple[int, Set[str]]:
    """Runs the checker on `root`; returns its exit status and the FAIL lines (with their explanation)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = check_docs.main(["--root", str(root), "--only", only])
    text = out.getvalue()
    fails = set(re.findall(r"^FAIL  .*(?:\n {6}.*)*", text, re.M))
    return status, fails


class CheckerCopy(unittest.TestCase):
    """Each test gets a fresh copy of the repository's sources and docs."""

    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="test-check-docs-")
        self.root = Path(self.tmp.name)
        for rel in COPIED:
            src = ROOT / rel
            if src.is_dir():
                shutil.copytree(src, self.root / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif src.is_file():
                (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, self.root / rel)
        for md in ROOT.glob("*.md"):
            shutil.copy2(md, self.root / md.name)
        self.baseline = run(self.root, TABLES)[1]

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.root / rel
        text = path.read_text(encoding="utf-8")
        self.assertIn(old, text, f"{rel} no longer holds {old!r}: update this test")
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    def new_failures(self) -> List[str]:
        """The table-check failures the edits added (the copy's own failures, if any, are the baseline)."""
        status, fails = run(self.root, TABLES)
        new = sorted(fails - self.baseline)
        if new:
            self.assertEqual(status, 1)
        return new

    # -- configuration keys

    def test_an_undocumented_key_fails_and_documenting_it_passes(self) -> None:
        self.edit("core/src/api/options.rs", '    "authorize_timeout_ms",\n',
                  '    "authorize_timeout_ms",\n    "max_widgets",\n')
        new = self.new_failures()
        self.assertEqual(len(new), 1, new)
        self.assertIn("`max_widgets`", new[0])
        self.edit("docs/configuration.md", "| `authorize_timeout_ms` |",
                  "| `max_widgets` | none | `4` | a count | Widgets. |\n| `authorize_timeout_ms` |")
        self.assertEqual(self.new_failures(), [])

    def test_a_key_accepted_by_set_but_missing_from_config_keys_counts_too(self) -> None:
        self.edit("core/src/api/options.rs", '            "authorize_timeout_ms" => ',
                  '            "shadow_key" => {}\n            "authorize_timeout_ms" => ')
        new = self.new_failures()
        self.assertEqual(len(new), 1, new)
        self.assertIn("`shadow_key`", new[0])

    def test_a_key_whose_row_is_removed_fails(self) -> None:
        text = (self.root / "docs/configuration.md").read_text(encoding="utf-8")
        row = next(line for line in text.split("\n") if line.startswith("| `retry_max_ms` |"))
        self.edit("docs/configuration.md", row + "\n", "")
        new = self.new_failures()
        self.assertEqual(len(new), 1, new)
        self.assertIn("`retry_max_ms`", new[0])

    # -- result codes

    def test_an_undocumented_result_code_fails_and_a_wrong_number_fails(self) -> None:
        self.edit("src/result.rs", "    Internal = 20,\n", "    Internal = 20,\n    /// Too many widgets.\n"
                                                           "    TooManyWidgets = 21,\n")
        new = self.new_failures()
        self.assertEqual(len(new), 1, new)
        self.assertIn("CONSULNATIVE_RESULT_TOO_MANY_WIDGETS = 21", new[0])
        self.assertIn("no table row", new[0])
        self.edit("docs/result-codes.md", "| 20 | `CONSULNATIVE_RESULT_INTERNAL`",
                  "| 22 | `CONSULNATIVE_RESULT_TOO_MANY_WIDGETS` | too many widgets | - | - | Oops. |\n"
                  "| 20 | `CONSULNATIVE_RESULT_INTERNAL`")
        new = self.new_failures()
        self.assertEqual(len(new), 1, new)
        self.assertIn("not with its number 21", new[0])

    def test_a_code_only_in_the_header_counts_too(self) -> None:
        self.edit("include/consulnative.h", "  CONSULNATIVE_RESULT_INTERNAL = 20,\n",
                  "  CONSULNATIVE_RESULT_INTERNAL = 20,\n  CONSULNATIVE_RESULT_HEADER_ONLY = 21,\n")
        new = self.new_failures()
        self.assertEqual(len(new), 1, new)
        self.assertIn("CONSULNATIVE_RESULT_HEADER_ONLY", new[0])

    # -- environment variables

    def test_an_undocumented_variable_read_in_rust_python_or_ruby_fails(self) -> None:
        self.edit("core/src/log.rs", "static LOGGER: Lazy",
                  'fn knob() -> Option<String> {\n    std::env::var("CONSULNATIVE_NEW_KNOB").ok()\n}\n\n'
                  "static LOGGER: Lazy")
        self.edit("bindings/python/consulnative/_ffi.py", 'ENV_VAR = "CONSULNATIVE_LIB"\n',
                  'ENV_VAR = "CONSULNATIVE_LIB"\nPY_KNOB = os.environ.get("CONSULNATIVE_PY_KNOB")\n')
        self.edit("bindings/ruby/lib/consulnative/native.rb", '      env = ENV["CONSULNATIVE_LIB"]\n',
                  '      env = ENV["CONSULNATIVE_LIB"]\n      _knob = ENV.fetch("CONSULNATIVE_RB_KNOB", nil)\n')
        new = self.new_failures()
        self.assertEqual(len(new), 3, new)
        for name, where in (("CONSULNATIVE_NEW_KNOB", "core/src/log.rs"),
                            ("CONSULNATIVE_PY_KNOB", "bindings/python/consulnative/_ffi.py"),
                            ("CONSULNATIVE_RB_KNOB", "bindings/ruby/lib/consulnative/native.rb")):
            self.assertTrue(any(name in f and where in f for f in new), (name, new))

    def test_a_variable_read_through_a_constant_is_found(self) -> None:
        self.edit("bindings/python/consulnative/_ffi.py", 'ENV_VAR = "CONSULNATIVE_LIB"\n',
                  'ENV_VAR = "CONSULNATIVE_LIB"\nOTHER_VAR = "CONSULNATIVE_VIA_CONSTANT"\n'
                  "_other = os.environ.get(OTHER_VAR)\n")
        new = self.new_failures()
        self.assertEqual(len(new), 1, new)
        self.assertIn("CONSULNATIVE_VIA_CONSTANT", new[0])

    def test_reads_in_comments_and_tests_are_not_counted(self) -> None:
        self.edit("core/src/log.rs", "static LOGGER: Lazy",
                  '// e.g. std::env::var("CONSULNATIVE_IN_A_COMMENT")\nstatic LOGGER: Lazy')
        self.assertEqual(self.new_failures(), [])

    # -- links

    def test_a_broken_link_and_a_missing_anchor_fail(self) -> None:
        self.edit("docs/concepts.md", "# Concepts\n",
                  "# Concepts\n\nSee [nowhere](no-such-page.md) and [a section](result-codes.md#no-such-heading).\n")
        status, fails = run(self.root, "links")
        self.assertEqual(status, 1)
        self.assertTrue(any("no-such-page.md" in f and "does not exist" in f for f in fails), fails)
        self.assertTrue(any("#no-such-heading" in f for f in fails), fails)


LIB = Path(os.environ.get("CONSULNATIVE_LIB") or ROOT / "target/debug/libconsulnative.so")


@unittest.skipUnless(LIB.is_file(), f"{LIB} is not built")
class Snippets(unittest.TestCase):
    """A docs tree of one page: a snippet that fails, fails the check."""

    def check(self, page: str) -> Tuple[int, Set[str]]:
        with tempfile.TemporaryDirectory(prefix="test-check-docs-") as tmp:
            root = Path(tmp)
            (root / "docs").mkdir()
            (root / "docs/page.md").write_text(page, encoding="utf-8")
            os.symlink(ROOT / "bindings", root / "bindings")
            os.symlink(ROOT / "include", root / "include")
            saved = os.environ.get("CONSULNATIVE_LIB")
            os.environ["CONSULNATIVE_LIB"] = str(LIB)
            try:
                return run(root, "snippets")
            finally:
                if saved is None:
                    del os.environ["CONSULNATIVE_LIB"]
                else:
                    os.environ["CONSULNATIVE_LIB"] = saved

    def test_snippets_that_fail_at_run_time_or_do_not_compile_fail(self) -> None:
        page = ("# Page\n\n```python\nwith client.service('web') as web:\n    web.wait_ready(timeout=10)\n```\n\n"
                "```python\nraise RuntimeError('this snippet is wrong')\n```\n\n"
                "<!-- snippet: syntax-only (test) -->\n```python\ndef broken(:\n```\n\n"
                "```ruby\nclient.service('web') { |web| web.wait_ready(timeout: 10) }\n```\n\n"
                "```ruby\nclient.no_such_method\n```\n\n"
                "```c\nint main(void) { return undefined_function(); }\n```\n\n"
                "```rust\nassert_eq!(1 + 1, 3, \"this Rust snippet is wrong\");\n```\n\n"
                "```rust\nlet options = consulnative_core::api::ClientOptions::from_env();\n"
                "assert!(options.agent.address.is_some(), \"CONSUL_HTTP_ADDR is set for Rust snippets\");\n```\n")
        status, fails = self.check(page)
        self.assertEqual(status, 1)
        text = "\n".join(sorted(fails))
        self.assertIn("page.md:9 (python)", text)                    # the RuntimeError
        self.assertIn("this snippet is wrong", text)
        self.assertIn("page.md:14 (python, syntax only)", text)      # does not compile
        self.assertIn("SyntaxError", text)
        self.assertIn("page.md:22 (ruby)", text)                     # NoMethodError
        self.assertIn("no_such_method", text)
        self.assertNotIn("page.md:4 ", text)                         # the good ones pass
        self.assertNotIn("page.md:18 ", text)
        self.assertIn("page.md:26 (c)", text)                        # does not compile
        self.assertIn("undefined_function", text)
        self.assertIn("page.md:30 (rust)", text)                     # panics
        self.assertIn("this Rust snippet is wrong", text)
        self.assertNotIn("page.md:34 ", text)
        self.assertEqual(len(fails), 5, text)


def main() -> int:
    """Runs the tests; the last line is `N passed, M failed` (skipped tests are said before it)."""
    verbosity = 2 if "-v" in sys.argv[1:] else 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=verbosity).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    if skipped:
        print(f"{skipped} skipped: " + "; ".join(reason for _, reason in result.skipped))
    print(f"{result.testsRun - failed - skipped} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
