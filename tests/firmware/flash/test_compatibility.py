"""Before a byte is sent, the model is checked against what the running firmware supports; a firmware image goes
to image 0 with the same test/confirm safety; a model is never sent to the application's image."""

from __future__ import annotations

import json
from pathlib import Path

from tests.firmware.firmware_models import RING, pack, run_cli, write_image, write_model
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.samples.tiny_tflite import int8_add_model, int8_fc_model


def _one_line(result, *fragments: str) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in error, error
    return error


def test_a_model_needing_ops_the_firmware_lacks_is_refused_before_sending(tmp_path: Path, keys) -> None:
    firmware = tmp_path / "fw.img"
    packed = run_cli("pack", "--firmware", "--board", RING, "--key", str(keys.private_path), "--version", "1.2.0",
                     "--ops", "FULLY_CONNECTED,SOFTMAX", "-o", str(firmware))
    assert packed.returncode == 0, packed.stderr
    board = EmulatorProcess(tmp_path / "board", keys.public_path, extra=("--firmware", str(firmware)))
    board.start()
    try:
        adder = write_image(tmp_path, "add.img", pack(write_model(tmp_path, "add.tflite", int8_add_model(64)), keys,
                                                      "1.0.0", name="adder"))
        _one_line(run_cli("flash", str(adder), "--port", board.port),
                  "model needs ops ADD", "firmware 1.2.0 registers FULLY_CONNECTED, SOFTMAX")
        needy = pack(write_model(tmp_path, "fc.tflite", int8_fc_model(64, 8)), keys, "1.0.0", name="fc",
                     min_firmware="1.3.0")
        _one_line(run_cli("flash", str(write_image(tmp_path, "needy.img", needy)), "--port", board.port),
                  "needs image 0 (the application) at 1.3.0 or later", "runs 1.2.0")
        greedy = pack(write_model(tmp_path, "fc2.tflite", int8_fc_model(64, 8, seed=1)), keys, "1.0.0", name="fc",
                      arena_bytes=200_000, check_fit=False)
        _one_line(run_cli("flash", str(write_image(tmp_path, "greedy.img", greedy)), "--port", board.port),
                  "needs 200,000 bytes of TFLM arena", "firmware 1.2.0 has 131,072")
        model = write_image(tmp_path, "fc.img", pack(write_model(tmp_path, "fc3.tflite", int8_fc_model(64, 8)),
                                                     keys, "1.0.0", name="fc"))
        _one_line(run_cli("flash", str(model), "--port", board.port, "--image", "0"),
                  "packed for MCUboot image 1, not image 0")
        status = board.status()
        assert status["slots"][2] is None and status["slots"][3] is None  # nothing reached image 1
        # The firmware the board runs, named: the same checks hold for a device without the wedge group.
        ok = run_cli("flash", str(model), "--port", board.port, "--firmware", str(firmware), "--json")
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["outcome"] == "confirmed"
    finally:
        board.stop()


def test_a_firmware_update_is_tested_then_confirmed_and_device_info_says_confirmed(tmp_path: Path, keys,
                                                                                  board: EmulatorProcess) -> None:
    firmware = tmp_path / "fw2.img"
    assert run_cli("pack", "--firmware", "--board", RING, "--key", str(keys.private_path), "--version", "1.1.0",
                   "-o", str(firmware)).returncode == 0
    result = run_cli("flash", str(firmware), "--port", board.port, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["outcome"], report["image"], report["model"]) == ("confirmed", 0, "wedge-tflm-app")
    model = write_image(tmp_path, "fc.img", pack(write_model(tmp_path, "fc.tflite", int8_fc_model(64, 8)), keys,
                                                 "1.0.0", name="fc"))
    assert run_cli("flash", str(model), "--port", board.port).returncode == 0
    info = json.loads(run_cli("device", "info", "--port", board.port, "--json").stdout)
    assert info["firmware"] == "wedge-tflm-app 1.1.0" and info["descriptor"]["version"] == "1.1.0"
    # After the confirmation the boot event no longer says the model reverts at the next reset (issue 12, 10).
    assert "reverts at the next reset" not in info["model"]["event"] and "then confirmed" in info["model"]["event"]
