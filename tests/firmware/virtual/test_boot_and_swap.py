"""The virtual board's MCUboot on its file-backed flash: test, confirm, revert, refusals, and power cuts anywhere.

Power cuts here raise instead of ending the process, so a test can cut at every byte position of a swap and
boot again, as the next power-on would.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NoReturn

import pytest

from tests.firmware.firmware_models import RING, make_keys, pack, write_model
from wedge.boards import load as load_board
from wedge.firmware.image.firmware_image import build_firmware_image
from wedge.firmware.image.keys import load_public_key
from wedge.firmware.image.model_image import ModelImage, SignedImage
from wedge.firmware.virtual.bootloader import Trust, boot
from wedge.firmware.virtual.flash import Flash, FlashFault, FlashFaults, FlashLayout
from wedge.firmware.virtual.swap import read_progress
from wedge.firmware.virtual.trailer import SwapType, set_image_ok, write_trailer
from wedge.samples.tiny_tflite import int8_fc_model


class PowerCut(Exception):
    pass


def _cut() -> NoReturn:
    raise PowerCut


def _flash(path: Path, faults: FlashFaults | None = None) -> Flash:
    return Flash(path, FlashLayout.for_board(load_board(RING)), faults, on_power_cut=_cut)


MODEL = 1


def _install(flash: Flash, slot: int, image: SignedImage, number: int = MODEL) -> None:
    partition = flash.layout.image(number).slot(slot)
    flash.erase(partition.offset, partition.size_bytes)
    flash.write(partition.offset, image.data)


def _trust(keys) -> Trust:
    return Trust(load_public_key(keys.public_path), RING, load_board(RING).budgets.model_slot_bytes)


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> tuple[SignedImage, object]:
    keys = make_keys(tmp_path_factory.mktemp("fw-keys"))
    return build_firmware_image(load_board(RING), keys.private_path, "1.0.0"), keys


@pytest.fixture
def keys(firmware):  # the application and the models share the key the board trusts
    return firmware[1]


@pytest.fixture
def images(tmp_path: Path, keys) -> tuple[ModelImage, ModelImage]:
    # Several flash pages each, of different sizes, so a swap moves many sectors.
    old = pack(write_model(tmp_path, "old.tflite", int8_fc_model(256, 64, seed=1)), keys, "1.0.0", name="old")
    new = pack(write_model(tmp_path, "new.tflite", int8_fc_model(256, 96, seed=2)), keys, "2.0.0", name="new")
    return old, new


_FIRMWARE: list[SignedImage] = []


def _staged(path: Path, old: ModelImage, new: ModelImage) -> Flash:
    """The application in image 0; old model confirmed in image 1's primary, new in its secondary for a test."""
    flash = _flash(path)
    _install(flash, 0, _FIRMWARE[0], number=0)
    pair = flash.layout.image(MODEL)
    _install(flash, 0, old)
    write_trailer(flash, pair.primary, swap_type=SwapType.PERM, image_ok=True, copy_done=True)
    _install(flash, 1, new)
    write_trailer(flash, pair.secondary, swap_type=SwapType.TEST, image_ok=False, copy_done=False)
    return flash


@pytest.fixture(autouse=True)
def _application(firmware) -> None:
    _FIRMWARE[:] = [firmware[0]]


def test_test_boot_reverts_unless_confirmed(tmp_path: Path, keys, images) -> None:
    old, new = images
    flash = _staged(tmp_path / "flash.bin", old, new)
    trust = _trust(keys)
    first = boot(flash, trust)
    assert first.model is not None and first.model.image_hash == new.image_hash and first.testing[MODEL]
    assert first.firmware is not None and not first.testing[0]  # image 0, the application, is untouched
    second = boot(flash, trust)
    assert second.swaps[MODEL] == SwapType.REVERT and second.model.image_hash == old.image_hash
    assert not second.testing[MODEL]
    # Now the other way, confirming the test image: it stays.
    flash = _staged(tmp_path / "flash2.bin", old, new)
    boot(flash, trust)
    set_image_ok(flash, flash.layout.image(MODEL).primary)
    kept = boot(flash, trust)
    assert kept.swaps[MODEL] == SwapType.NONE and kept.model.image_hash == new.image_hash
    assert not kept.testing[MODEL]


