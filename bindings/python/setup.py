"""Builds the consulnative wheel: the Python package plus libconsulnative.so and consulnative-dev-agent beside it.

``pip install ./bindings/python`` (or ``pip wheel``) compiles both from this repository's Rust sources with
setuptools-rust: the C ABI crate as a plain cdylib (``Binding.NoBinding``: ctypes loads it, no Python C API
involved) and the dev agent as an executable (``Binding.Exec``), both copied into the ``consulnative`` package
and stripped. Cargo's target directory is the workspace's ``target/`` unless ``CARGO_TARGET_DIR`` says otherwise,
so a build that already ran is reused.

``CONSULNATIVE_PREBUILT=DIR`` takes ``DIR/libconsulnative.so`` and ``DIR/consulnative-dev-agent`` as they are
instead (``scripts/package.sh`` passes the stripped files of its one release build, so the wheel, the gem and the
C tarball hold the same bytes).

The version is the workspace's (``[workspace.package] version`` in the root Cargo.toml): one number for the
crates, the library's soname, this wheel and the gem. The wheel is tagged ``py3-none-<platform>``: it holds
native code for one platform but does not link libpython, so any Python 3 on that platform can load it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, List, Tuple

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # bindings/python -> the repository (the Cargo workspace)
PACKAGE = "consulnative"
LIBRARY = "libconsulnative.dylib" if sys.platform == "darwin" else "libconsulnative.so"
AGENT = "consulnative-dev-agent"
PREBUILT = os.environ.get("CONSULNATIVE_PREBUILT", "")


def workspace_version() -> str:
    """``[workspace.package] version`` of the repository's Cargo.toml."""
    manifest = ROOT / "Cargo.toml"
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the build requirements bring tomli there
        import tomli as tomllib
    try:
        with manifest.open("rb") as f:
            return str(tomllib.load(f)["workspace"]["package"]["version"])
    except (OSError, KeyError) as e:
        raise SystemExit(
            f"consulnative: cannot read the version from {manifest} ({e!r}). The Python package builds from a "
            "libconsulnative source checkout: run pip on bindings/python inside it."
        ) from e


class BinaryDistribution(Distribution):
    """A distribution with native code: its wheel is platform-specific even when the files come prebuilt."""

    def has_ext_modules(self) -> bool:
        return True


class build_py_with_prebuilt(build_py):
    """With ``CONSULNATIVE_PREBUILT``: copies the prebuilt library and dev agent into the built package."""

    def run(self) -> None:
        super().run()
        if not PREBUILT:
            return
        dest = Path(self.build_lib) / PACKAGE
        for name in (LIBRARY, AGENT):
            source = Path(PREBUILT) / name
            if not source.is_file():
                raise SystemExit(f"consulnative: CONSULNATIVE_PREBUILT={PREBUILT}: {source} is missing")
            shutil.copy2(source, dest / name)
            os.chmod(dest / name, 0o755)


cmdclass: dict = {"build_py": build_py_with_prebuilt}

try:  # setuptools >= 70.1 has bdist_wheel; older ones get it from the wheel package
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]


class bdist_wheel_any_python(bdist_wheel):
    """``py3-none-<platform>``: the native files do not depend on the Python version or ABI."""

    def get_tag(self) -> Tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


cmdclass["bdist_wheel"] = bdist_wheel_any_python

rust_extensions: List[Any] = []
if not PREBUILT:
    from setuptools_rust import Binding, RustExtension, Strip
    from setuptools_rust.build import build_rust

    class build_rust_plain_names(build_rust):
        """Names the cdylib ``libconsulnative.so`` (what the loader and the system's copies are called) rather
        than a Python extension's ``<name>.cpython-3XX-<platform>.so``: it is not an extension module."""

        def get_dylib_ext_path(self, ext: RustExtension, target_fname: str) -> str:
            path = super().get_dylib_ext_path(ext, target_fname)
            return os.path.join(os.path.dirname(path), LIBRARY)

    cmdclass["build_rust"] = build_rust_plain_names
    rust_extensions = [
        RustExtension(f"{PACKAGE}.libconsulnative", path=str(ROOT / "Cargo.toml"), binding=Binding.NoBinding,
                      strip=Strip.All),
        RustExtension({AGENT: f"{PACKAGE}.{AGENT}"}, path=str(ROOT / "devagent" / "Cargo.toml"),
                      binding=Binding.Exec, strip=Strip.All),
    ]

options: dict = {"rust_extensions": rust_extensions} if rust_extensions else {}
setup(version=workspace_version(), distclass=BinaryDistribution, cmdclass=cmdclass, zip_safe=False, **options)
