"""The core built for Cortex-M4F (arm-none-eabi-gcc -Os, hard float) and run under QEMU's mps2-an386: fixed case
sets (seeded) through the test firmware, every output compared with the Python encoders and decoders. A layout,
endianness, alignment or float-formatting difference between the host build and the target shows here."""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cbor2
import pytest

from tests.device_c.core import Core
from tests.device_c.qemu import Result, Script, run_selftest
from tests.device_c.test_boot_check import ARENA, OPS, label
from tests.device_c.test_dut import COMMAND_BYTES, INPUT_CAP, fake_outputs, virtual_config, virtual_server
from tests.device_c.test_smp_group import board_info
from tests.firmware.firmware_models import RING
from wedge.boards import load as load_board
from wedge.firmware.image.firmware_image import FirmwareDescriptor
from wedge.firmware.image.format import TLV_WEDGE_MANIFEST
from wedge.firmware.image.model_image import read_model_image
from wedge.firmware.protocol import dut
from wedge.firmware.protocol.ble_control import (
    ATT_ERROR_BAD_PARAMETER,
    ATT_ERROR_UNKNOWN_OPCODE,
    ControlOpcode,
    EpochSpan,
    StreamStatus,
    decode_command,
    encode_status,
)
from wedge.firmware.protocol.ble_errors import MalformedPacket
from wedge.firmware.protocol.ble_records import (
    RECORD_VERSION,
    RECORD_VERSION_1,
    FrameWriter,
    Output,
    OutputDType,
    Record,
    encode_record,
    fragment_record,
    with_backfill_flag,
)
from wedge.firmware.protocol.heart_rate import HeartRateMeasurement, encode_heart_rate
from wedge.firmware.protocol.smp_messages import OP, Version, encode_request, encode_response, parse_header
from wedge.firmware.protocol.wedge_group import ModelState, ModelStatus
from wedge.firmware.virtual.board import REVERT_NOTE
from wedge.firmware.virtual.runtime import precheck

SEED = 15


@dataclass
class Run:
    script: Script
    results: dict[int, Result]
    cases: dict[str, list[tuple[int, Any]]]

    def of(self, kind: str) -> list[tuple[Result, Any]]:
        return [(self.results[index], expected) for index, expected in self.cases[kind]]


def hr_cases(rng: random.Random, script: Script, cases: list[tuple[int, Any]]) -> None:
    for _ in range(150):
        m = HeartRateMeasurement(rng.choice([rng.randrange(256), rng.randrange(65536)]),
                                 rng.choice([None, True, False]), rng.choice([None, rng.randrange(65536)]),
                                 tuple(rng.randrange(65536) for _ in range(rng.randrange(10))))
        expected = encode_heart_rate(m)
        cases.append((script.hr(m.bpm, m.contact, m.energy_kj, list(m.rr_intervals_1024), len(expected)), expected))


def f32_cases(rng: random.Random, script: Script, cases: list[tuple[int, Any]]) -> None:
    specials = [0x00000000, 0x80000000, 0x00000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x7F800000, 0xFF800000,
                0x7FC00000, 0x3F800000, 0x3DCCCCCD, 0x4E6E6B28, 0x3F800001, 0x49742400, 0x38D1B717]
    for chunk in range(6):
        bits = specials if chunk == 0 else [rng.getrandbits(32) for _ in range(60)]
        values = [struct.unpack("<f", struct.pack("<I", b))[0] for b in bits]
        cases.append((script.f32(bits), ",".join(dut.format_value(v) for v in values)))


def status_dict(s: ModelStatus) -> dict[str, Any]:
    return {"state": int(s.state), "boot_count": s.boot_count, "model_name": s.model_name,
            "model_version": s.model_version, "model_hash": s.model_hash, "arena_used_bytes": s.arena_used_bytes,
            "self_test_us": s.self_test_us, "event": s.event}


def smp_cases(rng: random.Random, script: Script, cases: list[tuple[int, Any]]) -> None:
    descriptor = FirmwareDescriptor.for_board(load_board(RING), "1.0.0", b"\x01" * 32)
    info = board_info(descriptor)
    cases.append((script.board(info), cbor2.dumps({k: v for k, v in info.items() if v is not None}, canonical=True)))
    for _ in range(30):
        status = ModelStatus(rng.choice(list(ModelState)), rng.getrandbits(32),
                             rng.choice([None, "kws", "vww-tiny-ü"]), rng.choice([None, "1.2.3"]),
                             rng.choice([None, rng.randbytes(32)]), rng.choice([None, rng.getrandbits(32)]),
                             rng.choice([None, rng.getrandbits(16), rng.getrandbits(32)]),
                             rng.choice([None, "self-test failed: x", "é" * 30]))
        cases.append((script.status(status_dict(status)), cbor2.dumps(status.body(), canonical=True)))
        request = encode_request(OP.READ, 200, 1, {}, sequence=rng.randrange(256),
                                 version=rng.choice([Version.V1, Version.V2]))
        cases.append((script.smp(200, request), encode_response(parse_header(request), status.body())))


