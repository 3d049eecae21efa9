"""Every CLI entry point that reads a file, fed broken ones: never a traceback, never a hang, one-line errors.

Each valid seed file (a model, a calibration set, an image, a key, a board map, a board profile, a stream
database) is broken in the ways files break: empty, random bytes, truncated at several offsets, one flipped
byte, a directory in its place, a name that is not UTF-8, non-UTF-8 bytes in text. A mutation may still be a
valid file (a flipped weight byte); then the command may succeed, but whatever it does, it ends with an exit
code and, on failure, with one `error: ...` line.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from onnx import helper

from wedge.cli import main
from wedge.firmware.image.keys import KeyPair, generate_keys
from wedge.samples import sample_path
from wedge.samples.tiny_tflite import int8_add_model, int8_fc_model

SEED = 12
# A name with bytes that are not UTF-8, as a Linux file system allows (Python hands it over as surrogates).
NON_UTF8 = os.fsdecode(b"broken-\xff\xfe")

Mutation = Callable[[bytes, random.Random], bytes]


def _flip(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return b"\x01"
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]


MUTATIONS: dict[str, Mutation] = {
    "empty": lambda data, rng: b"",
    "random": lambda data, rng: rng.randbytes(max(64, len(data) // 4)),
    "truncated-1": lambda data, rng: data[:1],
    "truncated-10pct": lambda data, rng: data[: len(data) // 10],
    "truncated-half": lambda data, rng: data[: len(data) // 2],
    "truncated-last-byte": lambda data, rng: data[:-1],
    "flipped": _flip,
    "flipped-again": lambda data, rng: _flip(_flip(data, rng), rng),
    "non-utf8-bytes": lambda data, rng: data[: len(data) // 3] + b"\xff\xfe\xc3\x28" + data[len(data) // 3:],
}


@dataclass(frozen=True)
class Seed:
    """A valid file for a command, and how to run the command on a (broken) copy of it."""

    name: str
    suffix: str
    data: Callable[[Path, KeyPair], bytes]
    args: Callable[[Path, Path, KeyPair], list[str]]  # (broken file, work folder, keys) -> argv
    env: Callable[[Path], dict[str, str]] = lambda broken: {}


def _model_bytes(_work: Path, _keys: KeyPair) -> bytes:
    return sample_path("digits").read_bytes()


def _calib_bytes(_work: Path, _keys: KeyPair) -> bytes:
    return sample_path("digits").with_name("digits_calib.npz").read_bytes()


def _tflite_bytes(_work: Path, _keys: KeyPair) -> bytes:
    return int8_fc_model(features=16, units=4)


def _image_bytes(work: Path, keys: KeyPair) -> bytes:
    model = work / "seed.tflite"
    model.write_bytes(_tflite_bytes(work, keys))
    image = work / "seed.img"
    result = CliRunner().invoke(main, ["pack", str(model), "--board", "ring-nrf52840", "--key", str(keys.private_path),
                                       "--version", "1.0.0", "--arena-bytes", "4096", "-o", str(image)])
    assert result.exit_code == 0, result.output
    return image.read_bytes()


def _bench_bytes(work: Path, keys: KeyPair) -> bytes:
    return (f'[boards.ring]\nprofile = "ring-nrf52840"\nport = "{work / "no-such-tty"}"\n'
            f'key = "{keys.private_path}"\n').encode()


def _profile_bytes(_work: Path, _keys: KeyPair) -> bytes:
    from wedge.boards.loader import BUILTIN_DIR

    return (BUILTIN_DIR / "ring-nrf52840.toml").read_bytes().replace(b'name = "ring-nrf52840"', b'name = "fuzz-ring"')


def _stream_db_bytes(work: Path, _keys: KeyPair) -> bytes:
    path = work / "seed.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
    return path.read_bytes()


def _profile_env(broken: Path) -> dict[str, str]:
    folder = broken.parent / "profiles"
    folder.mkdir(exist_ok=True)
    target = folder / "fuzz-ring.toml"
    if broken.is_dir():
        target.mkdir(exist_ok=True)
    else:
        shutil.copyfile(broken, target)
    return {"WEDGE_BOARDS_PATH": str(folder)}


SEEDS: list[Seed] = [
    Seed("inspect-onnx", ".onnx", _model_bytes, lambda f, w, k: ["inspect", str(f), "--json"]),
    Seed("inspect-tflite", ".tflite", _tflite_bytes, lambda f, w, k: ["inspect", str(f), "--board", "ring-nrf52840"]),
    Seed("inspect-image", ".img", _image_bytes, lambda f, w, k: ["inspect", str(f), "--key", str(k.public_path)]),
    Seed("quantize-model", ".onnx", _model_bytes,
         lambda f, w, k: ["quantize", str(f), "--calib", str(sample_path("digits").with_name("digits_calib.npz")),
                          "--method", "minmax", "--calib-samples", "16", "--eval-samples", "16",
                          "--out-dir", str(w / "q")]),
    Seed("quantize-calib", ".npz", _calib_bytes,
         lambda f, w, k: ["quantize", str(sample_path("digits")), "--calib", str(f), "--method", "minmax",
                          "--eval-samples", "16", "--out-dir", str(w / "q")]),
    Seed("pack-model", ".tflite", _tflite_bytes,
         lambda f, w, k: ["pack", str(f), "--board", "ring-nrf52840", "--key", str(k.private_path), "--version", "1.0.0",
                          "--arena-bytes", "4096", "-o", str(w / "out.img")]),
    Seed("pack-key", ".pem", lambda w, k: k.private_path.read_bytes(),
         lambda f, w, k: ["pack", str(w / "model.tflite"), "--board", "ring-nrf52840", "--key", str(f), "--version",
                          "1.0.0", "--arena-bytes", "4096", "-o", str(w / "out.img")]),
    Seed("flash-image", ".img", _image_bytes,
         lambda f, w, k: ["flash", str(f), "--port", str(w / "no-such-tty"), "--timeout-s", "0.2"]),
    Seed("hil-board-map", ".toml", _bench_bytes,
         lambda f, w, k: ["hil", "run", str(w / "model.tflite"), "--board-map", str(f), "--report", str(w / "r"),
                          "--suite", "flash"]),
    Seed("boards-profile", ".toml", _profile_bytes, lambda f, w, k: ["boards", "show", "fuzz-ring"], _profile_env),
    Seed("bridge-sqlite", ".db", _stream_db_bytes,
         lambda f, w, k: ["bridge", "--transport", "tcp-client:127.0.0.1:9", "--device", "nobody", "--sink",
                          f"sqlite:{f}", "--scan-timeout-s", "0.5", "--no-status"]),
]


@pytest.fixture(scope="module")
def fuzz_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keys(tmp_path_factory.mktemp("fuzz-keys"))


def _huge(suffix: str) -> bytes:
    """A few hundred bytes that declare a tensor of 2^40 elements (ONNX) or a 2^31-1 wide input (TFLite)."""
    if suffix == ".tflite":
        return int8_add_model(2**31 - 1)
    weights = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[2**20, 2**20], raw_data=bytes(16))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "huge",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2**20])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2**20])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _cases() -> list[tuple[Seed, str]]:
    cases = [(seed, mutation) for seed in SEEDS for mutation in MUTATIONS]
    cases += [(seed, kind) for seed in SEEDS for kind in ("directory", "non-utf8-name")]
    cases += [(seed, "huge-dims") for seed in SEEDS if seed.suffix in (".onnx", ".tflite")]
    return cases


def _assert_clean(result, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"`wedge {' '.join(argv)}` raised instead of answering:\n{trace[-3000:]}")
    if result.exit_code != 0:
        errors = [line for line in result.output.splitlines() if line.strip().startswith("error:")]
        usage = result.exit_code == 2 and any(line.startswith("Error:") for line in result.output.splitlines())
        assert errors or usage, f"exit {result.exit_code} without an error line:\n{result.output[-2000:]}"
        assert "Traceback" not in result.output, result.output[-2000:]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("seed", "mutation"), _cases(), ids=lambda v: v.name if isinstance(v, Seed) else v)
def test_a_broken_file_gets_an_answer_not_a_traceback(seed: Seed, mutation: str, tmp_path: Path,
                                                      fuzz_keys: KeyPair) -> None:
    rng = random.Random(f"{SEED}-{seed.name}-{mutation}")
    (tmp_path / "model.tflite").write_bytes(_tflite_bytes(tmp_path, fuzz_keys))
    original = seed.data(tmp_path, fuzz_keys)
    name = NON_UTF8 if mutation == "non-utf8-name" else f"broken-{mutation}"
    broken = tmp_path / f"{name}{seed.suffix}"
    if mutation == "directory":
        broken.mkdir()
    elif mutation == "huge-dims":
        broken.write_bytes(_huge(seed.suffix))
    else:
        broken.write_bytes(original if mutation == "non-utf8-name" else MUTATIONS[mutation](original, rng))
    argv = seed.args(broken, tmp_path, fuzz_keys)
    result = CliRunner().invoke(main, argv, env=seed.env(broken), catch_exceptions=True)
    _assert_clean(result, argv)
    if mutation == "non-utf8-name":
        # The file itself is valid: only its name is unusual, and that must not matter.
        assert result.exit_code == 0 or seed.name in _FAILS_WITHOUT_HARDWARE, result.output[-2000:]


# Commands that fail on a valid file here because no board is attached (a port that does not exist).
_FAILS_WITHOUT_HARDWARE = frozenset({"flash-image", "hil-board-map", "bridge-sqlite"})


@pytest.mark.timeout(300)
@pytest.mark.parametrize("output_format", ["onnx", "tflite"])
def test_quantize_writes_into_a_folder_whose_name_is_not_utf8(output_format: str, tmp_path: Path) -> None:
    out = tmp_path / NON_UTF8
    argv = ["quantize", "--method", "minmax", "--calib-samples", "16", "--eval-samples", "16", "--format",
            output_format, "--out-dir", str(out)]
    result = CliRunner().invoke(main, argv, catch_exceptions=True)
    _assert_clean(result, argv)
    assert result.exit_code == 0, result.output[-2000:]
    written = {p.name for p in out.iterdir()}
    assert {"ppg_quality.int8.onnx", "report.json", "report.html"} <= written
    assert ("ppg_quality.int8.tflite" in written) == (output_format == "tflite")
    assert not any(name.startswith(".wedge-") for name in written)  # the work folder went with its link
