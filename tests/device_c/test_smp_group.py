"""The C wedge SMP group payloads against wedge/firmware/protocol/wedge_group.py: the same canonical CBOR bytes as
the virtual board sends, read back by the `smp` package's own response models, at any configured group id."""

from __future__ import annotations

from typing import Any

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.device_c.core import Core
from tests.firmware.firmware_models import RING
from wedge.boards import load as load_board
from wedge.firmware.image.firmware_image import FirmwareDescriptor
from wedge.firmware.protocol.smp_messages import OP, Version, encode_request, encode_response, parse_header
from wedge.firmware.protocol.wedge_group import ModelState, ModelStatus, WedgeCommand, wedge_requests

names = st.text(min_size=1, max_size=24)
u32 = st.integers(0, 0xFFFF_FFFF)
digests = st.binary(min_size=32, max_size=32)
statuses = st.builds(
    ModelStatus, state=st.sampled_from(ModelState), boot_count=u32, model_name=st.none() | names,
    model_version=st.none() | names, model_hash=st.none() | digests, arena_used_bytes=st.none() | u32,
    self_test_us=st.none() | u32, event=st.none() | st.text(max_size=80))


def status_dict(status: ModelStatus) -> dict[str, Any]:
    return {"state": int(status.state), "boot_count": status.boot_count, "model_name": status.model_name,
            "model_version": status.model_version, "model_hash": status.model_hash,
            "arena_used_bytes": status.arena_used_bytes, "self_test_us": status.self_test_us, "event": status.event}


def board_info(descriptor: FirmwareDescriptor | None, key_hash: bytes = bytes(range(32))) -> dict[str, Any]:
    board = load_board(RING)
    info: dict[str, Any] = {"board": board.name, "runtime": board.compute.runtime,
                            "model_slot_bytes": board.budgets.model_slot_bytes,
                            "arena_bytes": board.budgets.arena_bytes, "key_hash": key_hash,
                            "firmware": "wedge-tflm-app 1.0.0", "descriptor": None}
    if descriptor is not None:
        info["descriptor"] = descriptor.to_report()
    return info


def python_body(info: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in info.items() if value is not None}


@settings(max_examples=200, deadline=None)
@given(status=statuses)
def test_model_status_bodies_are_the_bytes_python_sends(core: Core, status: ModelStatus) -> None:
    rc, body = core.model_status_encode(status_dict(status), 512)
    assert rc == 0
    assert body == cbor2.dumps(status.body(), canonical=True)


@settings(max_examples=100, deadline=None)
@given(status=statuses, group=st.integers(64, 0xFFFF), sequence=st.integers(0, 255), v1=st.booleans())
def test_a_model_status_request_gets_the_virtual_boards_reply(core: Core, status: ModelStatus, group: int,
                                                              sequence: int, v1: bool) -> None:
    request = encode_request(OP.READ, group, WedgeCommand.MODEL_STATUS, {}, sequence=sequence,
                             version=Version.V1 if v1 else Version.V2)
    rc, reply = core.smp_respond(request, group, board_info(None), status_dict(status), 1024)
    assert rc == 0
    assert reply == encode_response(parse_header(request), status.body())
    response = wedge_requests(group).model_status()._Response.loads(reply)
    assert ModelStatus.from_response(response) == status


def test_board_info_with_the_firmware_descriptor(core: Core) -> None:
    descriptor = FirmwareDescriptor.for_board(load_board(RING), "1.0.0", b"\x01" * 32)
    info = board_info(descriptor)
    request = wedge_requests(96).board_info(sequence=7).BYTES  # as smpclient sends it
    rc, reply = core.smp_respond(request, 96, info, status_dict(ModelStatus(ModelState.NO_MODEL, 1)), 1024)
    assert rc == 0
    assert reply == encode_response(parse_header(request), python_body(info))
    response = wedge_requests(96).board_info()._Response.loads(reply)
    assert FirmwareDescriptor.from_mapping(response.descriptor).ops == descriptor.ops
    assert (response.board, response.key_hash) == (RING, bytes(range(32)))


@settings(max_examples=50, deadline=None)
@given(board=names, runtime=names, firmware=names, slot=u32, arena=u32, key_hash=digests)
def test_board_info_without_a_descriptor(core: Core, board: str, runtime: str, firmware: str, slot: int,
                                         arena: int, key_hash: bytes) -> None:
    info = {"board": board, "runtime": runtime, "firmware": firmware, "model_slot_bytes": slot, "arena_bytes": arena,
            "key_hash": key_hash, "descriptor": None}
    rc, body = core.board_info_encode(info, 512)
    assert (rc, body) == (0, cbor2.dumps(python_body(info), canonical=True))


def test_other_commands_ops_and_groups_get_enotsup_and_a_bad_body_einval(core: Core, errors: dict[str, int]) -> None:
    info, status = board_info(None), status_dict(ModelStatus(ModelState.RUNNING, 3))

    def reply(request: bytes) -> dict[str, Any]:
        rc, data = core.smp_respond(request, 96, info, status, 256)
        assert rc == 0
        header = parse_header(data)
        assert header.op in (OP.READ_RSP, OP.WRITE_RSP) and header.sequence == parse_header(request).sequence
        return cbor2.loads(data[8:])

    assert reply(encode_request(OP.READ, 96, 5, {}, sequence=9)) == {"rc": 8}
    assert reply(encode_request(OP.WRITE, 96, 1, {})) == {"rc": 8}
    assert reply(encode_request(OP.READ, 97, 1, {})) == {"rc": 8}
    assert reply(encode_request(OP.READ, 96, 1, {})[:8] + b"\x01") == {"rc": 3}
    response = encode_response(parse_header(encode_request(OP.READ, 96, 1, {})), {})
    assert core.smp_respond(response, 96, info, status, 256)[0] == errors["WEDGE_ERR_NOTFOUND"]
    assert core.smp_respond(b"\x00\x00", 96, info, status, 256)[0] == errors["WEDGE_ERR_NOTFOUND"]


def test_a_reply_that_does_not_fit_is_an_error_at_every_size(core: Core, errors: dict[str, int]) -> None:
    status = ModelStatus(ModelState.FAILED, 12, "kws", "1.0.0", b"\x07" * 32, 4096, 1234, "self-test failed: x")
    needed = len(cbor2.dumps(status.body(), canonical=True))
    for cap in range(needed):
        assert core.model_status_encode(status_dict(status), cap)[0] == errors["WEDGE_ERR_NOSPC"], cap
    assert core.model_status_encode(status_dict(status), needed)[0] == 0
