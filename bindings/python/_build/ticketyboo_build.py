"""PEP 517 backend: scikit-build-core, plus what an sdist needs to stand alone.

In the repository the extension is built from ../ticketyboo.i and the C
library from ../../ (include/, src/, CMakeLists.txt).  An sdist is unpacked
somewhere else, so build_sdist copies them into the package directory first
(ticketyboo.i, SWIG_VERSION, vendor/libticketyboo/) and removes them after;
CMakeLists.txt looks in ./ first.  Everything else is scikit-build-core's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from scikit_build_core import build as _backend
from scikit_build_core.build import *  # noqa: F401,F403  (the hooks we do not override)

HERE = Path(__file__).resolve().parent.parent  # bindings/python
BINDINGS = HERE.parent  # bindings/
REPO = BINDINGS.parent

# What libticketyboo's own CMake build needs (tests, docs and examples are off).
_LIBRARY_PARTS = ("CMakeLists.txt", "cmake", "include", "src", "pkgconfig", "LICENSE", "COPYING")


@contextlib.contextmanager
def _standalone() -> Iterator[None]:
    created: list[Path] = []
    try:
        if (BINDINGS / "ticketyboo.i").is_file() and (REPO / "include" / "ticketyboo").is_dir():
            for name in ("ticketyboo.i", "SWIG_VERSION"):
                dst = HERE / name
                shutil.copy2(BINDINGS / name, dst)
                created.append(dst)
            vendor = HERE / "vendor"
            if vendor.exists():
                shutil.rmtree(vendor)
            created.append(vendor)
            lib = vendor / "libticketyboo"
            lib.mkdir(parents=True)
            for part in _LIBRARY_PARTS:
                src = REPO / part
                if src.is_dir():
                    shutil.copytree(src, lib / part, ignore=shutil.ignore_patterns("__pycache__", "*.o"))
                elif src.is_file():
                    shutil.copy2(src, lib / part)
        yield
    finally:
        for path in created:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                os.unlink(path)


def build_sdist(sdist_directory: str, config_settings: dict | None = None) -> str:
    with _standalone():
        return _backend.build_sdist(sdist_directory, config_settings)