def dut_cases(rng: random.Random, script: Script, cases: list[tuple[int, Any]]) -> None:
    words = [b"name", b"profile", b"help", b"results", b"db print", b"db load 8", b"db load 999", b"db 00ff10",
             b"db 0", b"infer", b"infer 0", b"infer x", b"bogus \xff", b"", b"x" * 100, b"db load 2147483648"]
    for _ in range(10):
        stream = b"%".join(rng.choice(words) for _ in range(rng.randrange(1, 12))) + b"%"
        with virtual_server() as (server, texts):
            server.feed(stream)
            expected = b"".join(dut.line(item) for text in texts for item in server.handle(text))
        cases.append((script.dut(virtual_config(), stream, input_cap=INPUT_CAP), expected))
    data = bytes(range(7, 19))
    stream = b"".join(dut.encode_command(c) for c in (dut.Timestamp(), dut.DbLoad(12),
                                                      *dut.db_commands(data, COMMAND_BYTES), dut.Infer(3, 2)))
    lines = [dut.lap_line(250), dut.READY, dut.expecting_line(12), dut.READY, dut.LOAD_DONE, dut.READY,
             dut.warmup_start_line(2), dut.WARMUP_DONE, dut.infer_start_line(3), dut.lap_line(500),
             dut.lap_line(750), dut.INFER_DONE, dut.results_line(fake_outputs(data, 5)), dut.READY]
    cases.append((script.dut({**virtual_config(), "timer": None}, stream, input_cap=INPUT_CAP, input_bytes=12,
                             output_count=5), b"".join(dut.line(item) for item in lines)))


def manifest_summary(m: Any) -> tuple[str, ...]:
    """The test firmware's print of a manifest, made from the Python reader's fields."""
    fields = [m.model_name.encode().hex(), m.model_version.encode().hex(), m.board.encode().hex(),
              m.runtime.encode().hex(), str(m.image), str(m.arena_bytes), str(m.model_bytes), str(len(m.labels)),
              m.model_sha256.hex(), *(op.encode().hex() for op in m.ops or ())]
    for side, tensors in (("in:", m.inputs), ("out:", m.outputs)):
        for t in tensors:
            bits = struct.unpack("<I", struct.pack("<f", t.scales[0]))[0] if t.scales else -1
            fields += [side + t.name.encode().hex(), t.dtype.encode().hex(), "".join(f"{d}x" for d in t.shape),
                       str(bits), str(t.zero_points[0] if t.zero_points else 0)]
    return tuple(fields)


def manifest_cases(rng: random.Random, script: Script, cases: list[tuple[int, Any]], image: bytes,
                   core: Core) -> None:
    data = read_model_image(image).parts.protected_tlvs[TLV_WEDGE_MANIFEST]
    cases.append((script.manifest(data), (0, manifest_summary(read_model_image(image).manifest))))
    for _ in range(40):
        tampered = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            tampered[rng.randrange(len(tampered))] ^= 1 << rng.randrange(8)
        cut = bytes(tampered[: rng.choice([len(tampered), rng.randrange(len(tampered))])])
        rc, field, _ = core.manifest_read(cut)
        cases.append((script.manifest(cut), (rc, field)))


