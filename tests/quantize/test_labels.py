"""Class names from a labels file or a model's metadata, in the forms converters write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from wedge.quantize.errors import LabelsError
from wedge.quantize.labels import model_labels, parse_labels, read_labels_file, resolve_class_names
from wedge.samples import SAMPLES


@pytest.mark.parametrize(("text", "names"), [
    ('["good", "motion artifact"]', ("good", "motion artifact")),
    ("{0: 'person', 1: 'bicycle', 10: 'fire hydrant', 2: 'car'}", ("person", "bicycle", "car", "fire hydrant")),
    ('{"1": "b", "0": "a"}', ("a", "b")),
    ("cat, dog", ("cat", "dog")),
    ("cat\ndog, brown\n", ("cat", "dog, brown")),
    ("", ()),
])
def test_metadata_values_in_every_common_form(text: str, names: tuple[str, ...]) -> None:
    assert parse_labels(text) == names


def test_a_labels_file_is_one_label_a_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("  no contact \n\nmotion artifact\n")
    assert read_labels_file(path) == ("no contact", "motion artifact")
    path.write_text("\n\n")
    with pytest.raises(LabelsError, match="holds no labels"):
        read_labels_file(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(LabelsError, match="not UTF-8"):
        read_labels_file(path)
    with pytest.raises(LabelsError, match="cannot read"):
        read_labels_file(tmp_path / "absent.txt")


def test_the_samples_carry_their_labels_in_the_model(tmp_path: Path) -> None:
    sample = SAMPLES["ppg_quality"]
    assert model_labels(sample.model_path) == sample.labels
    assert model_labels(tmp_path / "absent.onnx") == ()
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer")
    assert model_labels(garbage) == ()


def test_a_labels_file_wins_over_the_model_then_what_the_caller_knows(tmp_path: Path) -> None:
    sample = SAMPLES["ppg_quality"]
    path = tmp_path / "labels.txt"
    path.write_text("x\ny\nz\n")
    assert resolve_class_names(labels_file=path, model=sample.model_path).names == ("x", "y", "z")
    from_model = resolve_class_names(model=sample.model_path)
    assert from_model is not None and from_model.names == sample.labels and "metadata" in from_model.source
    known = resolve_class_names(model=tmp_path / "absent.onnx", known=("a", "b"), known_source="sample")
    assert known is not None and known.source == "sample" and known.name(5) == "5"
    assert resolve_class_names() is None
