"""Flash benchmark against virtual boards paced at real UART rates: throughput vs the SMP ceiling, resume cost, soak.

Prints one JSON object on stdout (progress on stderr). Measures, for a ~300 KB image on a virtual board:
- payload throughput at 115200 and 1,000,000 baud as a share of the SMP ceiling: the line rate (baud / 10, 8N1)
  times payload bytes / wire bytes of the upload requests at the board's negotiated buffer size (base64, line
  framing, length, CRC, SMP header and CBOR all count as wire overhead);
- bytes re-sent after the cable is pulled at 50% of the upload;
- time from flash start to a confirmed model;
- a fault soak (random faults per run): boards left without a valid model;
- SMP over BLE (the virtual board's SMP GATT service, wedge's BLE transport on the virtual air): payload
  throughput as a share of the link model's ceiling at ATT MTU 247 on 2M PHY with 7.5 ms and 30 ms connection
  intervals (ceiling = (MTU - 3) x packets per connection event / interval), and bytes re-sent after the radio
  drops the link at 50% of the upload.

Usage: python bench/flash_bench.py [--soak-runs N] [--skip-115200] [--skip-ble]
The image is MLPerf Tiny VWW int8 (../shared/models, 325 KB) on glasses-esp32s3 when present, else a generated
int8 model of the same size.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wedge.boards import load as load_board
from wedge.firmware.flash.flasher import FlashOptions, flash_image
from wedge.firmware.flash.upload import plan_chunks
from wedge.firmware.image.build import build_image
from wedge.firmware.image.format import IMAGE_HEADER_BYTES
from wedge.firmware.image.keys import KeyPair, generate_keys
from wedge.firmware.image.model_image import ModelImage
from wedge.firmware.protocol.smp_messages import max_message_bytes
from wedge.firmware.protocol.smp_serial import frame_wire_bytes
from wedge.firmware.virtual.ble.link_model import LinkModel
from wedge.firmware.virtual.faults import FaultSettings
from wedge.firmware.virtual.processes import AirProcess, EmulatorProcess
from wedge.hil.soak import flash_supervised, random_fault
from wedge.samples.tiny_tflite import int8_fc_model

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"

# smpclient logs each timeout at ERROR level; the bench reports outcomes itself.
for _name in ("smpclient", "smp"):
    logging.getLogger(_name).addHandler(logging.NullHandler())
    logging.getLogger(_name).propagate = False

BOARD = "glasses-esp32s3"  # a 4 MiB model slot: room for a ~300 KB model
BUF_SIZE = 384  # what the virtual board negotiates for a profile without SMP of its own (Zephyr's default)
GOAL_SHARE = 0.90
BLE_GOAL_SHARE = 0.80
BLE_BOARD = "ring-nrf52840"
BLE_ATT_MTU = 247
# 2M PHY with the Data Length Extension: a 251-byte data PDU is 262 bytes on air (preamble 2, access address 4,
# header 2, CRC 3) = 1048 us, then T_IFS 150 us, the peer's empty PDU 44 us and T_IFS 150 us again: 1.392 ms a
# packet (Core Spec Vol 6, Part B, 2.1 and 4.1.1). A connection event fits floor(interval / 1.392 ms) of them.
PACKET_EXCHANGE_MS_2M = 1.392


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pack(model: Path, keys: KeyPair, version: str, board: str = "ring-nrf52840", *, arena_bytes: int = 4096,
         name: str | None = None) -> ModelImage:
    return build_image(model, load_board(board), keys.private_path, version, arena_bytes=arena_bytes,
                       model_name=name).image


def write_model(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def bench_image(work: Path, keys: Any) -> tuple[Any, str]:
    vww = SHARED_MODELS / "vww_96_int8.tflite"
    if vww.is_file():
        return pack(vww, keys, "1.0.0", board=BOARD, arena_bytes=110_000, name="vww"), "vww_96_int8.tflite"
    model = write_model(work, "synthetic.tflite", int8_fc_model(features=4096, units=80))
    return pack(model, keys, "1.0.0", board=BOARD, arena_bytes=16_384, name="synthetic"), "synthetic int8 (VWW absent)"


def smp_ceiling(image_bytes: int, baud: int) -> dict[str, Any]:
    """Line rate x payload / wire bytes of the requests that carry the image at BUF_SIZE."""
    plan = plan_chunks(image_bytes, IMAGE_HEADER_BYTES, max_message_bytes(BUF_SIZE))
    payload = sum(size for _, size, _ in plan)
    wire = sum(frame_wire_bytes(message) for _, _, message in plan)
    line_rate = baud / 10
    return {"line_rate_bytes_per_s": line_rate, "payload_per_wire_byte": payload / wire,
            "ceiling_bytes_per_s": line_rate * payload / wire, "chunks": len(plan)}


def throughput(work: Path, keys: Any, image: Any, baud: int, window: int) -> dict[str, Any]:
    folder = work / f"rate-{baud}-w{window}"
    folder.mkdir()
    board = EmulatorProcess(folder, keys.private_path, BOARD, extra=("--baud", str(baud)))
    board.start()
    try:
        started = time.monotonic()
        report = flash_image(board.port, image, "bench.img", FlashOptions(window=window, timeout_s=5.0))
        confirmed_s = time.monotonic() - started
    finally:
        board.stop()
    upload = report.upload
    assert upload is not None
    rate = upload.image_bytes / upload.duration_s
    ceiling = smp_ceiling(upload.image_bytes, baud)
    return {
        "baud": baud,
        "window": window,
        "image_bytes": upload.image_bytes,
        "upload_s": round(upload.duration_s, 3),
        "payload_bytes_per_s": round(rate, 1),
        "smp_ceiling_bytes_per_s": round(ceiling["ceiling_bytes_per_s"], 1),
        "payload_per_wire_byte": round(ceiling["payload_per_wire_byte"], 4),
        "share_of_ceiling": round(rate / ceiling["ceiling_bytes_per_s"], 4),
        "flash_start_to_confirmed_s": round(confirmed_s, 3),
        "outcome": report.outcome,
    }


def resume_after_cut(work: Path, keys: Any, image: Any, baud: int, window: int) -> dict[str, Any]:
    folder = work / f"cut-{baud}-w{window}"
    folder.mkdir()
    board = EmulatorProcess(folder, keys.private_path, BOARD, extra=("--baud", str(baud)))
    board.start()
    wire_total = sum(frame_wire_bytes(m) for _, _, m in plan_chunks(len(image.data), IMAGE_HEADER_BYTES,
                                                                   max_message_bytes(BUF_SIZE)))
    try:
        # Counting from now, the identify/state requests come first: a few hundred bytes before the upload.
        board.control(op="faults", cut_after_bytes=wire_total // 2, cut_down_s=0.3)
        report = flash_image(board.port, image, "bench.img", FlashOptions(window=window, timeout_s=5.0))
    finally:
        board.stop()
    upload = report.upload
    assert upload is not None
    return {
        "baud": baud,
        "window": window,
        "cut_after_wire_bytes": wire_total // 2,
        "resumes": upload.resumes,
        "resent_bytes": upload.resent_bytes,
        "resume_probe_bytes": IMAGE_HEADER_BYTES,
        "chunk_payload_bytes": upload.chunk_payload_bytes,
        # The probe re-sends the 32-byte image header: Zephyr needs it in the first chunk to name the upload.
        "resent_chunks": round((upload.resent_bytes - IMAGE_HEADER_BYTES * upload.resumes) / upload.chunk_payload_bytes, 2),
        "outcome": report.outcome,
    }


def _ble_packets(interval_ms: float) -> int:
    return max(1, int(interval_ms / PACKET_EXCHANGE_MS_2M))


def _ble_flash(air: AirProcess, image: ModelImage, observer: Any = None, window: int | None = None) -> Any:
    import asyncio

    from wedge.edge.bridge.discovery import BleStack, DeviceSelector
    from wedge.edge.bridge.pairing import pair_device
    from wedge.firmware.flash.ble_transport import BleSmpTransport
    from wedge.firmware.flash.flasher import flash_image_async

    async def go() -> Any:
        stack = BleStack.bumble(air.spec)
        try:
            # The ring's SMP service needs an encrypted link: bond first (not timed), flash over it.
            await pair_device(DeviceSelector(name="bench-ring"), stack)
            started = time.monotonic()
            transport = BleSmpTransport(scanner_args=stack.scanner_args, client_args=stack.client_args)
            report = await flash_image_async("bench-ring", image, "bench.img",
                                             FlashOptions(timeout_s=5.0, reconnect_timeout_s=30.0, window=window),
                                             observer, transport)
            return report, time.monotonic() - started
        finally:
            await stack.close()

    return asyncio.run(go())


class _DropAt:
    """Has the board's radio drop the link once the upload is halfway."""

    def __init__(self, board: EmulatorProcess) -> None:
        self.board = board
        self.fired = False

    def phase(self, name: str, detail: str) -> None:
        pass

    def progress(self, sent_bytes: int, total_bytes: int) -> None:
        if not self.fired and sent_bytes * 2 >= total_bytes:
            self.fired = True
            self.board.control(op="ble-drop")


