"""Where the library is loaded from: CONSULNATIVE_LIB, else beside the package, else target/debug|release."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import consulnative

PACKAGE = Path(consulnative.__file__).resolve().parent
SHOW = "import consulnative; print(consulnative.LIBRARY_PATH); print(consulnative.version())"


def _run(env_lib, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CONSULNATIVE_LIB"}
    if env_lib is not None:
        env["CONSULNATIVE_LIB"] = str(env_lib)
    env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, timeout=30)


def test_environment_variable_wins_and_a_missing_file_is_a_clear_error(tmp_path):
    lib = Path(consulnative.LIBRARY_PATH)
    copy = tmp_path / "custom" / lib.name
    copy.parent.mkdir()
    shutil.copy(lib, copy)
    out = _run(copy, PACKAGE.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == str(copy)
    bad = _run(tmp_path / "nope.so", PACKAGE.parent)
    assert bad.returncode != 0 and "CONSULNATIVE_LIB" in bad.stderr


@pytest.mark.parametrize("builds", [("debug", "release"), ("release",)])
def test_without_the_variable_the_build_output_of_the_checkout_is_used(tmp_path, builds):
    # A checkout of our own (this one may have no build: CONSULNATIVE_LIB can point elsewhere): the package at
    # bindings/python/consulnative, the library in target/debug and/or target/release; debug wins.
    lib = Path(consulnative.LIBRARY_PATH)
    checkout = tmp_path / "checkout"
    shutil.copytree(PACKAGE, checkout / "bindings" / "python" / "consulnative",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for build in builds:
        (checkout / "target" / build).mkdir(parents=True)
        (checkout / "target" / build / lib.name).symlink_to(lib.resolve())
    out = _run(None, checkout / "bindings" / "python")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == str(checkout / "target" / builds[0] / lib.name)
    nothing = tmp_path / "empty-checkout"
    shutil.copytree(PACKAGE, nothing / "bindings" / "python" / "consulnative",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    missing = _run(None, nothing / "bindings" / "python")
    assert missing.returncode != 0 and "CONSULNATIVE_LIB" in missing.stderr and "cargo build" in missing.stderr


def test_a_copy_beside_the_package_is_preferred_to_the_build_output(tmp_path):
    # A package outside the checkout, with the library beside its modules (as a wheel would ship it).
    dest = tmp_path / "site" / "consulnative"
    shutil.copytree(PACKAGE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    lib = Path(consulnative.LIBRARY_PATH)
    shutil.copy(lib, dest / lib.name)
    out = _run(None, dest.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == str(dest / lib.name)
    assert out.stdout.splitlines()[1] == consulnative.version()
