"""The firmware commands as a user runs them: keys, pack, inspect of an image, device, emulate's own errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.firmware.firmware_models import RING, run_cli, write_model
from wedge.cli import main
from wedge.firmware.virtual.processes import EmulatorProcess
from wedge.samples import SAMPLES
from wedge.samples.tiny_tflite import int8_fc_model


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_keys_generate_then_pack_then_inspect_verifies_the_image(tmp_path: Path) -> None:
    made = _run("keys", "generate", "--out-dir", str(tmp_path / "keys"), "--json")
    assert made.exit_code == 0, made.output
    key_hash = json.loads(made.output)["key_hash"]
    model = write_model(tmp_path, "tiny.tflite", int8_fc_model(64, 8))
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class{i}" for i in range(8)))
    packed = _run("pack", str(model), "--board", RING, "--key", str(tmp_path / "keys/wedge.pem"), "--version",
                  "1.2.0", "-o", str(tmp_path / "tiny.img"), "--labels", str(labels), "--arena-bytes", "2048",
                  "--json")
    assert packed.exit_code == 0, packed.output
    record = json.loads(packed.output)
    assert record["key_hash"] == key_hash and record["manifest"]["labels"][7] == "class7"
    shown = _run("inspect", str(tmp_path / "tiny.img"), "--key", str(tmp_path / "keys/wedge.pub"))
    assert shown.exit_code == 0, shown.output
    for text in ("tiny 1.2.0", RING, "ed25519 ok", "SHA-256", "class0"):
        assert text in shown.output
    as_json = json.loads(_run("inspect", str(tmp_path / "tiny.img"), "--json").output)
    assert as_json["check"]["hash_ok"] and as_json["check"]["signature_ok"] and as_json["check"]["trusted"] is None


def test_pack_measures_the_arena_with_tflite_micro(tmp_path: Path, keys) -> None:
    model = write_model(tmp_path, "tiny.tflite", int8_fc_model(64, 8))
    packed = _run("pack", str(model), "--board", RING, "--key", str(keys.private_path), "--version", "1.0.0",
                  "-o", str(tmp_path / "tiny.img"), "--json")
    assert packed.exit_code == 0, packed.output
    assert 0 < json.loads(packed.output)["manifest"]["arena_bytes"] < 16_384


def test_inspect_refuses_a_tampered_image_in_one_line(tmp_path: Path, keys) -> None:
    model = write_model(tmp_path, "tiny.tflite", int8_fc_model(64, 8))
    _run("pack", str(model), "--board", RING, "--key", str(keys.private_path), "--version", "1.0.0", "-o",
         str(tmp_path / "tiny.img"), "--arena-bytes", "2048")
    data = bytearray((tmp_path / "tiny.img").read_bytes())
    data[300] ^= 1
    (tmp_path / "tiny.img").write_bytes(bytes(data))
    result = run_cli("inspect", str(tmp_path / "tiny.img"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("error: tiny.img cannot be trusted: its SHA-256 does not match its contents "
                                     "(the image was modified after signing)")


def test_pack_refuses_what_cannot_run_on_the_board(tmp_path: Path, keys) -> None:
    model = write_model(tmp_path, "tiny.tflite", int8_fc_model(64, 8))
    result = _run("pack", str(model), "--board", RING, "--key", str(keys.private_path), "--version", "1.0.0",
                  "-o", str(tmp_path / "x.img"), "--arena-bytes", "999999")
    assert result.exit_code == 1 and "does not fit ring-nrf52840" in result.output
    assert not (tmp_path / "x.img").exists()


def test_device_commands_report_and_reset_a_board(tmp_path: Path, keys, board: EmulatorProcess) -> None:
    info = _run("device", "info", "--port", board.port, "--json")
    assert info.exit_code == 0, info.output
    data = json.loads(info.output)
    assert data["board"] == RING and data["buf_size"] == 2475 and data["model"]["state"] == "no model"
    assert data["key_hash"] == keys.key_hash.hex()
    slots = json.loads(_run("device", "images", "--port", board.port, "--json").output)
    # A fresh board runs its application (image 0) and has no model (image 1): as Zephyr lists it.
    assert [(s["image"], s["slot"], s["active"], s["confirmed"]) for s in slots] == [(0, 0, True, True)]
    reset = _run("device", "reset", "--port", board.port, "--json")
    assert reset.exit_code == 0, reset.output
    assert json.loads(reset.output)["model"]["boot_count"] == data["model"]["boot_count"] + 1


def test_a_new_virtual_board_needs_a_key_and_keeps_the_one_it_was_given(tmp_path: Path, keys, other_keys) -> None:
    keyless = run_cli("emulate", "--board", RING, "--state", str(tmp_path / "state"))
    assert keyless.returncode == 1 and "needs the public key" in keyless.stderr
    board = EmulatorProcess(tmp_path, keys.private_path)
    board.start()
    board.stop()
    other = run_cli("emulate", "--board", RING, "--state", str(tmp_path / "state"), "--key", str(other_keys.public_path))
    assert other.returncode == 1 and "was provisioned with key" in other.stderr


@pytest.mark.slow
def test_deploy_quantizes_packs_flashes_and_confirms_the_digits_sample(tmp_path: Path, keys,
                                                                       board: EmulatorProcess) -> None:
    sample = SAMPLES["digits"]
    result = run_cli("deploy", str(sample.model_path), "--board", RING, "--calib", str(sample.calib_path),
                     "--eval", str(sample.eval_path), "--key", str(keys.private_path), "--port", board.port,
                     "--out-dir", str(tmp_path / "out"), "--version", "1.0.0", "--json", timeout_s=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["flash"]["outcome"] == "confirmed"
    assert data["image"]["manifest"]["arena_bytes"] == data["quantize"]["tflite"]["arena"]["arena_bytes"]
    # The sample's class names, from its ONNX metadata, reach the manifest without a --labels.
    assert data["image"]["manifest"]["labels"] == list(sample.labels)
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"digits.int8.tflite", "digits.int8.img", "report.html"}
    status = board.status()
    assert (status["state"], status["model"]) == ("running", "digits.int8")  # named as `wedge pack` names it
    # Without --json, deploy shows what quantization cost before it flashes, as `wedge quantize` does.
    shown = run_cli("deploy", str(sample.model_path), "--board", RING, "--calib", str(sample.calib_path),
                    "--eval", str(sample.eval_path), "--key", str(keys.private_path), "--port", board.port,
                    "--out-dir", str(tmp_path / "out2"), "--version", "1.0.1", timeout_s=300)
    assert shown.returncode == 0, shown.stderr
    for text in ("fp32 vs int8", "accuracy int8", "Board fit", "report page:", "digits.int8 1.0.1 confirmed"):
        assert text in shown.stdout, text


def test_a_board_refuses_an_application_image_signed_with_another_key(tmp_path: Path, keys, other_keys) -> None:
    firmware = tmp_path / "fw.img"
    assert run_cli("pack", "--firmware", "--board", RING, "--key", str(other_keys.private_path), "--version", "1.0.0",
                   "-o", str(firmware)).returncode == 0
    result = run_cli("emulate", "--board", RING, "--state", str(tmp_path / "state"), "--key", str(keys.public_path),
                     "--firmware", str(firmware))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "not signed by the trusted key" in result.stderr
    fresh = run_cli("emulate", "--board", RING, "--state", str(tmp_path / "state2"), "--key", str(keys.public_path))
    assert fresh.returncode == 1 and "--firmware FW.img" in fresh.stderr


def test_pack_checks_the_image_against_the_key_it_signed_with_and_writes_a_shareable_file(tmp_path: Path,
                                                                                          keys) -> None:
    import stat

    model = write_model(tmp_path, "tiny.tflite", int8_fc_model(64, 8))
    args = ("pack", str(model), "--board", RING, "--key", str(keys.private_path), "--version", "1.0.0", "-o",
            str(tmp_path / "tiny.img"), "--arena-bytes", "2048")
    shown = run_cli(*args)
    assert shown.returncode == 0, shown.stderr
    assert "yes (signed by the given key)" in shown.stdout and "not checked" not in shown.stdout
    record = run_cli(*args, "--json")
    assert json.loads(record.stdout)["check"]["trusted"] is True
    # An image is not a secret: the umask's mode, as any file the user writes; the private key stays 0600.
    assert stat.S_IMODE((tmp_path / "tiny.img").stat().st_mode) == 0o666 & ~_umask()
    assert stat.S_IMODE(keys.private_path.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_device_info_says_confirmed_once_the_flash_confirmed_the_model(tmp_path: Path, keys,
                                                                      board: EmulatorProcess) -> None:
    from tests.firmware.firmware_models import pack, write_image

    image = write_image(tmp_path, "tiny.img", pack(write_model(tmp_path, "t.tflite", int8_fc_model(64, 8)), keys,
                                                   "1.0.0", name="tiny"))
    assert run_cli("flash", str(image), "--port", board.port).returncode == 0
    table = run_cli("device", "info", "--port", board.port)
    assert table.returncode == 0, table.stderr
    assert "reverts at the next reset" not in table.stdout  # neither the state row nor the boot event
    assert "then confirmed" in table.stdout and "confirmed" in table.stdout.split("model state")[1].splitlines()[0]


def test_a_ppg_model_for_camera_glasses_is_flashed_with_a_warning(tmp_path: Path, keys) -> None:
    glasses = "glasses-esp32s3"
    ppg = write_model(tmp_path, "ppg.tflite", int8_fc_model(200, 3))  # a 4 s window of 50 Hz PPG, 3 classes
    packed = run_cli("pack", str(ppg), "--board", glasses, "--key", str(keys.private_path), "--version", "1.0.0",
                     "-o", str(tmp_path / "ppg.img"), "--arena-bytes", "4096")
    assert packed.returncode == 0, packed.stderr
    assert "warning: no sensor of glasses-esp32s3 gives ppg its input (200 values a window" in packed.stdout
    assert "camera (camera) 1 x 96 x 96 x 3" in packed.stdout
    board = EmulatorProcess(tmp_path / "glasses", keys.private_path, board=glasses)
    board.folder.mkdir()
    board.start()
    try:
        flashed = run_cli("flash", str(tmp_path / "ppg.img"), "--port", board.port, "--json")
    finally:
        board.stop()
    assert flashed.returncode == 0, flashed.stderr  # a warning, not a refusal: benching it is legitimate
    report = json.loads(flashed.stdout)
    assert report["outcome"] == "confirmed"
    assert any(n.startswith("warning: no sensor of glasses-esp32s3") for n in report["notes"])
    # The same model on a ring: its PPG window is exactly the input, no warning.
    ring = run_cli("pack", str(ppg), "--board", RING, "--key", str(keys.private_path), "--version", "1.0.0",
                   "-o", str(tmp_path / "ring.img"), "--arena-bytes", "4096", "--json")
    assert not [n for n in json.loads(ring.stdout)["notes"] if n.startswith("warning")]
