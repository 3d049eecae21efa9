"""QuantParams: the affine mapping users apply to feed int8 models and read their outputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wedge.runtime.engines import EngineError, QuantParams


def test_per_tensor_quantize_rounds_shifts_and_saturates_to_int8() -> None:
    q = QuantParams(scales=(0.5,), zero_points=(-10,), axis=0)
    out = q.quantize(np.array([0.0, 1.0, 1.2, -1000.0, 1000.0]), np.int8)
    assert out.dtype == np.int8
    assert out.tolist() == [-10, -8, -8, -128, 127]


def test_per_axis_parameters_apply_along_their_axis() -> None:
    q = QuantParams(scales=(1.0, 0.1), zero_points=(0, 5), axis=1)
    x = np.array([[2.0, 0.2], [-3.0, -0.3]], dtype=np.float32)
    out = q.quantize(x, np.int8)
    assert out.tolist() == [[2, 7], [-3, 2]]
    np.testing.assert_allclose(q.dequantize(out), x, rtol=1e-6)


def test_dequantize_returns_float32_reals() -> None:
    q = QuantParams(scales=(0.25,), zero_points=(3,), axis=0)
    out = q.dequantize(np.array([3, 7, -1], dtype=np.int8))
    assert out.dtype == np.float32
    assert out.tolist() == [0.0, 1.0, -1.0]


def test_quantizing_to_a_float_dtype_is_refused() -> None:
    with pytest.raises(EngineError, match="integer dtype"):
        QuantParams(scales=(1.0,), zero_points=(0,)).quantize(np.zeros(2), np.float32)


def test_mismatched_scale_and_zero_point_counts_are_refused() -> None:
    with pytest.raises(EngineError, match="2 scales but 1 zero points"):
        QuantParams(scales=(1.0, 2.0), zero_points=(0,), axis=0)


def test_per_axis_on_a_missing_axis_is_refused() -> None:
    q = QuantParams(scales=(1.0, 2.0), zero_points=(0, 0), axis=3)
    with pytest.raises(EngineError, match="axis 3"):
        q.quantize(np.zeros((2, 2)), np.int8)


@given(
    scale=st.floats(min_value=1e-4, max_value=10.0),
    zero_point=st.integers(min_value=-128, max_value=127),
    values=st.lists(st.integers(min_value=-128, max_value=127), min_size=1, max_size=16),
)
def test_dequantize_then_quantize_returns_the_same_integers(scale: float, zero_point: int, values: list[int]) -> None:
    q = QuantParams(scales=(scale,), zero_points=(zero_point,), axis=0)
    ints = np.array(values, dtype=np.int8)
    assert q.quantize(q.dequantize(ints), np.int8).tolist() == values