def boot_cases(script: Script, cases: list[tuple[int, Any]], image: bytes) -> None:
    model = read_model_image(image)
    name = label(model)
    common = {"model_image": 1, "arena_bytes": ARENA, "boot_count": 4, "board": RING}

    def status(state: ModelState, event: str | None) -> bytes:
        return cbor2.dumps(ModelStatus(state, 4, model.manifest.model_name, model.manifest.model_version,
                                       model.image_hash, model.manifest.arena_bytes, None, event).body(),
                           canonical=True)

    testing_event = f"booted {name} for test, {REVERT_NOTE}"
    confirmed_event = testing_event.replace(REVERT_NOTE, "then confirmed")
    missing = f"{name} {precheck(model, ARENA, frozenset({'SOFTMAX'}))}"
    for options, expected in (
        ({"testing": False, "self_confirm": False, "ops": OPS}, (1, 1, -1, "", status(ModelState.RUNNING, None))),
        ({"testing": True, "self_confirm": False, "ops": OPS},
         (2, 1, -1, testing_event, status(ModelState.RUNNING, testing_event))),
        ({"testing": True, "self_confirm": True, "ops": OPS},
         (3, 1, 1, confirmed_event, status(ModelState.RUNNING, confirmed_event))),
        ({"testing": True, "self_confirm": False, "ops": ("SOFTMAX",)},
         (5, 2, -1, missing, status(ModelState.FAILED, missing))),
    ):
        cases.append((script.boot(**options, **common), expected))


def stream_cases(rng: random.Random, script: Script, cases: dict[str, list[tuple[int, Any]]]) -> None:
    def output() -> Output:
        dtype = rng.choice(list(OutputDType))
        count = rng.randrange(0, 40)
        if dtype is OutputDType.FLOAT32:
            values = tuple(struct.unpack(f"<{count}f", rng.randbytes(4 * count)))
            values = tuple(0.0 if v != v else v for v in values)  # NaN != NaN would defeat the comparison
        else:
            low, high = {OutputDType.INT8: (-128, 127), OutputDType.UINT8: (0, 255),
                         OutputDType.INT16: (-32768, 32767), OutputDType.INT32: (-(2**31), 2**31 - 1)}[dtype]
            values = tuple(rng.randint(low, high) for _ in range(count))
        quantized = rng.random() < 0.5
        return Output(dtype, values, rng.choice([0.5, 1e-3, -2.75]) if quantized else None,
                      rng.randint(-(2**31), 2**31 - 1) if quantized else None)

    made = []
    for _ in range(60):
        version = rng.choice([RECORD_VERSION, RECORD_VERSION_1])
        record = Record(rng.getrandbits(32), rng.getrandbits(64), rng.getrandbits(32),
                        tuple(output() for _ in range(rng.randrange(0, 4))), rng.random() < 0.3,
                        rng.randrange(1, 2**32) if version == RECORD_VERSION else 0)
        expected = encode_record(record, version)
        made.append(expected)
        cases["records"].append((script.record(record, version), expected))
    for encoded in made[:20]:
        payload = rng.randrange(8, 245)
        try:
            expected_frames: Any = fragment_record(encoded, payload)
        except ValueError:
            expected_frames = None
        cases["fragments"].append((script.fragments(encoded, payload), expected_frames))
    for _ in range(60):
        data = rng.choice([rng.randbytes(rng.randrange(0, 14)), bytes([rng.randrange(1, 6)]) + rng.randbytes(
            rng.choice([0, 4, 8, 12]))])
        cases["control"].append((script.control(data), data))
    for _ in range(20):
        past = tuple(EpochSpan(rng.randrange(1, 2**32), a, a + rng.randrange(0, 50))
                     for a in (rng.randrange(0, 2**31) for _ in range(rng.randrange(0, 9))))
        status = StreamStatus(rng.random() < 0.5, 3, 9, 70, 1000, rng.getrandbits(32), 4,
                              rng.choice([None, rng.randrange(1, 2**64)]), 17, past)
        if status.device_id is None:
            status = StreamStatus(status.streaming, 3, 9, 70, 1000, status.model_id, 4)
        cases["stream_status"].append((script.stream_status(status), encode_status(status)))
    records = [Record(0, rng.getrandbits(50), 0xAB12, (output(),)) for _ in range(12)]
    cases["ring"].append((script.ring_reboot(40, records), records))


@pytest.fixture(scope="module")
def qemu_run(m4_build: Path, packed_image: bytes, core: Core) -> Run:
    rng = random.Random(SEED)
    script = Script()
    cases: dict[str, list[tuple[int, Any]]] = {k: [] for k in (
        "hr", "f32", "smp", "dut", "manifest", "boot", "junk", "records", "fragments", "control", "stream_status",
        "ring")}
    hr_cases(rng, script, cases["hr"])
    f32_cases(rng, script, cases["f32"])
    smp_cases(rng, script, cases["smp"])
    dut_cases(rng, script, cases["dut"])
    manifest_cases(rng, script, cases["manifest"], packed_image, core)
    boot_cases(script, cases["boot"], packed_image)
    cases["junk"].append((script.junk(SEED, 300), None))
    stream_cases(rng, script, cases)
    return Run(script, run_selftest(m4_build / "wedge_selftest.elf", script, packed_image), cases)


