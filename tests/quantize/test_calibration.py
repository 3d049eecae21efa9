"""Stage 2: calibration readers accept the documented formats and refuse mismatched data clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wedge.quantize.calibration import ImagePreprocess, feed_batch_size, load_samples
from wedge.quantize.errors import CalibrationDataError
from wedge.quantize.load import InputSpec

SPEC = InputSpec("x", (1, 1, 8, 8), np.dtype(np.float32), batch_dynamic=True)
SENSOR = InputSpec("ppg", (1, 1, 20), np.dtype(np.float32), batch_dynamic=True)


def test_npz_keyed_by_input_name_streams_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez(path, x=np.zeros((10, 1, 8, 8), np.float32), labels=np.arange(10))
    samples = load_samples(path, [SPEC])
    assert len(samples) == 10
    assert [b["x"].shape[0] for b in samples.batches(4)] == [4, 4, 2]
    assert samples.labels is not None and samples.labels.tolist() == list(range(10))


def test_single_input_model_accepts_any_single_key(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez(path, images=np.ones((3, 1, 8, 8), np.float64))
    batch = next(load_samples(path, [SPEC]).batches(8))
    assert batch["x"].dtype == np.float32 and batch["x"].shape == (3, 1, 8, 8)


def test_calib_samples_keeps_the_first_n(tmp_path: Path) -> None:
    path = tmp_path / "c.npy"
    np.save(path, np.arange(20 * 64, dtype=np.float32).reshape(20, 1, 8, 8))
    samples = load_samples(path, [SPEC], max_samples=5)
    assert len(samples) == 5
    assert next(samples.batches(100))["x"].shape[0] == 5


def test_wrong_shape_names_expected_shape(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez(path, x=np.zeros((5, 8, 8), np.float32))
    with pytest.raises(CalibrationDataError, match=r"shape \(5, 8, 8\), expected \(N, 1, 8, 8\)"):
        load_samples(path, [SPEC])


def test_wrong_key_lists_model_inputs(tmp_path: Path) -> None:
    two = [SPEC, InputSpec("y", (1, 4), np.dtype(np.float32), True)]
    path = tmp_path / "c.npz"
    np.savez(path, a=np.zeros((5, 1, 8, 8), np.float32), b=np.zeros((5, 4), np.float32))
    with pytest.raises(CalibrationDataError, match="missing"):
        load_samples(path, two)


def test_integer_data_for_a_float_input_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez(path, x=np.zeros((5, 1, 8, 8), np.uint8))
    with pytest.raises(CalibrationDataError, match="dtype uint8"):
        load_samples(path, [SPEC])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_is_refused_with_the_sample_index(tmp_path: Path, bad: float) -> None:
    data = np.zeros((5, 1, 8, 8), np.float32)
    data[3, 0, 2, 2] = bad
    path = tmp_path / "c.npz"
    np.savez(path, x=data)
    with pytest.raises(CalibrationDataError, match="NaN/Inf.*sample 3"):
        load_samples(path, [SPEC])


def test_empty_calibration_set_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez(path, x=np.zeros((0, 1, 8, 8), np.float32))
    with pytest.raises(CalibrationDataError, match="empty"):
        load_samples(path, [SPEC])


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("1,2,3")
    with pytest.raises(CalibrationDataError, match="unknown format"):
        load_samples(path, [SPEC])


def test_csv_rows_are_sensor_windows_with_optional_labels(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    header = ",".join([f"s{i}" for i in range(20)] + ["label"])
    rows = [",".join([str(float(i + r)) for i in range(20)] + [str(r % 2)]) for r in range(6)]
    path.write_text("\n".join([header, *rows]) + "\n")
    samples = load_samples(path, [SENSOR])
    batch = next(samples.batches(10))["ppg"]
    assert batch.shape == (6, 1, 20) and batch[2, 0, 0] == 2.0
    assert samples.labels is not None and samples.labels.tolist() == [0, 1, 0, 1, 0, 1]


def test_csv_row_of_wrong_width_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text("\n".join([",".join(["1.0"] * 20), ",".join(["1.0"] * 19)]) + "\n")
    with pytest.raises(CalibrationDataError, match="line 2: 19 values"):
        load_samples(path, [SENSOR])


def test_image_folder_is_resized_normalized_and_labelled_by_subfolder(tmp_path: Path) -> None:
    for cls, value in (("cat", 0), ("dog", 255)):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (32, 20), (value, value, value)).save(tmp_path / "imgs" / cls / f"{i}.png")
    spec = InputSpec("img", (1, 3, 16, 16), np.dtype(np.float32), True)
    pre = ImagePreprocess.parse(["mean=0.5", "std=0.5"])
    samples = load_samples(tmp_path / "imgs", [spec], preprocess=pre)
    batch = next(samples.batches(8))["img"]
    assert batch.shape == (4, 3, 16, 16)
    assert np.allclose(batch[0], -1.0) and np.allclose(batch[3], 1.0)
    assert samples.labels is not None and samples.labels.tolist() == [0, 0, 1, 1]


def test_unreadable_image_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not a png")
    spec = InputSpec("img", (1, 16, 16, 3), np.dtype(np.float32), True)
    samples = load_samples(tmp_path / "imgs", [spec])
    with pytest.raises(CalibrationDataError, match="broken.png"):
        next(samples.batches(1))


def test_bad_preprocess_option_is_refused() -> None:
    with pytest.raises(CalibrationDataError, match="--preprocess"):
        ImagePreprocess.parse(["gamma=2"])


def test_fixed_batch_models_are_fed_one_sample_at_a_time() -> None:
    fixed = InputSpec("x", (1, 1, 8, 8), np.dtype(np.float32), batch_dynamic=False)
    assert feed_batch_size([fixed], 32) == 1
    assert feed_batch_size([SPEC], 32) == 32
