"""The C stream record encoder and frames against wedge/firmware/protocol/ble_records.py: every record version,
every output dtype, and every fragment boundary, in both directions."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.device_c.core import Core
from wedge.firmware.protocol.ble_records import (
    RECORD_VERSION,
    RECORD_VERSION_1,
    FrameReader,
    Output,
    OutputDType,
    Record,
    decode_record,
    encode_record,
    fragment_record,
    records_frame,
)

u32 = st.integers(0, 0xFFFF_FFFF)
RANGES = {OutputDType.INT8: (-128, 127), OutputDType.UINT8: (0, 255), OutputDType.INT16: (-(2**15), 2**15 - 1),
          OutputDType.INT32: (-(2**31), 2**31 - 1)}
f32 = st.floats(width=32, allow_nan=False)


@st.composite
def outputs(draw: st.DrawFn, max_values: int = 40) -> Output:
    dtype = draw(st.sampled_from(OutputDType))
    count = draw(st.integers(0, max_values))
    if dtype is OutputDType.FLOAT32:
        values = tuple(draw(st.lists(f32, min_size=count, max_size=count)))
    else:
        low, high = RANGES[dtype]
        values = tuple(draw(st.lists(st.integers(low, high), min_size=count, max_size=count)))
    quantized = draw(st.booleans())
    scale = draw(f32) if quantized else None
    zero_point = draw(st.integers(-(2**31), 2**31 - 1)) if quantized else None
    return Output(dtype, values, scale, zero_point)


@st.composite
def records(draw: st.DrawFn, max_outputs: int = 4, max_values: int = 40) -> tuple[Record, int]:
    version = draw(st.sampled_from([RECORD_VERSION, RECORD_VERSION_1]))
    epoch = draw(st.integers(1, 0xFFFF_FFFF)) if version == RECORD_VERSION else 0
    record = Record(draw(u32), draw(st.integers(0, 2**64 - 1)), draw(u32),
                    tuple(draw(st.lists(outputs(max_values), max_size=max_outputs))), draw(st.booleans()), epoch)
    return record, version


def as_c(record: Record, version: int) -> dict[str, Any]:
    return {"version": version, "backfill": record.backfill, "epoch": record.epoch, "seq": record.seq,
            "t_device_us": record.t_device_us, "model_id": record.model_id,
            "outputs": [(int(o.dtype), o.quantized, 0.0 if o.scale is None else o.scale, o.zero_point or 0,
                         list(o.values)) for o in record.outputs]}


@settings(max_examples=300, deadline=None)
@given(case=records())
def test_c_encodes_every_record_version_as_python_does(core: Core, case: tuple[Record, int]) -> None:
    record, version = case
    expected = encode_record(record, version)
    rc, encoded = core.record_encode(as_c(record, version))
    assert (rc, encoded) == (0, expected)
    assert decode_record(encoded) == record
    assert core.record_key(encoded) == (0, record.epoch, record.seq)


def test_the_3_value_record_of_the_benchmark(core: Core) -> None:
    record = Record(7, 1_700_000_000_000_000, 0x1234ABCD, (Output(OutputDType.FLOAT32, (0.25, -1.5, 3.0)),),
                    epoch=42)
    assert core.record_encode(as_c(record, 2)) == (0, encode_record(record))
    assert len(encode_record(record)) == 23 + 4 + 12


def test_records_the_format_cannot_carry_are_refused(core: Core, errors: dict[str, int]) -> None:
    base = as_c(Record(1, 2, 3, (Output(OutputDType.INT8, (1, 2)),), epoch=5), 2)
    assert core.record_encode({**base, "epoch": 0})[0] == errors["WEDGE_ERR_INVAL"]  # v2 needs an epoch
    assert core.record_encode({**base, "version": 1})[0] == errors["WEDGE_ERR_INVAL"]  # v1 has none
    assert core.record_encode({**base, "version": 3})[0] == errors["WEDGE_ERR_INVAL"]
    size = len(encode_record(Record(1, 2, 3, (Output(OutputDType.INT8, (1, 2)),), epoch=5)))
    for cap in range(size):
        assert core.record_encode(base, cap)[0] == errors["WEDGE_ERR_NOSPC"]
    for data in (b"", b"\x02" * 22, b"\x01" * 18, b"\x09" + bytes(30), b"\x02\x00" + bytes(21)):
        assert core.record_key(data)[0] != 0


@settings(max_examples=200, deadline=None)
@given(case=records(max_outputs=3, max_values=120), payload=st.integers(8, 514))
def test_fragments_match_at_every_payload_size(core: Core, case: tuple[Record, int], payload: int) -> None:
    record, version = case
    encoded = encode_record(record, version)
    try:
        expected = fragment_record(encoded, payload)
    except ValueError:
        assert core.fragments(encoded, payload)[0] != 0
        return
    rc, frames = core.fragments(encoded, payload)
    assert (rc, frames) == (0, expected)
    assert all(len(f) <= payload for f in frames)
    reader = FrameReader()
    decoded = [r for f in frames for r in reader.feed(f).records]
    assert decoded == [record]


@settings(max_examples=100, deadline=None)
@given(cases=st.lists(records(max_outputs=2, max_values=6), min_size=1, max_size=12), slack=st.integers(0, 3))
def test_records_frames_match_and_refuse_what_does_not_fit(core: Core, errors: dict[str, int],
                                                           cases: list[tuple[Record, int]], slack: int) -> None:
    encoded = [encode_record(r, v) for r, v in cases]
    expected = records_frame(encoded)
    assert core.frame_records(encoded, len(expected) + slack) == (0, expected)
    assert core.frame_records(encoded, len(expected) - 1)[0] == errors["WEDGE_ERR_NOSPC"]
    assert FrameReader().feed(expected).records == tuple(r for r, _ in cases)


def test_float_bits_survive_including_nan_and_negative_zero(core: Core) -> None:
    bits = [0x7FC00001, 0xFF800000, 0x80000000, 0x00000001, 0x7F7FFFFF]
    values = [float(np.frombuffer(np.uint32(b).tobytes(), np.float32)[0]) for b in bits]
    rc, encoded = core.record_encode({"version": 2, "epoch": 1, "seq": 0, "t_device_us": 0, "model_id": 0,
                                      "outputs": [(4, False, 0.0, 0, values)]})
    assert rc == 0
    assert np.frombuffer(encoded[27:], "<u4").tolist() == bits
