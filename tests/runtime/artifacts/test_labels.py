"""Labels carried inside model files: wedge's own key, the keys other exporters write, and what is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.quantize.conftest import build_tiny_cnn
from wedge.runtime.artifacts.labels import (
    ModelLabels,
    parse_labels,
    read_labels_file,
    read_model_labels,
    set_onnx_labels,
    tflite_labels,
)
from wedge.runtime.types import ArtifactError


@pytest.mark.parametrize("text, expected", [
    ('["cat", "dog"]', ("cat", "dog")),
    ("{0: 'person', 1: 'bicycle', 2: 'car'}", ("person", "bicycle", "car")),  # Ultralytics' `names`
    ('{"1": "dog", "0": "cat"}', ("cat", "dog")),  # id2label, keys as strings, any order
    ("cat, dog , bird", ("cat", "dog", "bird")),
    ("cat\ndog\n", ("cat", "dog")),
    ("{0: 'a', 2: 'c'}", ("a", "c")),  # a map with a hole keeps its order (the class check then says more)
])
def test_the_usual_ways_of_writing_class_names_are_read(text: str, expected: tuple[str, ...]) -> None:
    assert parse_labels(text) == expected


def test_onnx_metadata_round_trips_and_foreign_keys_are_read(tmp_path: Path) -> None:
    path = build_tiny_cnn(tmp_path / "m.onnx")
    assert read_model_labels(path) is None
    model = onnx.load(str(path))
    model.metadata_props.add(key="names", value="{0: 'a', 1: 'b', 2: 'c'}")
    onnx.save(model, str(path))
    assert read_model_labels(path) == ModelLabels(("a", "b", "c"))
    set_onnx_labels(model, ModelLabels(("x", "y", "z"), None))
    set_onnx_labels(model, ModelLabels((), "bpm"))  # set twice: one entry, the last
    onnx.save(model, str(path))
    assert read_model_labels(path) == ModelLabels((), "bpm")  # wedge's key wins over `names`
    assert [p.key for p in onnx.load(str(path)).metadata_props].count("wedge.labels") == 1


def test_a_labels_file_is_one_per_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("good\n\nmotion artifact\nno contact\n")
    assert read_labels_file(tmp_path / "a.txt") == ("good", "motion artifact", "no contact")
    with pytest.raises(ArtifactError, match="cannot read"):
        read_labels_file(tmp_path / "missing.txt")


def test_labels_are_checked_against_the_classes() -> None:
    ModelLabels(("a", "b", "c")).check_classes(3, "m")
    ModelLabels(()).check_classes(10, "m")
    with pytest.raises(ArtifactError, match="2 labels for m, whose first output has 3 classes"):
        ModelLabels(("a", "b")).check_classes(3, "m")
    with pytest.raises(ArtifactError, match="one line"):
        ModelLabels(("a\nb",))


def test_a_tflite_carries_wedge_s_entry_and_other_tools_keys() -> None:
    from wedge.quantize.tflite.writer import TfliteWriter

    def model(metadata: dict[str, bytes]) -> bytes:
        writer = TfliteWriter()
        index = writer.add_tensor("x", (1, 4), np.float32)
        writer.inputs.append(index)
        writer.outputs.append(index)
        return writer.to_bytes("labels test", metadata)

    assert tflite_labels(model({})) is None
    assert tflite_labels(model({"wedge.labels": ModelLabels((), "bpm").to_json().encode()})) == ModelLabels((), "bpm")
    assert tflite_labels(model({"labels": b'["a", "b"]'})) == ModelLabels(("a", "b"))
    assert tflite_labels(b"not a flatbuffer") is None
