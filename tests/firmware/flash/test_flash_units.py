"""Small pieces of the flasher and the board: resume arithmetic, board identity, the wedge group's id, and the
firmware's check of a model's tensors against its arena."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.firmware.firmware_models import pack
from wedge.boards import load as load_board
from wedge.firmware.flash.session import board_for_target
from wedge.firmware.flash.upload import UploadStats
from wedge.firmware.image.manifest import TensorManifest
from wedge.firmware.protocol.wedge_group import wedge_requests
from wedge.firmware.virtual.runtime import start_runtime


def test_resent_bytes_are_never_negative_when_an_earlier_session_left_part_of_the_image() -> None:
    # 10,000 bytes, 2,493 of them already on the device from a flash that was cut: 7,507 + the 32-byte probe sent.
    stats = UploadStats(image_bytes=10_000, sent_payload_bytes=7_539, chunk_payload_bytes=300, chunks=26, resumes=0,
                        window=2, duration_s=1.0, already_on_device_bytes=2_493)
    assert stats.resent_bytes == 32
    assert UploadStats(10_000, 9_000, 300, 30, 0, 2, 1.0).resent_bytes == 0


def test_board_targets_name_their_profile() -> None:
    assert board_for_target("nrf52840dk/nrf52840").name == "ring-nrf52840"
    assert board_for_target("nrf52840dk").name == "ring-nrf52840"  # CONFIG_BOARD alone, as `info i` prints it
    assert board_for_target("nrf5340dk@0.11.0").name == "ring-nrf5340"
    assert board_for_target("frdm_k64f") is None


def test_the_wedge_group_id_is_the_firmwares_choice() -> None:
    requests = wedge_requests(200)
    assert requests.board_info().header.group_id == 200 and requests.model_status().header.group_id == 200
    assert wedge_requests(96).board_info().header.group_id == 96


def test_the_firmware_refuses_tensors_larger_than_its_arena_before_running_them(tiny_model: Path, keys) -> None:
    image = pack(tiny_model, keys, "1.0.0", name="fc")
    huge = dataclasses.replace(image.manifest.inputs[0], shape=(1, 2**31 - 1))
    manifest = dataclasses.replace(image.manifest, inputs=(huge,))
    runtime, test = start_runtime(dataclasses.replace(image, manifest=manifest), load_board("ring-nrf52840").budgets.arena_bytes)
    assert runtime is None and not test.passed and "more than the 131,072-byte arena" in (test.reason or "")
    assert isinstance(huge, TensorManifest)
