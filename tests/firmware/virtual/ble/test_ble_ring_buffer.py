"""The device's record buffer: bounded, ordered, a new epoch at every boot, a device id of its own, and records
that survive a kill -9 of the board."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import wedge
from wedge.firmware.errors import VirtualBoardError
from wedge.firmware.protocol.ble_control import MAX_PAST_EPOCHS, EpochSpan
from wedge.firmware.protocol.ble_records import Record, decode_record, encode_record
from wedge.firmware.virtual.ble.ring_buffer import DEVICE_ID_FILE, LEGACY_STATE_FILE, LOG_FILE, STREAM_FILE, RecordRing


def fill(ring: RecordRing, count: int) -> None:
    for _ in range(count):
        seq = ring.take_seq()
        ring.append(seq, encode_record(Record(seq, seq, 1, epoch=ring.epoch)))


def seqs(ring: RecordRing, epoch: int) -> list[int]:
    return [decode_record(r).seq for _, r in ring.iter_from(epoch, 0, 2**32)]


def test_the_buffer_keeps_the_newest_records_and_says_which() -> None:
    ring = RecordRing(3)
    fill(ring, 5)
    assert (ring.oldest_seq, ring.next_seq) == (2, 5)
    assert seqs(ring, ring.epoch) == [2, 3, 4]
    assert ring.iter_from(ring.epoch + 1, 0, 10) == []
    assert ring.epochs() == (EpochSpan(ring.epoch, 2, 5),)


def test_a_restart_starts_the_next_epoch_at_0_and_keeps_the_old_one_for_backfill(tmp_path: Path) -> None:
    ring = RecordRing(10, tmp_path)
    fill(ring, 4)
    ring.close()
    again = RecordRing(10, tmp_path)
    assert (again.device_id, again.epoch, again.boot_count) == (ring.device_id, ring.epoch + 1, 2)
    assert (again.oldest_seq, again.next_seq) == (0, 0)
    assert again.past_epochs() == (EpochSpan(ring.epoch, 0, 4),)
    fill(again, 2)
    assert seqs(again, ring.epoch) == [0, 1, 2, 3] and seqs(again, again.epoch) == [0, 1]
    assert again.end_of(ring.epoch) == 4 and again.end_of(again.epoch) == 2


def test_records_survive_a_kill_9_of_the_board(tmp_path: Path) -> None:
    # A real process, killed while it writes: every record appended before the kill is in the next boot's buffer.
    script = (
        "import sys; from pathlib import Path\n"
        "from wedge.firmware.protocol.ble_records import Record, encode_record\n"
        "from wedge.firmware.virtual.ble.ring_buffer import RecordRing\n"
        "ring = RecordRing(100000, Path(sys.argv[1]))\n"
        "while True:\n"
        "    seq = ring.take_seq(); ring.append(seq, encode_record(Record(seq, seq, 1, epoch=ring.epoch)))\n"
        "    if seq == 500: print(ring.epoch, flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(wedge.__file__).parents[1])})
    assert child.stdout is not None
    epoch = int(child.stdout.readline())
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    again = RecordRing(100000, tmp_path)
    (past,) = again.past_epochs()
    assert past.epoch == epoch and past.first_seq == 0 and past.end_seq > 500
    assert seqs(again, epoch) == list(range(past.end_seq))


def test_a_torn_last_write_is_dropped_and_what_came_before_kept(tmp_path: Path) -> None:
    ring = RecordRing(10, tmp_path)
    fill(ring, 3)
    ring.close()
    with (tmp_path / LOG_FILE).open("ab") as log:
        log.write(b"\x40\x00\x02\x01")  # a length and the start of a record, then the power went
    again = RecordRing(10, tmp_path)
    assert again.past_epochs() == (EpochSpan(ring.epoch, 0, 3),)


def test_a_wiped_state_is_a_new_device_and_a_reset_one_a_new_random_epoch(tmp_path: Path) -> None:
    ring = RecordRing(10, tmp_path)
    fill(ring, 2)
    ring.close()
    # A factory reset: the stream state and the buffer are erased, the hardware id is not.
    (tmp_path / STREAM_FILE).unlink()
    (tmp_path / LOG_FILE).unlink()
    reset = RecordRing(10, tmp_path)
    assert reset.device_id == ring.device_id and reset.epoch != ring.epoch and reset.past_epochs() == ()
    reset.close()
    for name in (DEVICE_ID_FILE, STREAM_FILE, LOG_FILE):
        (tmp_path / name).unlink()
    assert RecordRing(10, tmp_path).device_id != ring.device_id


def test_the_buffer_holds_at_most_8_past_epochs(tmp_path: Path) -> None:
    epochs = []
    for _ in range(MAX_PAST_EPOCHS + 3):
        ring = RecordRing(1000, tmp_path)
        epochs.append(ring.epoch)
        fill(ring, 2)
        ring.close()
    ring = RecordRing(1000, tmp_path)
    assert [s.epoch for s in ring.past_epochs()] == epochs[-MAX_PAST_EPOCHS:]


def test_the_log_is_compacted_and_the_buffer_bounded(tmp_path: Path) -> None:
    ring = RecordRing(50, tmp_path)
    fill(ring, 1000)
    assert len(ring) == 50 and (tmp_path / LOG_FILE).stat().st_size < 3 * 50 * 40
    ring.close()
    assert RecordRing(50, tmp_path).past_epochs() == (EpochSpan(ring.epoch, 950, 1000),)


def test_the_epoch_less_state_of_older_builds_keeps_its_boot_count(tmp_path: Path) -> None:
    (tmp_path / LEGACY_STATE_FILE).write_text(json.dumps({"next_seq": 9000, "reserved_until": 12288,
                                                          "boot_count": 6, "saved": False, "records": []}))
    ring = RecordRing(10, tmp_path)
    assert ring.boot_count == 7 and ring.next_seq == 0 and not (tmp_path / LEGACY_STATE_FILE).exists()


def test_a_damaged_device_id_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / DEVICE_ID_FILE).write_bytes(b"\xff\xfenot hex")
    with pytest.raises(VirtualBoardError, match="device id"):
        RecordRing(10, tmp_path)


def test_records_must_be_appended_in_order_and_in_their_epoch() -> None:
    ring = RecordRing(2)
    with pytest.raises(ValueError):
        ring.append(5, encode_record(Record(5, 0, 0, epoch=ring.epoch)))
    with pytest.raises(ValueError):
        ring.append(0, encode_record(Record(0, 0, 0, epoch=ring.epoch % 1000 + 1)))
