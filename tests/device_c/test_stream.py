"""The C stream (ring buffer -> notification frames) against the virtual board's device side: the same frames as
its FrameWriter and RecordStreamer send for the same records, live and backfilled, at any MTU and event budget."""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.device_c.core import Core
from wedge.firmware.protocol.ble_control import backfill_command, backfill_epoch_command, start_command, stop_command
from wedge.firmware.protocol.ble_records import FrameReader, FrameWriter, decode_record
from wedge.firmware.virtual.ble.link_model import LinkModel
from wedge.firmware.virtual.ble.ring_buffer import STREAM_FILE, RecordRing
from wedge.firmware.virtual.ble.streamer import RecordStreamer

SECTOR = 4096
SECTORS = 8
MAX_RECORD = 400


def window(rng: random.Random) -> dict[str, Any]:
    """One inference window's result: 3 float scores, or a quantized int8 vector long enough to fragment."""
    if rng.random() < 0.6:
        return {"t_device_us": rng.getrandbits(52), "model_id": 0xAB12,
                "outputs": [(4, False, 0.0, 0, [rng.uniform(-1, 1) for _ in range(3)])]}
    count = rng.randrange(1, 300)
    return {"t_device_us": rng.getrandbits(52), "model_id": 0xAB12,
            "outputs": [(0, True, 0.125, -3, [rng.randrange(-128, 128) for _ in range(count)])]}


class Ring:
    """A C ring and stream in the worker."""

    def __init__(self, core: Core, seed: int = 3) -> None:
        self.core = core
        self.handle = core.ring_new(SECTOR * SECTORS, SECTOR, 4, MAX_RECORD, seed)
        assert core.ring_open(self.handle) == 0
        self.encoded: list[bytes] = []

    @property
    def epoch(self) -> int:
        return self.core.ring_state(self.handle)["epoch"]

    def produce(self, rng: random.Random, count: int) -> list[bytes]:
        made = []
        for _ in range(count):
            rc, encoded = self.core.ring_produce(self.handle, window(rng))
            assert rc == 0
            made.append(encoded)
        self.encoded += made
        return made

    def drain(self, stream: int, payload: int, budget: int) -> list[list[bytes]]:
        """Connection events until nothing is pending: the frames of each."""
        events = []
        while self.core.stream_pending(self.handle, stream):
            rc, sent, frames = self.core.stream_pump(self.handle, stream, payload, budget)
            assert rc == 0 and sent == len(frames) > 0
            events.append(frames)
        return events


def python_frames(encoded: list[bytes], payload: int) -> list[bytes]:
    writer = FrameWriter()
    for item in encoded:
        writer.push(item)
    frames = []
    while (frame := writer.next_frame(payload)) is not None:
        frames.append(frame)
    return frames


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), count=st.integers(1, 40), mtu=st.integers(23, 247), budget=st.integers(1, 8))
def test_live_frames_are_the_frame_writers(core: Core, seed: int, count: int, mtu: int, budget: int) -> None:
    rng = random.Random(seed)
    ring = Ring(core, seed)
    stream = core.stream_new(ring.handle)
    made = ring.produce(rng, count)
    events = ring.drain(stream, mtu - 3, budget)
    assert [f for event in events for f in event] == python_frames(made, mtu - 3)
    assert all(len(event) <= budget for event in events)
    reader = FrameReader()
    assert [r for event in events for f in event for r in reader.feed(f).records] == [decode_record(e) for e in made]
    core.drop(ring.handle)


