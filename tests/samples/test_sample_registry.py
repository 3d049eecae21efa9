"""The sample registry: names map to shipped files, unknown names fail with the list of known ones."""

from __future__ import annotations

import pytest

from wedge.errors import WedgeError
from wedge.samples import SAMPLES, SampleError, get_sample, sample_path


def test_sample_path_points_at_the_shipped_onnx_file() -> None:
    path = sample_path("digits")
    assert path.name == "digits.onnx"
    assert path.is_file()


def test_every_registered_sample_is_a_classifier_with_labels() -> None:
    assert set(SAMPLES) == {"digits", "ppg_quality"}
    for name, sample in SAMPLES.items():
        assert sample.name == name
        assert sample.task == "classification"
        assert len(sample.labels) >= 2


def test_unknown_sample_name_raises_sample_error_listing_the_known_ones() -> None:
    with pytest.raises(SampleError) as caught:
        sample_path("mnist")
    message = str(caught.value)
    assert "'mnist'" in message
    assert "digits" in message and "ppg_quality" in message
    assert "\n" not in message


def test_sample_error_is_a_wedge_error_so_the_cli_prints_one_line() -> None:
    with pytest.raises(WedgeError):
        get_sample("")


def test_registry_cannot_be_modified_by_callers() -> None:
    with pytest.raises(TypeError):
        SAMPLES["mine"] = SAMPLES["digits"]  # type: ignore[index]
