"""Running the Cortex-M4 test firmware under QEMU's mps2-an386: a script of cases loaded into its PSRAM, one
result line per case back on its UART (see firmware/port/mps2-an386/selftest.c for the layout)."""

from __future__ import annotations

import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tests.device_c.build import QEMU
from wedge.firmware.protocol.ble_control import StreamStatus
from wedge.firmware.protocol.ble_records import Record

SCRIPT_ADDRESS: Final[int] = 0x21000000
SLOT_ADDRESS: Final[int] = 0x21800000
RUN_TIMEOUT_S: Final[float] = 120.0

(OP_HR, OP_F32, OP_STATUS, OP_BOARD, OP_SMP, OP_DUT, OP_MANIFEST, OP_BOOT, OP_JUNK, OP_RECORD, OP_FRAGMENTS,
 OP_CONTROL, OP_STREAM_STATUS, OP_RING_REBOOT) = range(1, 15)
_VALUE_FORMATS: Final[tuple[str, ...]] = ("b", "B", "h", "i", "f")


def _record(record: Record, version: int) -> bytes:
    payload = struct.pack("<BBIIQIB", version, record.backfill, record.epoch, record.seq, record.t_device_us,
                          record.model_id, len(record.outputs))
    for o in record.outputs:
        payload += struct.pack("<BBfiH", int(o.dtype), o.quantized, o.scale or 0.0, o.zero_point or 0,
                               len(o.values))
        payload += struct.pack(f"<{len(o.values)}{_VALUE_FORMATS[int(o.dtype)]}", *o.values)
    return payload


def _str(value: str | bytes | None) -> bytes:
    if value is None:
        return b"\xff\xff"
    data = value.encode() if isinstance(value, str) else value
    return struct.pack("<H", len(data)) + data