class _Notifier:
    """The virtual board's Bumble device as RecordStreamer sees it: it records what it is asked to notify."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    async def notify_subscriber(self, _connection: object, _characteristic: object, value: bytes) -> None:
        self.frames.append(bytes(value))


class _Connection:
    handle = 1

    def __init__(self, att_mtu: int) -> None:
        self.att_mtu = att_mtu


def virtual_board_frames(epoch: int, before: list[bytes], live: list[bytes], backfill: tuple[int, int],
                         mtu: int, budget: int) -> list[bytes]:
    """What the virtual board's streamer notifies: `before` in its ring, a subscription, `live` published, then a
    backfill request, each connection event carrying `budget` packets."""
    async def run() -> list[bytes]:
        with tempfile.TemporaryDirectory() as state:
            (Path(state) / STREAM_FILE).write_text(json.dumps({"epoch": epoch - 1, "boot_count": 1}))
            ring = RecordRing(1000, Path(state), device_id=1)
            assert ring.epoch == epoch
            notifier = _Notifier()
            streamer = RecordStreamer(notifier, object(), ring,  # type: ignore[arg-type]
                                      LinkModel(packets_per_event=budget, att_mtu=mtu, enabled=False))
            for encoded in before:
                ring.append(decode_record(encoded).seq, encoded)
            connection = _Connection(mtu)
            streamer.on_subscription(connection, True)  # type: ignore[arg-type]
            for encoded in live:
                ring.append(decode_record(encoded).seq, encoded)
                streamer.publish(encoded)
            streamer.request_backfill(connection, epoch, *backfill)  # type: ignore[arg-type]
            quiet = 0
            while quiet < 50:  # the send loop runs until both writers are empty
                count = len(notifier.frames)
                await asyncio.sleep(0)
                quiet = quiet + 1 if len(notifier.frames) == count else 0
            streamer.close()
            ring.close()
            return notifier.frames

    return asyncio.run(run())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), before=st.integers(0, 25), live=st.integers(0, 15), mtu=st.integers(23, 247),
       budget=st.integers(1, 9), first=st.integers(0, 30), length=st.integers(0, 40))
def test_live_and_backfill_interleave_as_the_virtual_board_sends_them(core: Core, seed: int, before: int, live: int,
                                                                      mtu: int, budget: int, first: int,
                                                                      length: int) -> None:
    rng = random.Random(seed)
    ring = Ring(core, seed)
    made_before = ring.produce(rng, before)
    stream = core.stream_new(ring.handle)
    made_live = ring.produce(rng, live)
    assert core.stream_control(ring.handle, stream, backfill_command(first, first + length)) == (0, 0)
    frames = [f for event in ring.drain(stream, mtu - 3, budget) for f in event]
    assert frames == virtual_board_frames(ring.epoch, made_before, made_live, (first, first + length), mtu, budget)
    core.drop(ring.handle)


def test_stop_start_rate_and_epoch_backfill(core: Core) -> None:
    rng = random.Random(9)
    ring = Ring(core)
    old_epoch = ring.epoch
    old = ring.produce(rng, 6)
    assert core.ring_open(ring.handle) == 0  # reboot: a new epoch, the old one still buffered
    stream = core.stream_new(ring.handle, rate_mhz=500)
    assert core.stream_control(ring.handle, stream, stop_command()) == (0, 0)
    ring.produce(rng, 3)  # made while stopped: not sent live
    assert not core.stream_pending(ring.handle, stream)
    assert core.stream_control(ring.handle, stream, start_command()) == (0, 0)
    now = ring.produce(rng, 2)
    assert core.stream_control(ring.handle, stream, bytes([3]) + (2500).to_bytes(4, "little")) == (0, 0)
    assert core.stream_control(ring.handle, stream, backfill_epoch_command(old_epoch, 2)) == (0, 0)
    reader = FrameReader()
    got = [r for event in ring.drain(stream, 244, 6) for f in event for r in reader.feed(f).records]
    assert [(r.epoch, r.seq, r.backfill) for r in got if r.backfill] == [(old_epoch, s, True) for s in range(2, 6)]
    assert [r for r in got if not r.backfill] == [decode_record(e) for e in now]
    assert [decode_record(e) for e in old[2:]] == [replace(r, backfill=False) for r in got if r.backfill]
    status = core.stream_status(ring.handle, stream, 0x1122334455667788, 0xAB12)
    assert status[26:30] == (2500).to_bytes(4, "little")  # the rate the host set
    # A backfill of an epoch the ring does not hold sends nothing; a bad write is refused with its ATT error.
    assert core.stream_control(ring.handle, stream, backfill_epoch_command(old_epoch + 77, 0)) == (0, 0)
    assert not core.stream_pending(ring.handle, stream)
    assert core.stream_control(ring.handle, stream, b"\x04\x05\x00\x00\x00\x01\x00\x00\x00")[1] == 0x81
    assert core.stream_control(ring.handle, stream, b"\x09")[1] == 0x80
    assert core.stream_control(ring.handle, stream, b"")[1] == 0x80
    core.drop(ring.handle)


def test_a_refused_notification_is_sent_again(core: Core, errors: dict[str, int]) -> None:
    rng = random.Random(10)
    ring = Ring(core)
    stream = core.stream_new(ring.handle)
    made = ring.produce(rng, 20)
    expected = python_frames(made, 64)
    got: list[bytes] = []
    while core.stream_pending(ring.handle, stream):
        rc, sent, frames = core.stream_pump(ring.handle, stream, 64, 5, fail_after=2)  # a full TX queue after 2
        assert rc == errors["WEDGE_ERR_IO"] and sent == 2 or (rc == 0 and sent <= 2)
        got += frames
    assert got == expected
    core.drop(ring.handle)