def ble_runs(work: Path, keys: Any, image: ModelImage, interval_ms: float, *, drop: bool,
             window: int | None = None) -> dict[str, Any]:
    folder = work / f"ble-{interval_ms:g}-{'drop' if drop else 'clean'}-w{window or 'default'}"
    folder.mkdir()
    packets = _ble_packets(interval_ms)
    air = AirProcess(folder)
    board = EmulatorProcess(folder, keys.private_path, BLE_BOARD,
                            extra=("--ble", air.spec, "--ble-name", "bench-ring", "--ble-interval-ms", str(interval_ms),
                                   "--ble-packets-per-event", str(packets)))
    board.start()
    try:
        observer = _DropAt(board) if drop else None
        report, confirmed_s = _ble_flash(air, image, observer, window)
    finally:
        board.stop()
        air.terminate()
    upload = report.upload
    assert upload is not None
    ceiling = LinkModel(interval_ms, packets, BLE_ATT_MTU).max_payload_bytes_per_s
    rate = upload.image_bytes / upload.duration_s
    result = {
        "conn_interval_ms": interval_ms, "packets_per_event": packets, "att_mtu": BLE_ATT_MTU, "phy": "2M",
        "image_bytes": upload.image_bytes, "upload_s": round(upload.duration_s, 3),
        "payload_bytes_per_s": round(rate, 1), "link_ceiling_bytes_per_s": round(ceiling, 1),
        "share_of_ceiling": round(rate / ceiling, 4), "window": upload.window,
        "default_window": window is None,
        "chunk_payload_bytes": upload.chunk_payload_bytes, "flash_start_to_confirmed_s": round(confirmed_s, 3),
        "outcome": report.outcome,
    }
    if drop:
        result.update({"resumes": upload.resumes, "resent_bytes": upload.resent_bytes,
                       "resent_chunks": round(max(0, upload.resent_bytes - IMAGE_HEADER_BYTES * upload.resumes)
                                              / upload.chunk_payload_bytes, 2)})
    return result


