"""Fixtures of the device-core tests: the host build (once per session, ASan/UBSan) driven through a worker
process, and the Cortex-M4 firmware built for QEMU's mps2-an386; each skips with its reason when a tool is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.device_c.build import BuildError, asan_runtime, cffi_module, make, missing_arm_tools, missing_host_tools
from tests.device_c.core import Core
from tests.firmware.firmware_models import RING, run_cli, write_model
from wedge.firmware.image.keys import KeyPair
from wedge.samples.tiny_tflite import int8_fc_model


@pytest.fixture(scope="session")
def firmware_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build folder for the whole session (make rebuilds nothing twice)."""
    return tmp_path_factory.mktemp("firmware-build")


@pytest.fixture(scope="session")
def core(firmware_build: Path) -> Iterator[Core]:
    """The device core built for the host with ASan and UBSan, in its worker process."""
    reason = missing_host_tools()
    if reason is not None:
        pytest.skip(reason)
    try:
        make(firmware_build, "host")
        module_dir = cffi_module(firmware_build)
    except BuildError as exc:
        pytest.fail(str(exc))
    runtime = asan_runtime()
    assert runtime is not None
    handle = Core(module_dir, runtime)
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def errors(core: Core) -> dict[str, int]:
    """The core's error codes by name (WEDGE_OK, WEDGE_ERR_MALFORMED, ...)."""
    return core.errors()


@pytest.fixture(scope="session")
def m4_build(firmware_build: Path) -> Path:
    """The QEMU firmware (Cortex-M4, mps2-an386) and the Cortex-M4F/M33 libraries."""
    reason = missing_arm_tools()
    if reason is not None:
        pytest.skip(reason)
    try:
        make(firmware_build, "qemu")
    except BuildError as exc:
        pytest.fail(str(exc))
    return firmware_build / "m4"


@pytest.fixture(scope="session")
def packed_image(tmp_path_factory: pytest.TempPathFactory, keys: KeyPair) -> bytes:
    """A model image as `wedge pack` writes it: the tiny int8 classifier with eight labels, for the ring."""
    folder = tmp_path_factory.mktemp("packed")
    model = write_model(folder, "kws-tiny.tflite", int8_fc_model(features=64, units=8))
    labels = folder / "labels.txt"
    labels.write_text("\n".join(f"class{i}" for i in range(8)) + "\n")
    out = folder / "kws-tiny.img"
    result = run_cli("pack", str(model), "--board", RING, "--key", str(keys.private_path), "--version", "1.2.3",
                     "-o", str(out), "--labels", str(labels), "--name", "kws-tiny")
    assert result.returncode == 0, result.stderr
    return out.read_bytes()
