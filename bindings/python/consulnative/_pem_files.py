"""PemFilesChange: what :meth:`Service.write_pem_files` tells its ``on_change`` callback, and the trampoline."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional, Union

from . import _ffi
from ._errors import ConsulNativeError, Result, make_error
from ._managed import _log, _run, _text

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class PemFilesChange:
    """One write of ``cert.pem``, ``key.pem`` and ``roots.pem`` (``error`` is None), or a failed one (the
    previous files stay in place; ``error`` says why)."""

    dir: str
    leaf_serial: Optional[str]
    error: Optional[ConsulNativeError]

    @property
    def ok(self) -> bool:
        """True for a successful write."""
        return self.error is None


def make_dispatch(directory: str, on_change: Optional[Callable[[PemFilesChange], None]]
                  ) -> Callable[[int, str], None]:
    """The function registered for the library's callback: builds the :class:`PemFilesChange`."""

    def dispatch(result: int, detail: str) -> None:
        if on_change is None:
            return
        if result == Result.OK:
            on_change(PemFilesChange(directory, detail, None))
        else:
            on_change(PemFilesChange(directory, None, make_error(result, detail)))

    return dispatch


def _on_pem_files(userdata: Optional[int], result: int, detail: Optional[bytes]) -> None:
    try:
        _run(userdata, result, _text(detail))
    except BaseException:  # an exception must not cross into the library thread
        _log.exception("consulnative: a PEM files callback raised")


PEM_FILES_TRAMPOLINE = _ffi.PEM_FILES_CALLBACK(_on_pem_files)
