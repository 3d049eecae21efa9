"""`python -m wedge.samples.make`: it really makes the shipped files, byte for byte, and fails in one line."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from tests.conftest import REPO_ROOT
from wedge.samples import DIGITS, SAMPLES, SampleError, make
from wedge.samples.make import main
from wedge.samples.train import Dense, Flatten, TrainConfig

SHIPPED = sorted(p for s in SAMPLES.values() for p in (s.model_path, s.calib_path, s.eval_path))


@pytest.mark.slow
def test_make_script_regenerates_the_shipped_files_byte_for_byte(tmp_path: Path) -> None:
    for extra in ("sklearn", "heartpy", "threadpoolctl"):
        pytest.importorskip(extra, reason="making the samples needs the 'samples' extra")
    out = tmp_path / "samples"
    result = subprocess.run(
        [sys.executable, "-m", "wedge.samples.make", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "ppg_quality" in result.stdout and "digits" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in SHIPPED]
    different = [p.name for p in SHIPPED if (out / p.name).read_bytes() != p.read_bytes()]
    assert different == [], f"regenerated files differ from the shipped ones: {different}"


def test_make_without_the_samples_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules reads as "not installed" to the import system.
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "heartpy", None)
    result = CliRunner().invoke(main, ["--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "error: making the samples needs scikit-learn, heartpy: pip install 'wedge[samples]'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_make_refuses_an_output_path_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("not a directory")
    result = CliRunner().invoke(main, ["--out", str(target)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert target.read_text() == "not a directory"


def _quick_recipe(min_accuracy: float) -> tuple[make.Recipe, make.Dataset]:
    """A digits-shaped recipe that trains in milliseconds: 10 well-separated classes of 8x8 images."""
    rng = np.random.default_rng(0)
    prototypes = rng.random((10, 1, 8, 8)).astype(np.float32)

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(count, dtype=np.int64) % 10
        noise = rng.normal(0, 0.05, (count, 1, 8, 8)).astype(np.float32)
        return prototypes[labels] + noise, labels

    (train_x, train_y), (calib_x, _), (test_x, test_y) = draw(300), draw(100), draw(100)
    recipe = make.Recipe(
        sample=dataclasses.replace(DIGITS, min_accuracy=min_accuracy),
        network=(Flatten(), Dense(64, 10)),
        config=TrainConfig(epochs=5, batch_size=32, learning_rate=1e-2, seed=0),
        metadata={"labels": "[]"},
    )
    return recipe, make.Dataset(train_x, train_y, calib_x, test_x, test_y)


def test_make_all_writes_checked_files_for_every_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe, dataset = _quick_recipe(min_accuracy=0.9)
    monkeypatch.setattr(make, "RECIPES", ((recipe, lambda: dataset),))
    (made,) = make.make_all(tmp_path)
    assert made.accuracy == made.numpy_accuracy >= 0.9
    assert made.logit_rel_error <= make.LOGIT_RTOL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.onnx", "digits_calib.npz", "digits_eval.npz"]
    onnx.checker.check_model(onnx.load(tmp_path / "digits.onnx"))


def test_make_all_fails_loudly_and_keeps_the_old_files_when_accuracy_is_too_low(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "digits.onnx").write_bytes(b"previous model")
    recipe, dataset = _quick_recipe(min_accuracy=1.01)
    monkeypatch.setattr(make, "RECIPES", ((recipe, lambda: dataset),))
    with pytest.raises(SampleError, match="below 1.01"):
        make.make_all(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["digits.onnx"]
    assert (tmp_path / "digits.onnx").read_bytes() == b"previous model"