def soak(work: Path, keys: Any, runs: int) -> dict[str, Any]:
    folder = work / "soak"
    folder.mkdir()
    board = EmulatorProcess(folder, keys.private_path)
    board.start()
    rng = random.Random(7)
    images = [pack(write_model(work, f"soak{i}.tflite", int8_fc_model(1200, 16, seed=i)), keys, f"1.{i}.0",
                   name=f"soak{i}") for i in range(4)]
    options = FlashOptions(timeout_s=0.3, reconnect_timeout_s=8.0, boot_timeout_s=30.0)
    flash_image(board.port, images[0], "first.img", options)
    current = images[0].manifest.model_version
    without_model, outcomes = 0, {"confirmed": 0, "error": 0, "other": 0}
    try:
        for run in range(runs):
            image = images[1 + run % 3]
            _, fault = random_fault(rng)
            board.control(op="faults", **fault)
            result = flash_supervised(board, image, options)
            outcomes["confirmed" if result == "confirmed" else "error" if result.startswith("error") else "other"] += 1
            if not board.alive():
                board.start()
            board.control(op="faults", **FaultSettings().to_dict())
            board.control(op="unhang")
            status = board.status()
            if status["state"] != "running" or status["version"] not in (current, image.manifest.model_version):
                without_model += 1
            current = status["version"]
            if run % 10 == 9:
                log(f"soak: {run + 1}/{runs} runs")
    finally:
        board.stop()
    return {"runs": runs, "boards_without_valid_model": without_model, "flash_outcomes": outcomes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak-runs", type=int, default=20, help="fault-soak runs (the goal is stated for 200)")
    parser.add_argument("--skip-115200", action="store_true", help="skip the ~45 s upload at 115200 baud")
    parser.add_argument("--skip-ble", action="store_true", help="skip the SMP-over-BLE figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wedge-flash-bench-") as tmp:
        work = Path(tmp)
        keys = generate_keys(work / "keys")
        image, source = bench_image(work, keys)
        log(f"image: {source}, {image.size_bytes:,} bytes")
        rates = [] if args.skip_115200 else [115_200]
        rates.append(1_000_000)
        results = []
        for baud in rates:
            log(f"throughput at {baud} baud ...")
            results.append(throughput(work, keys, image, baud, window=2))
        log("throughput at 1000000 baud, one chunk in flight ...")
        stop_and_wait = throughput(work, keys, image, 1_000_000, window=1)
        log("cut at 50% ...")
        cuts = [resume_after_cut(work, keys, image, 1_000_000, window) for window in (2, 1)]
        ble: list[dict[str, Any]] = []
        ble_drops: list[dict[str, Any]] = []
        if not args.skip_ble:
            ble_model = write_model(work, "ble.tflite", int8_fc_model(features=4096, units=28, seed=5))
            ble_image = pack(ble_model, keys, "1.0.0", board=BLE_BOARD, arena_bytes=16_384, name="ble")
            for window in (None, 2):  # the BLE transport's default (1), and two chunks in flight
                for interval in (7.5, 30.0):
                    log(f"BLE at a {interval} ms connection interval, window {window or 'default'} ...")
                    ble.append(ble_runs(work, keys, ble_image, interval, drop=False, window=window))
                log(f"BLE drop at 50%, window {window or 'default'} ...")
                ble_drops.append(ble_runs(work, keys, ble_image, 30.0, drop=True, window=window))
        log(f"soak of {args.soak_runs} runs ...")
        soak_result = soak(work, keys, args.soak_runs)
    summary = {
        "image": {"source": source, "bytes": image.size_bytes, "board": BOARD, "smp_buf_size": BUF_SIZE},
        "ceiling_definition": "baud/10 x (image payload bytes / wire bytes of the upload request frames)",
        "throughput": results,
        "throughput_one_chunk_in_flight": stop_and_wait,
        "resume_after_cut_at_50pct": cuts,
        "soak": soak_result,
        "ble": ble,
        "ble_resume_after_drop_at_50pct": ble_drops,
        "goals": {
            "share_of_ceiling_at_least_0.90": all(r["share_of_ceiling"] >= GOAL_SHARE for r in results),
            "ble_share_of_link_ceiling_at_least_0.80": {f"{r['conn_interval_ms']} ms window {r['window']}":
                                                        r["share_of_ceiling"] >= BLE_GOAL_SHARE for r in ble},
            "ble_resume_resends_at_most_one_chunk": {
                f"window {r['window']}{' (default)' if r['default_window'] else ''}": r["resent_chunks"] <= 1.0
                for r in ble_drops},
            "resume_resends_at_most_one_chunk": {f"window {c['window']}": c["resent_chunks"] <= 1.0 for c in cuts},
            "zero_boards_without_model": soak_result["boards_without_valid_model"] == 0,
            "soak_runs_note": "the goal is 200 runs: pass --soak-runs 200" if args.soak_runs < 200 else "200+ runs",
        },
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
