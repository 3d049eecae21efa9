"""Round trips and fuzzing of the standard Heart Rate Measurement (0x2A37) encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wedge.firmware.protocol.ble_errors import MalformedPacket
from wedge.firmware.protocol.heart_rate import HeartRateMeasurement, decode_heart_rate, encode_heart_rate, rr_units

u16 = st.integers(0, 0xFFFF)
measurements = st.builds(
    HeartRateMeasurement,
    bpm=u16,
    contact=st.none() | st.booleans(),
    energy_kj=st.none() | u16,
    rr_intervals_1024=st.lists(u16, max_size=9).map(tuple),
)


@given(measurements)
def test_a_measurement_decodes_to_what_was_encoded(measurement: HeartRateMeasurement) -> None:
    assert decode_heart_rate(encode_heart_rate(measurement)) == measurement


def test_a_resting_rate_uses_the_one_byte_format_with_contact_bits() -> None:
    assert encode_heart_rate(HeartRateMeasurement(72, contact=True)) == bytes([0x06, 72])


def test_a_chest_strap_notification_decodes_rate_and_rr_intervals() -> None:
    # flags: uint8 rate, contact supported + detected, RR present; 60 bpm; RR 1024 (1 s) and 512 (0.5 s).
    decoded = decode_heart_rate(bytes([0x16, 60, 0x00, 0x04, 0x00, 0x02]))
    assert decoded.bpm == 60 and decoded.contact is True
    assert decoded.rr_intervals_s == (1.0, 0.5)


def test_rr_intervals_in_seconds_become_1024ths() -> None:
    assert rr_units(0.8) == 819


@given(st.binary(max_size=24))
def test_arbitrary_bytes_decode_or_raise_malformed_packet(data: bytes) -> None:
    try:
        decode_heart_rate(data)
    except MalformedPacket:
        pass


@pytest.mark.parametrize("data", [b"", b"\x01\x10", b"\x08\x50\x01", b"\x10\x50", b"\x10\x50\x01", b"\x00\x50\x00"])
def test_truncated_or_dangling_measurements_are_malformed(data: bytes) -> None:
    with pytest.raises(MalformedPacket):
        decode_heart_rate(data)