def test_heart_rate_measurements_match_on_the_target(qemu_run: Run) -> None:
    for result, expected in qemu_run.of("hr"):
        assert (result.rc, result.data) == (0, expected)


def test_results_floats_print_as_python_prints_them_with_the_fpu(qemu_run: Run) -> None:
    for result, expected in qemu_run.of("f32"):
        assert result.fields[0] == expected


def test_smp_group_payloads_match_on_the_target(qemu_run: Run) -> None:
    for result, expected in qemu_run.of("smp"):
        assert (result.rc, result.data) == (0, expected)


def test_dut_replies_match_the_virtual_board_on_the_target(qemu_run: Run) -> None:
    for result, expected in qemu_run.of("dut"):
        assert (result.rc, result.data) == (0, expected)


def test_manifests_read_the_same_on_the_target(qemu_run: Run) -> None:
    first, (rc, summary) = qemu_run.of("manifest")[0]
    assert (first.rc, first.fields) == (rc, summary)
    for result, (rc, field) in qemu_run.of("manifest")[1:]:
        assert result.rc == rc
        if rc != 0:
            assert result.fields == ((field,) if field else ())


def test_the_boot_check_decides_the_same_on_the_target(qemu_run: Run) -> None:
    for result, (decision, state, confirmed, event, body) in qemu_run.of("boot"):
        assert result.rc == 0
        assert result.fields[:3] == (str(decision), str(state), str(confirmed))
        event_hex = result.fields[3] if len(result.fields) == 5 else ""
        assert bytes.fromhex(event_hex).decode() == event
        assert bytes.fromhex(result.fields[-1]) == body


def test_junk_into_the_parsers_never_faults_the_target(qemu_run: Run) -> None:
    (result, _), = qemu_run.of("junk")
    assert result.rc == 0 and int(result.fields[0]) >= 0  # the run reached its end: no fault, no hang


def test_stream_records_of_both_versions_match_on_the_target(qemu_run: Run) -> None:
    for result, expected in qemu_run.of("records"):
        assert (result.rc, result.data) == (0, expected)


def test_fragments_match_on_the_target(qemu_run: Run) -> None:
    for result, expected in qemu_run.of("fragments"):
        if expected is None:
            assert result.rc != 0
        else:
            assert result.rc == 0 and [bytes.fromhex(f) for f in result.fields[0].split(",")] == expected


def test_control_point_writes_parse_the_same_on_the_target(qemu_run: Run) -> None:
    for result, data in qemu_run.of("control"):
        att = int(result.fields[0])
        try:
            command = decode_command(data)
        except MalformedPacket:
            known = len(data) > 0 and data[0] in {op.value for op in ControlOpcode}
            assert att == (ATT_ERROR_BAD_PARAMETER if known else ATT_ERROR_UNKNOWN_OPCODE)
            continue
        assert (result.rc, att, int(result.fields[1])) == (0, 0, int(command.opcode))
        if command.opcode in (ControlOpcode.BACKFILL, ControlOpcode.BACKFILL_EPOCH):
            assert tuple(map(int, result.fields[3:6])) == (command.epoch or 0, command.first_seq, command.end_seq)


def test_status_values_match_on_the_target(qemu_run: Run) -> None:
    for result, expected in qemu_run.of("stream_status"):
        assert (result.rc, result.data) == (0, expected)


def test_the_ring_survives_a_cpu_reset_and_backfills_the_old_epoch(qemu_run: Run) -> None:
    (result, records), = qemu_run.of("ring")
    assert result.rc == 0
    epoch, boots = int(result.fields[0]), int(result.fields[1])
    first_epoch = 0x2545F491 % (2**31 - 1) + 1  # the test firmware's "random" first epoch
    assert (epoch, boots) == (first_epoch + 1, 2)
    assert result.fields[2] == f"{first_epoch}:0:{len(records)}"
    expected = [encode_record(replace(r, seq=i, epoch=first_epoch)) for i, r in enumerate(records)]
    assert [bytes.fromhex(h) for h in result.fields[3].split(",")] == expected
    frames = [bytes.fromhex(h) for h in result.fields[4].split(",")]
    writer = FrameWriter()
    for encoded in expected:
        writer.push(with_backfill_flag(encoded))
    python_frames = []
    while (frame := writer.next_frame(40)) is not None:
        python_frames.append(frame)
    assert frames == python_frames
