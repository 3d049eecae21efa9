"""The C record ring buffer on a (host) flash region: overflow and wrap, reboots into new epochs, power cuts at any
byte, damaged logs, and reads past the end, checked against what was produced and against read_log's rules."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.device_c.core import Core
from wedge.firmware.protocol.ble_control import MAX_PAST_EPOCHS
from wedge.firmware.protocol.ble_records import decode_record

SECTOR = 1024
SECTORS = 4
MAX_RECORD = 200


def record_of(rng: random.Random, size_hint: int) -> dict[str, object]:
    count = max(0, min(size_hint, MAX_RECORD - 23 - 4))
    return {"t_device_us": rng.getrandbits(63), "model_id": 0xC0FFEE,
            "outputs": [(0, False, 0.0, 0, [rng.randrange(-128, 128) for _ in range(count)])]}


@dataclass
class Device:
    """A ring and what it was asked to keep: every (epoch, seq, bytes) acknowledged, in order."""

    core: Core
    handle: int
    produced: list[tuple[int, int, bytes]] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    uncertain: tuple[int, int, bytes] | None = None  # a record whose write a power cut interrupted

    @classmethod
    def new(cls, core: Core, seed: int = 7) -> Device:
        device = cls(core, core.ring_new(SECTOR * SECTORS, SECTOR, 4, MAX_RECORD, seed))
        assert core.ring_open(device.handle) == 0
        device.epochs.append(core.ring_state(device.handle)["epoch"])
        return device

    def produce(self, rng: random.Random, count: int) -> None:
        for _ in range(count):
            rc, encoded = self.core.ring_produce(self.handle, record_of(rng, rng.randrange(0, 180)))
            record = decode_record(encoded)
            if rc != 0:
                self.uncertain = (record.epoch, record.seq, encoded)
                return
            self.produced.append((record.epoch, record.seq, encoded))

    def reboot(self) -> int:
        self.core.ring_power_on(self.handle)
        before = self.epochs[-1]
        rc = self.core.ring_open(self.handle)
        if rc != 0:
            return rc
        state = self.core.ring_state(self.handle)
        assert state["epoch"] == before % 0xFFFF_FFFF + 1, "a boot is the stored epoch + 1"
        self.epochs.append(state["epoch"])
        return 0

    def check(self) -> dict[str, object]:
        dump = self.core.ring_dump(self.handle)
        buffered = dump["records"]
        assert len(dump["state"]["past"]) <= MAX_PAST_EPOCHS
        # What the ring holds is the newest part of what was produced (plus, perhaps, the record a power cut
        # interrupted once it was whole), in order, with no hole, every byte as written.
        if self.uncertain is not None:
            if self.uncertain in buffered:  # whole after all: the last record of its epoch
                last = max(i for i, item in enumerate(self.produced) if item[0] == self.uncertain[0])
                self.produced.insert(last + 1, self.uncertain)
            self.uncertain = None  # the next boot settled it either way
        if buffered:
            start = self.produced.index(buffered[0])
            assert buffered == self.produced[start:start + len(buffered)]
            assert start + len(buffered) == len(self.produced), "a record acknowledged after the window is missing"
        assert all(rc != 0 for rc in dump["outside"].values()), "a read outside a span returned a record"
        return dump


def test_overflow_wraps_and_keeps_at_least_the_capacity(core: Core, errors: dict[str, int]) -> None:
    device = Device.new(core)
    rng = random.Random(1)
    capacity = core.ring_state(device.handle)["capacity_records"]
    assert capacity == (SECTORS - 1) * ((SECTOR - 16) // (4 + MAX_RECORD))
    device.produce(rng, 200)
    dump = device.check()
    current = [r for r in dump["records"] if r[0] == device.epochs[-1]]
    assert len(current) >= capacity and current[-1][1] == 199
    assert dump["state"]["oldest_seq"] == current[0][1]
    assert core.ring_flash_stats(device.handle)["erases"] >= 200 // 20  # it went round the sectors
    state = dump["state"]
    assert core.ring_read(device.handle, state["epoch"], 200)[0] == errors["WEDGE_ERR_NOTFOUND"]
    assert core.ring_read(device.handle, state["epoch"], 0)[0] == errors["WEDGE_ERR_NOTFOUND"]  # evicted
    assert core.ring_read(device.handle, 12345, 0)[0] == errors["WEDGE_ERR_NOTFOUND"]
    epoch, seq, data = dump["records"][-1]
    assert core.ring_read(device.handle, epoch, seq, len(data) + 1)[0] == errors["WEDGE_ERR_INVAL"]
    assert core.ring_read(device.handle, epoch, seq, 5, 3)[1] == data[5:8]
    assert core.ring_read(device.handle, epoch, seq, len(data), 10)[1] == b""


def test_records_survive_a_reboot_and_the_next_epoch_follows(core: Core) -> None:
    device = Device.new(core)
    rng = random.Random(2)
    device.produce(rng, 5)
    first = device.epochs[-1]
    assert 1 <= first < 2**31  # no stored epoch: a random one below 2^31
    assert device.reboot() == 0
    dump = device.check()
    state = dump["state"]
    assert state["past"] == [(first, 0, 5)] and (state["next_seq"], state["oldest_seq"]) == (0, 0)
    assert state["boot_count"] == 2
    device.produce(rng, 3)
    assert device.check()["spans"] == [(first, 0, 5), (first + 1, 0, 3)]


def test_a_ninth_past_epoch_pushes_the_oldest_out(core: Core) -> None:
    device = Device.new(core)
    rng = random.Random(3)
    for _ in range(11):
        device.produce(rng, 1)
        assert device.reboot() == 0
    dump = device.check()
    assert [span[0] for span in dump["state"]["past"]] == device.epochs[-9:-1]
    assert dump["state"]["boot_count"] == 12


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(["produce", "reboot", "cut"]), st.integers(1, 40)), min_size=1,
                      max_size=12), seed=st.integers(0, 1000))
# A cut inside a new sector's header: the half-written epoch once came back as the stored epoch (0xFFFFC0C8).
@example(steps=[("produce", 1), ("produce", 11), ("cut", 18)], seed=6)
def test_any_mix_of_records_reboots_and_power_cuts_keeps_the_rules(core: Core, steps: list[tuple[str, int]],
                                                                   seed: int) -> None:
    device = Device.new(core, seed)
    rng = random.Random(seed)
    for action, amount in steps:
        if action == "produce":
            device.produce(rng, amount)
        elif action == "reboot":
            assert device.reboot() == 0
        else:
            # The power goes `amount * 7` bytes into the next writes; the board boots again afterwards.
            core.ring_power_cut(device.handle, amount * 7)
            device.produce(rng, 50)
            while device.reboot() != 0:  # the cut can also hit the boot's own write: power on and boot again
                pass
        device.check()


def test_a_power_cut_at_any_byte_of_a_write_loses_at_most_that_record(core: Core) -> None:
    rng = random.Random(5)
    for cut in range(0, 70, 3):
        device = Device.new(core, seed=cut + 1)
        device.produce(rng, 3)
        core.ring_power_cut(device.handle, cut)
        device.produce(rng, 2)
        while device.reboot() != 0:
            pass
        dump = device.check()
        assert device.produced[:3] == [r for r in dump["records"] if r[0] == device.epochs[0]][:3]
        device.produce(rng, 2)  # and the ring keeps working in the new epoch
        assert [r[1] for r in device.check()["records"] if r[0] == device.epochs[-1]] == [0, 1]
        core.drop(device.handle)


def test_a_damaged_entry_ends_the_log_there(core: Core) -> None:
    device = Device.new(core)
    rng = random.Random(4)
    device.produce(rng, 12)
    flash = bytearray(core.ring_flash(device.handle))
    victim = device.produced[5][2]
    at = bytes(flash).index(victim)
    flash[at + len(victim) - 1] ^= 0xFF  # one bit of record 5's last byte
    session_flash = core.ring_new(SECTOR * SECTORS, SECTOR, 4, MAX_RECORD)
    core.ring_load(session_flash, bytes(flash))  # the damaged image in a fresh region, booted as the device would
    assert core.ring_open(session_flash) == 0
    dump = core.ring_dump(session_flash)
    epoch = device.epochs[0]
    assert [r for r in dump["records"] if r[0] == epoch] == device.produced[:5]
    state = dump["state"]
    assert state["past"] == [(epoch, 0, 5)] and state["epoch"] == epoch + 1
    assert core.ring_produce(session_flash, record_of(rng, 10))[0] == 0