@dataclass
class Script:
    """Cases for the test firmware, in order; `add` returns the case's index (its result line's key)."""

    cases: list[tuple[int, bytes]] = field(default_factory=list)

    def add(self, op: int, payload: bytes) -> int:
        if len(payload) > 0xFFFF:
            raise ValueError("a case carries at most 65535 bytes")
        self.cases.append((op, payload))
        return len(self.cases) - 1

    def hr(self, bpm: int, contact: bool | None, energy_kj: int | None, rr: list[int], cap: int) -> int:
        contact_code = {None: 0, False: 1, True: 2}[contact]
        return self.add(OP_HR, struct.pack("<HBBHHH", bpm, contact_code, energy_kj is not None, energy_kj or 0, cap,
                                           len(rr)) + struct.pack(f"<{len(rr)}H", *rr))

    def f32(self, bits: list[int]) -> int:
        return self.add(OP_F32, struct.pack(f"<{len(bits)}I", *bits))

    def status(self, s: dict[str, Any]) -> int:
        payload = struct.pack("<BI", s["state"], s["boot_count"]) + _str(s.get("model_name")) + _str(
            s.get("model_version")) + _str(s.get("event"))
        digest = s.get("model_hash")
        payload += b"\x01" + digest if digest is not None else b"\x00"
        for key in ("arena_used_bytes", "self_test_us"):
            value = s.get(key)
            payload += struct.pack("<BI", value is not None, value or 0)
        return self.add(OP_STATUS, payload)

    def board(self, info: dict[str, Any]) -> int:
        payload = _str(info["board"]) + _str(info["runtime"]) + _str(info["firmware"]) + struct.pack(
            "<II", info["model_slot_bytes"], info["arena_bytes"]) + info["key_hash"]
        d = info.get("descriptor")
        if d is None:
            payload += b"\x00"
        else:
            payload += b"\x01" + _str(d["name"]) + _str(d["version"]) + _str(d["board"]) + _str(d["tflm_version"])
            payload += struct.pack("<IIBH", d["arena_bytes"], d["stream_protocol"], d["model_image"],
                                   len(d["ops_bitmap"])) + d["ops_bitmap"]
        return self.add(OP_BOARD, payload)

    def smp(self, group: int, request: bytes) -> int:
        return self.add(OP_SMP, struct.pack("<H", group) + request)

    def dut(self, config: dict[str, str | None], stream: bytes, *, input_cap: int, input_bytes: int = 0,
            output_count: int = 0) -> int:
        payload = struct.pack("<HHH", input_cap, input_bytes, output_count) + b"".join(
            _str(config.get(key)) for key in ("firmware", "device", "vendor", "model", "timer"))
        return self.add(OP_DUT, payload + stream)

    def manifest(self, cbor: bytes) -> int:
        return self.add(OP_MANIFEST, cbor)

    def boot(self, *, testing: bool, self_confirm: bool, model_image: int, arena_bytes: int, boot_count: int,
             board: str, ops: tuple[str, ...]) -> int:
        payload = struct.pack("<BBBII", testing, self_confirm, model_image, arena_bytes, boot_count)
        return self.add(OP_BOOT, payload + _str(board) + _str("\n".join(ops)))

    def junk(self, seed: int, rounds: int) -> int:
        return self.add(OP_JUNK, struct.pack("<II", seed, rounds))

    def record(self, record: Record, version: int) -> int:
        return self.add(OP_RECORD, _record(record, version))

    def fragments(self, encoded: bytes, payload: int) -> int:
        return self.add(OP_FRAGMENTS, struct.pack("<H", payload) + encoded)

    def control(self, data: bytes) -> int:
        return self.add(OP_CONTROL, data)

    def stream_status(self, status: StreamStatus) -> int:
        payload = struct.pack("<BQIIIIIIIB", status.streaming, status.device_id or 0, status.epoch,
                              status.oldest_seq, status.next_seq, status.capacity_records, status.rate_mhz,
                              status.model_id, status.boot_count, len(status.past_epochs))
        payload += b"".join(struct.pack("<III", s.epoch, s.first_seq, s.end_seq) for s in status.past_epochs)
        return self.add(OP_STREAM_STATUS, payload)

    def ring_reboot(self, payload: int, records: list[Record]) -> int:
        """Boot, append `records` (their epoch and seq are the ring's), reset the CPU, boot again and read back."""
        return self.add(OP_RING_REBOOT, struct.pack("<HH", payload, len(records)) + b"".join(
            _record(r, 2) for r in records))

    def to_bytes(self) -> bytes:
        return b"".join(struct.pack("<BBH", op, 0, len(p)) + p for op, p in self.cases) + b"\x00" * 4


@dataclass(frozen=True)
class Result:
    rc: int
    fields: tuple[str, ...]

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.fields[0]) if self.fields else b""


def run_selftest(elf: Path, script: Script, slot: bytes | None = None, *,
                 extra: tuple[str, ...] = ()) -> dict[int, Result]:
    """Run the firmware once over `script`; the result of each case by its index. AssertionError with the UART
    output when the run does not end cleanly."""
    with tempfile.TemporaryDirectory(prefix="wedge-qemu-") as work:
        script_path = Path(work) / "script.bin"
        script_path.write_bytes(script.to_bytes())
        command = [QEMU, "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "stdio",
                   "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
                   "-device", f"loader,file={script_path},addr={SCRIPT_ADDRESS:#x},force-raw=on", *extra]
        if slot is not None:
            slot_path = Path(work) / "slot.bin"
            slot_path.write_bytes(slot)
            command += ["-device", f"loader,file={slot_path},addr={SLOT_ADDRESS:#x},force-raw=on"]
        run = subprocess.run(command, capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
    text = run.stdout.decode("ascii", errors="replace")
    assert run.returncode == 0 and "wedge selftest done" in text, (
        f"the test firmware did not finish (exit {run.returncode}):\n{text[-3000:]}\n{run.stderr.decode()[-2000:]}")
    results: dict[int, Result] = {}
    for line in text.splitlines():
        parts = line.strip().split(" ")
        if len(parts) >= 2 and parts[0].isdigit():
            results[int(parts[0])] = Result(int(parts[1]), tuple(p for p in parts[2:] if p))
    return results
