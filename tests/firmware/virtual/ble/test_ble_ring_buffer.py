"""The device's record buffer: bounded, ordered, and sequence numbers that never repeat across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from wedge.firmware.virtual.ble.ring_buffer import SEQ_RESERVE_BLOCK, RecordRing


def fill(ring: RecordRing, count: int) -> None:
    for _ in range(count):
        seq = ring.take_seq()
        ring.append(seq, f"r{seq}".encode())


def test_the_buffer_keeps_the_newest_records_and_says_which() -> None:
    ring = RecordRing(3)
    fill(ring, 5)
    assert (ring.oldest_seq, ring.next_seq) == (2, 5)
    assert [s for s, _ in ring.iter_from(0, 100)] == [2, 3, 4]
    assert ring.get(1) is None and ring.get(4) == b"r4"


def test_a_clean_restart_keeps_the_records_and_continues_the_numbers(tmp_path: Path) -> None:
    ring = RecordRing(10, tmp_path)
    fill(ring, 4)
    ring.save()
    again = RecordRing(10, tmp_path)
    assert (again.oldest_seq, again.next_seq, again.boot_count) == (0, 4, 2)
    assert again.get(3) == b"r3"


def test_a_crash_resumes_after_the_reserved_block_so_no_number_is_reused(tmp_path: Path) -> None:
    ring = RecordRing(10, tmp_path)
    fill(ring, 4)  # no save: the process "dies" here
    again = RecordRing(10, tmp_path)
    assert again.next_seq == SEQ_RESERVE_BLOCK and len(again) == 0


def test_a_saved_buffer_is_restored_only_once(tmp_path: Path) -> None:
    ring = RecordRing(10, tmp_path)
    fill(ring, 2)
    ring.save()
    RecordRing(10, tmp_path)  # boots, then crashes without saving
    third = RecordRing(10, tmp_path)
    assert len(third) == 0 and third.next_seq >= 2


def test_records_must_be_appended_in_order() -> None:
    ring = RecordRing(2)
    with pytest.raises(ValueError):
        ring.append(5, b"x")
