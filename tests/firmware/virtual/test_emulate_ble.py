"""`wedge emulate --ble`: a flashed virtual ring streams its booted model's inference to `wedge bridge`.

The whole path of the product: sample model -> int8 .tflite -> signed image -> SMP flash -> boot -> always-on
inference in TFLite-Micro -> BLE notifications over the virtual air -> the bridge's sink.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.firmware.firmware_models import pack, run_cli
from wedge.firmware.flash.flasher import FlashOptions, flash_image
from wedge.firmware.image.keys import KeyPair
from wedge.firmware.virtual.processes import AirProcess, EmulatorProcess
from wedge.quantize.calibrate import Method
from wedge.quantize.pipeline import QuantizeOptions, run_quantize, tflite_output_path
from wedge.samples import SAMPLES

FAST = FlashOptions(timeout_s=1.0, reconnect_timeout_s=20.0, boot_timeout_s=60.0)


@pytest.mark.slow
def test_flashed_virtual_ring_streams_its_model_over_ble_to_the_bridge(tmp_path: Path, keys: KeyPair) -> None:
    sample = SAMPLES["ppg_quality"]
    out = tmp_path / "out"
    run_quantize(sample.model_path, out, calib=sample.calib_path, evaluation=sample.eval_path,
                 options=QuantizeOptions(methods=(Method.MINMAX,), format="tflite"))
    model = tflite_output_path(sample.model_path, out)
    image = pack(model, keys, "1.0.0", arena_bytes=16_384, name="ppg_quality")

    air = AirProcess(tmp_path)
    board = EmulatorProcess(tmp_path / "board", keys.private_path,
                                extra=("--ble", air.spec, "--ble-name", "wedge-ring-e2e", "--ble-rate-hz", "10"))
    board.folder.mkdir()
    try:
        board.start()
        report = flash_image(board.port, image, "model.img", FAST)
        assert report.model == "ppg_quality"  # a FlashReport means flashed, booted and confirmed
        sink = tmp_path / "records.jsonl"
        # The ring only streams over an encrypted, bonded link: the bridge pairs on its first connection.
        result = run_cli("bridge", "--transport", air.spec, "--keystore", str(tmp_path / "bonds.json"), "--pair",
                         "--device", "wedge-ring-e2e", "--sink", f"jsonl:{sink}", "--duration-s", "6", "--no-status",
                         timeout_s=120)
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in sink.read_text().splitlines()]
        records = [r for r in lines if r["kind"] != "model"]
    finally:
        board.stop()
        air.terminate()
    assert len(records) >= 10, records[:3]
    # The emulator's terminal said what happened on the air, one line each.
    console = board.log_path.read_text()
    assert "BLE: advertising as wedge-ring-e2e" in console and " connected" in console
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(set(seqs))  # ordered, no duplicates
    expected_id = int.from_bytes(hashlib.sha256(model.read_bytes()).digest()[:4], "big")
    assert {r["model_id"] for r in records} == {expected_id}  # the flashed model, not some other one
    assert all(len(r["outputs"]) == len(sample.labels) for r in records)  # one output per PPG class
    # The labels went from the model's metadata into the image's manifest, and the ring told the bridge.
    models = [r for r in lines if r["kind"] == "model"]
    assert [(m["name"], m["labels"]) for m in models] == [("ppg_quality", list(sample.labels))]
    assert all(r["label"] in sample.labels and 0 < r["score"] <= 1 for r in records if r["kind"] == "wedge")