@pytest.mark.parametrize("problem", ["other key", "other board", "tampered"])
def test_refused_test_images_are_never_swapped_in(tmp_path: Path, keys, other_keys, images, problem: str) -> None:
    old, _ = images
    model = write_model(tmp_path, "bad.tflite", int8_fc_model(32, 4, seed=3))
    bad = {
        "other key": lambda: pack(model, other_keys, "3.0.0"),
        "other board": lambda: pack(model, keys, "3.0.0", board="ring-nrf5340"),
        "tampered": lambda: pack(model, keys, "3.0.0"),
    }[problem]()
    if problem == "tampered":
        data = bytearray(bad.data)
        data[200] ^= 0xFF
        bad = ModelImage(bytes(data), bad.parts, bad.manifest)
    flash = _staged(tmp_path / "flash.bin", old, bad)
    result = boot(flash, _trust(keys))
    assert result.model is not None and result.model.image_hash == old.image_hash
    assert any("refused" in event for event in result.events)
    secondary = flash.layout.image(MODEL).secondary
    assert flash.is_erased(secondary.offset, secondary.size_bytes)  # the whole slot, as boot_validate_slot erases it
    assert boot(flash, _trust(keys)).model.image_hash == old.image_hash  # and not retried


def test_nor_flash_refuses_programming_a_byte_twice(tmp_path: Path) -> None:
    flash = _flash(tmp_path / "flash.bin")
    flash.write(0, b"\x00")
    with pytest.raises(FlashFault, match="non-erased"):
        flash.write(0, b"\x01")


@pytest.mark.parametrize("direction", ["test", "revert"])
def test_a_power_cut_anywhere_in_a_swap_still_boots_a_valid_model(tmp_path: Path, keys, images, direction: str) -> None:
    old, new = images
    trust = _trust(keys)
    template = tmp_path / "template.bin"
    flash = _staged(template, old, new)
    if direction == "revert":
        boot(flash, trust)  # the test boot; the revert swap happens on the next boot
    flash.close()
    probe = tmp_path / "probe.bin"
    shutil.copy(template, probe)
    faults = FlashFaults()
    faults.arm_power_cut(10**12)
    flash = _flash(probe, faults)
    boot(flash, trust)
    total = faults._counted
    flash.close()
    # A cut after the test swap completed counts as a test boot that was never confirmed: it reverts.
    allowed = {new.image_hash: True, old.image_hash: False} if direction == "test" else {old.image_hash: False}
    cuts = sorted({int(total * i / 48) for i in range(48)} | {1, total - 1})
    for cut in cuts:
        run = tmp_path / f"cut-{cut}.bin"
        shutil.copy(template, run)
        faults = FlashFaults()
        faults.arm_power_cut(cut)
        flash = _flash(run, faults)
        with pytest.raises(PowerCut):
            boot(flash, trust)
        faults.arm_power_cut(None)
        result = boot(flash, trust)
        assert result.model is not None, f"no valid model after a power cut at byte {cut} of {total}"
        assert result.model.image_hash in allowed, f"wrong model after a power cut at byte {cut}"
        assert result.testing[MODEL] == allowed[result.model.image_hash]
        assert read_progress(flash) is None
        flash.close()
        run.unlink()


def test_a_model_needing_a_newer_application_is_not_swapped_in(tmp_path: Path, keys, images) -> None:
    old, _ = images
    needy = pack(write_model(tmp_path, "needy.tflite", int8_fc_model(32, 4, seed=4)), keys, "3.0.0", name="needy",
                 min_firmware="2.0.0")
    flash = _staged(tmp_path / "flash.bin", old, needy)
    result = boot(flash, _trust(keys))
    # MCUboot's dependency check: image 0 runs 1.0.0, the model needs 2.0.0: no swap, the old model stays.
    assert result.model.image_hash == old.image_hash and result.swaps[MODEL] == SwapType.NONE
    assert any("needs image 0 at 2.0.0 or later" in event for event in result.events)


def test_without_a_valid_application_nothing_boots(tmp_path: Path, keys, images) -> None:
    old, new = images
    flash = _staged(tmp_path / "flash.bin", old, new)
    application = flash.layout.image(0).primary
    flash.erase(application.offset, application.size_bytes)
    result = boot(flash, _trust(keys))
    assert result.firmware is None and any("image 0's primary slot" in event for event in result.events)
