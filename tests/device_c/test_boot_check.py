"""The C boot-time model check on image 1's slot holding a `wedge pack` image: the decisions and event texts of
the virtual board (wedge/firmware/virtual/board.py, runtime.py), and the model status it then reports."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.device_c.core import Core
from tests.firmware.firmware_models import RING
from wedge.firmware.image.manifest import Manifest, TensorManifest
from wedge.firmware.image.model_image import ModelImage, read_model_image
from wedge.firmware.protocol.wedge_group import ModelState, ModelStatus
from wedge.firmware.virtual.board import REVERT_NOTE
from wedge.firmware.virtual.runtime import precheck

SLOT_BYTES = 64 * 1024
ARENA = 8192
OPS = ("FULLY_CONNECTED", "SOFTMAX")
RUN, RUN_TESTING, CONFIRMED, FAILED, REVERT, NO_MODEL = 1, 2, 3, 4, 5, 0


def check(core: Core, slot: bytes, **options: Any) -> dict[str, Any]:
    given_options = {"testing": False, "board": RING, "arena_bytes": ARENA, "ops": OPS, **options}
    return core.boot_check(slot, SLOT_BYTES, **given_options)


def label(image: ModelImage) -> str:
    return f"{image.manifest.model_name} {image.manifest.model_version}"


def expected_status(image: ModelImage, state: ModelState, result: dict[str, Any], event: str | None) -> bytes:
    status = ModelStatus(state, 1, image.manifest.model_name, image.manifest.model_version, image.image_hash,
                         image.manifest.arena_bytes, result["self_test_us"], event)
    return cbor2.dumps(status.body(), canonical=True)


def test_a_confirmed_model_that_passes_runs(core: Core, packed_image: bytes) -> None:
    image = read_model_image(packed_image)
    result = check(core, packed_image)
    assert (result["rc"], result["decision"], result["state"], result["event"]) == (0, RUN, 1, "")
    assert (result["body_offset"], result["body_bytes"]) == (image.parts.header_bytes, image.parts.body_bytes)
    assert result["self_tests"] == 1 and result["model_hash"] == image.image_hash and result["self_test_us"] > 0
    assert result["status_body"] == expected_status(image, ModelState.RUNNING, result, None)


def test_a_test_boot_waits_for_the_host_or_confirms_itself(core: Core, packed_image: bytes) -> None:
    image = read_model_image(packed_image)
    waiting = check(core, packed_image, testing=True)
    assert waiting["decision"] == RUN_TESTING and waiting["confirmed_image"] == -1
    assert waiting["event"] == f"booted {label(image)} for test, {REVERT_NOTE}"
    confirmed = check(core, packed_image, testing=True, self_confirm=True)
    assert confirmed["decision"] == CONFIRMED and confirmed["confirmed_image"] == 1
    # The virtual board's note once the host confirms (VirtualBoard._confirmed).
    assert confirmed["event"] == waiting["event"].replace(REVERT_NOTE, "then confirmed")
    assert confirmed["status_body"] == expected_status(image, ModelState.RUNNING, confirmed, confirmed["event"])


def test_a_missing_kernel_fails_before_the_interpreter_and_reverts_a_test_image(core: Core,
                                                                              packed_image: bytes) -> None:
    image = read_model_image(packed_image)
    reason = precheck(image, ARENA, frozenset({"SOFTMAX"}))
    assert reason is not None
    for testing, decision in ((True, REVERT), (False, FAILED)):
        result = check(core, packed_image, testing=testing, ops=("SOFTMAX",))
        assert (result["decision"], result["state"], result["self_tests"]) == (decision, 2, 0)
        assert result["event"] == f"{label(image)} {reason}"
        assert result["status_body"] == expected_status(image, ModelState.FAILED, result, result["event"])


def test_a_failed_self_test_says_what_the_runtime_said(core: Core, packed_image: bytes) -> None:
    image = read_model_image(packed_image)
    result = check(core, packed_image, testing=True, self_test_rc=-1, self_test_reason="AllocateTensors() failed")
    assert (result["decision"], result["self_tests"]) == (REVERT, 1)
    assert result["event"] == f"{label(image)} self-test failed: AllocateTensors() failed"
    quiet = check(core, packed_image, self_test_rc=-7)
    assert quiet["decision"] == FAILED and quiet["event"].endswith("self-test failed: runtime error -7")


def test_a_model_for_another_board_or_arena_is_refused(core: Core, packed_image: bytes) -> None:
    image = read_model_image(packed_image)
    other = check(core, packed_image, board="ring-nrf5340")
    assert other["decision"] == FAILED and other["self_tests"] == 0
    assert other["event"] == f"{label(image)} refused: it was built for {RING}, this board is ring-nrf5340"
    small = check(core, packed_image, arena_bytes=1024)
    assert small["event"] == (f"{label(image)} refused: it needs {image.manifest.arena_bytes:,} bytes of TFLM arena; "
                              "the firmware has 1,024")
    elsewhere = check(core, packed_image, model_image=2)
    assert elsewhere["event"] == f"{label(image)} refused: it is packed for MCUboot image 1, not image 2"


def test_an_empty_or_unreadable_slot_runs_without_a_model(core: Core, packed_image: bytes) -> None:
    empty = check(core, b"", testing=True)
    assert (empty["decision"], empty["state"], empty["event"], empty["has_model"]) == (NO_MODEL, 0, "", False)
    assert cbor2.loads(empty["status_body"]) == ModelStatus(ModelState.NO_MODEL, 1).body()
    manifest = read_model_image(packed_image).parts.protected_tlvs[0xA5]
    at = packed_image.index(manifest)
    broken = packed_image[:at] + b"\x01" + packed_image[at + 1:]  # the manifest is no longer a map
    for testing, decision in ((False, NO_MODEL), (True, REVERT)):
        result = check(core, broken, testing=testing)
        assert result["decision"] == decision and result["self_tests"] == 0
        assert result["event"] == "image 1 holds no readable wedge manifest (map: malformed)"


dtypes = st.sampled_from(["int8", "uint8", "int16", "float32", "int32", "bool", "float16", "int64", "mystery"])
tensors = st.builds(
    TensorManifest, name=st.just("t"), shape=st.lists(st.integers(-1, 300), max_size=4).map(tuple), dtype=dtypes,
    scales=st.just((0.5,)), zero_points=st.just((0,)), axis=st.just(0))
op_names = st.sampled_from(["CONV_2D", "FULLY_CONNECTED", "SOFTMAX", "RESHAPE", "ADD", "MEAN", "Z_OP", "A_OP"])


@settings(max_examples=200, deadline=None)
@given(inputs=st.lists(tensors, max_size=3), outputs=st.lists(tensors, max_size=3),
       ops=st.lists(op_names, max_size=8), registered=st.sets(op_names), arena=st.integers(0, 200_000))
def test_the_precheck_matches_the_virtual_boards(core: Core, inputs: list[TensorManifest],
                                                 outputs: list[TensorManifest], ops: list[str], registered: set[str],
                                                 arena: int) -> None:
    manifest = Manifest("m", "1.0.0", RING, "tflm", tuple(inputs), tuple(outputs), (), 100, 10, b"\0" * 32,
                        b"\1" * 32, tuple(ops))
    expected = precheck(SimpleNamespace(manifest=manifest), arena, frozenset(registered))  # type: ignore[arg-type]
    assert core.precheck(manifest.to_cbor(), arena, tuple(sorted(registered))) == expected
