"""The C Heart Rate Measurement encoder (0x2A37) against wedge/firmware/protocol/heart_rate.py."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.device_c.core import Core
from wedge.firmware.protocol.heart_rate import HeartRateMeasurement, decode_heart_rate, encode_heart_rate, rr_units

u16 = st.integers(0, 0xFFFF)


@settings(max_examples=300, deadline=None)
@given(bpm=u16, contact=st.none() | st.booleans(), energy=st.none() | u16, rr=st.lists(u16, max_size=12))
def test_c_encodes_the_bytes_python_encodes(core: Core, bpm: int, contact: bool | None, energy: int | None,
                                            rr: list[int]) -> None:
    measurement = HeartRateMeasurement(bpm, contact, energy, tuple(rr))
    expected = encode_heart_rate(measurement)
    rc, data, sent = core.hr_encode(bpm, contact, energy, rr, len(expected))
    assert (rc, data, sent) == (0, expected, len(rr))
    assert decode_heart_rate(data) == measurement


@settings(max_examples=200, deadline=None)
@given(bpm=u16, energy=st.none() | u16, rr=st.lists(u16, min_size=1, max_size=30), cap=st.integers(0, 40))
def test_rr_intervals_that_do_not_fit_wait_for_the_next_notification(core: Core, bpm: int, energy: int | None,
                                                                     rr: list[int], cap: int) -> None:
    rc, data, sent = core.hr_encode(bpm, True, energy, rr, cap)
    fixed = 1 + (2 if bpm > 0xFF else 1) + (2 if energy is not None else 0)
    if cap < fixed:
        assert rc == core.errors()["WEDGE_ERR_NOSPC"]
        return
    assert rc == 0 and len(data) <= cap
    assert sent == min(len(rr), (cap - fixed) // 2)
    assert decode_heart_rate(data) == HeartRateMeasurement(bpm, True, energy, tuple(rr[:sent]))


@given(rr_us=st.integers(0, 100_000_000))
@settings(deadline=None)
def test_rr_units_round_as_python_does(core: Core, rr_us: int) -> None:
    assert core.rr_units(rr_us) == rr_units(rr_us / 1e6)
