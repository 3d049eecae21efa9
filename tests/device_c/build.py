"""Building the device core for the tests: the host library (ASan/UBSan) through firmware/Makefile, its cffi
module, and the Cortex-M4 firmware for QEMU; each tool's absence is a stated skip reason, never a failure."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

from tests.conftest import REPO_ROOT

FIRMWARE: Final[Path] = REPO_ROOT / "firmware"
HOST_LIBRARY: Final[str] = "libwedge_host.so"
CFFI_MODULE: Final[str] = "_wedge_host"
QEMU: Final[str] = "qemu-system-arm"
ARM_GCC: Final[str] = "arm-none-eabi-gcc"
MAKE_TIMEOUT_S: Final[float] = 300.0


class BuildError(RuntimeError):
    """The firmware did not build: the tail of make's output says why."""


def zcbor_dir() -> Path | None:
    """The `zcbor` folder of the installed zcbor package (its C runtime is in src/ and include/), or None."""
    try:
        folder = Path(str(importlib.metadata.distribution("zcbor").locate_file("zcbor")))
    except importlib.metadata.PackageNotFoundError:
        return None
    return folder if (folder / "src" / "zcbor_decode.c").is_file() else None


def missing_host_tools() -> str | None:
    """Why the host build cannot run here, or None."""
    if shutil.which("make") is None or shutil.which("cc") is None:
        return "make and a C compiler (cc) are needed to build firmware/ for the host"
    if zcbor_dir() is None:
        return "the zcbor package (its C runtime) is not installed: pip install zcbor"
    if asan_runtime() is None:
        return "the compiler has no AddressSanitizer runtime (libasan.so)"
    return None


def missing_arm_tools() -> str | None:
    """Why the Cortex-M4 firmware cannot be built and run under QEMU here, or None."""
    if shutil.which(ARM_GCC) is None:
        return f"{ARM_GCC} is not installed (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi)"
    if shutil.which(QEMU) is None:
        return f"{QEMU} is not installed (Debian: qemu-system-arm)"
    if zcbor_dir() is None:
        return "the zcbor package (its C runtime) is not installed: pip install zcbor"
    return None


def make(build_dir: Path, *targets: str) -> None:
    """Run firmware/Makefile for `targets` with its output in `build_dir`."""
    zcbor = zcbor_dir()
    command = ["make", "-C", str(FIRMWARE), f"BUILD={build_dir}", f"ZCBOR_DIR={zcbor}", f"-j{os.cpu_count() or 1}",
               *targets]
    result = subprocess.run(command, capture_output=True, text=True, timeout=MAKE_TIMEOUT_S, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise BuildError(f"make {' '.join(targets)} failed:\n{tail}")


def asan_runtime() -> Path | None:
    """The ASan runtime a process must preload to load an ASan-built library into a Python that is not."""
    try:
        out = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True, timeout=30,
                             check=False).stdout.strip()
    except OSError:
        return None
    path = Path(out)
    return path.resolve() if path.is_absolute() and path.exists() else None


def cffi_module(build_dir: Path) -> Path:
    """Compile the cffi (API mode) module over the host library; returns the folder to put on sys.path."""
    import cffi

    from tests.device_c.cdefs import CDEFS, SOURCE

    zcbor = zcbor_dir()
    assert zcbor is not None
    host = build_dir / "host"
    ffi = cffi.FFI()
    ffi.cdef(CDEFS)
    ffi.set_source(
        CFFI_MODULE, SOURCE,
        include_dirs=[str(FIRMWARE / "include"), str(FIRMWARE / "port" / "host"), str(zcbor / "include")],
        define_macros=[("ZCBOR_CANONICAL", None)],
        libraries=["wedge_host"], library_dirs=[str(host)], extra_link_args=[f"-Wl,-rpath,{host}"],
    )
    out = build_dir / "cffi"
    out.mkdir(parents=True, exist_ok=True)
    ffi.compile(tmpdir=str(out), verbose=False)
    return out
