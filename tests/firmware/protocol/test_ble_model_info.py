"""The model info characteristic: what a device says its model is, and what its outputs mean, paged to 512 bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wedge.firmware.protocol.ble_errors import MalformedPacket, UnsupportedVersion
from wedge.firmware.protocol.ble_model_info import (
    MAX_VALUE_BYTES,
    ModelInfo,
    decode_model_info,
    decode_page_command,
    encode_model_info,
    page_command,
)

PPG = ModelInfo(0x1234ABCD, "ppg_quality", "1.2.0", ("good", "motion artifact", "no contact"))


def test_a_classifier_s_info_round_trips_whole_in_one_read() -> None:
    page = decode_model_info(encode_model_info(PPG))
    assert page.info == PPG and page.complete and page.label_count == 3


def test_a_regression_model_names_its_unit() -> None:
    info = ModelInfo(7, "heart_rate", "0.1.0", (), "bpm")
    page = decode_model_info(encode_model_info(info))
    assert page.info.unit == "bpm" and page.info.labels == () and page.complete


def test_a_thousand_labels_come_in_pages_that_each_fit_an_attribute() -> None:
    labels = tuple(f"imagenet class number {i}" for i in range(1000))
    info = ModelInfo(1, "mobilenet", "1.0.0", labels)
    collected: list[str] = []
    reads = 0
    while len(collected) < len(labels):
        value = encode_model_info(info, decode_page_command(page_command(len(collected))))
        assert len(value) <= MAX_VALUE_BYTES
        page = decode_model_info(value)
        assert page.first_label == len(collected) and page.label_count == 1000
        collected += page.info.labels
        reads += 1
    assert tuple(collected) == labels and reads > 40


def test_a_label_longer_than_a_string_holds_is_cut_at_a_character() -> None:
    info = ModelInfo(3, "long", "1", ("é" * 200, "short"))
    page = decode_model_info(encode_model_info(info))
    assert page.info.labels[0] == "é" * 127 and page.info.labels[1:] == ("short",)


def test_truncated_or_foreign_values_are_refused() -> None:
    value = encode_model_info(PPG)
    with pytest.raises(MalformedPacket, match="past the value's end"):
        decode_model_info(value[:-3])
    with pytest.raises(UnsupportedVersion):
        decode_model_info(bytes([9]) + value[1:])
    with pytest.raises(MalformedPacket, match="header"):
        decode_model_info(value[:5])
    with pytest.raises(MalformedPacket):
        decode_page_command(b"\x01")


@given(st.binary(max_size=600))
def test_any_bytes_decode_or_raise_malformed_packet(data: bytes) -> None:
    try:
        page = decode_model_info(data)
    except MalformedPacket:
        return
    assert page.first_label + len(page.info.labels) <= page.label_count


@given(st.lists(st.text(min_size=1, max_size=30), max_size=60), st.text(max_size=40), st.integers(0, 0xFFFF_FFFF))
def test_every_model_round_trips_across_its_pages(labels: list[str], name: str, model_id: int) -> None:
    info = ModelInfo(model_id, name, "1.0.0", tuple(labels))
    collected: list[str] = []
    page = decode_model_info(encode_model_info(info))
    collected += page.info.labels
    while len(collected) < len(labels):
        page = decode_model_info(encode_model_info(info, len(collected)))
        collected += page.info.labels
    assert tuple(collected) == info.labels and page.info.name == name and page.info.model_id == model_id
