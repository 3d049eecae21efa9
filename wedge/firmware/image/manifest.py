"""The wedge manifest carried in a signed image: which model, for which board and runtime, and its interface.

Encoded as a CBOR map in a protected TLV; decoding validates every field, so a device can trust what it reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from wedge.firmware.errors import ImageError
from wedge.runtime.types import TensorSpec

MANIFEST_FORMAT: Final[int] = 2
DIGEST_BYTES: Final[int] = 32
FLOAT32_MAX: Final[float] = 3.4028234663852886e38
# Format 1 had no `ops` and no `image`: such a model is image 1 and its ops are unknown.
READABLE_FORMATS: Final[frozenset[int]] = frozenset({1, 2})
# The MCUboot image a model goes to unless packed for another (image 0 is the application).
MODEL_IMAGE: Final[int] = 1


@dataclass(frozen=True)
class TensorManifest:
    """One model input or output as the device sees it: shape, dtype and affine quantization."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int

    @staticmethod
    def from_spec(spec: TensorSpec) -> TensorManifest:
        quant = spec.quant
        return TensorManifest(
            name=spec.name,
            # A TFLite dimension is always an integer; -1 marks a dynamic one.
            shape=tuple(d if isinstance(d, int) else -1 for d in spec.shape),
            dtype=str(spec.dtype),
            scales=quant.scales if quant else (),
            zero_points=quant.zero_points if quant else (),
            axis=quant.axis if quant else 0,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "scales": list(self.scales),
            "zero_points": list(self.zero_points),
            "axis": self.axis,
        }


@dataclass(frozen=True)
class Manifest:
    """What an image holds; `signer_key` is the raw ed25519 public key that signed it (its hash is the KEYHASH TLV)."""

    model_name: str
    model_version: str
    board: str
    runtime: str
    inputs: tuple[TensorManifest, ...]
    outputs: tuple[TensorManifest, ...]
    labels: tuple[str, ...]
    arena_bytes: int
    model_bytes: int
    model_sha256: bytes
    signer_key: bytes
    ops: tuple[str, ...] | None = None      # the operators the model needs (None: a format-1 manifest)
    image: int = MODEL_IMAGE                # the MCUboot image it is packed for
    unit: str | None = None                 # a regression output's unit (classifiers name `labels` instead)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (bytes as hex)."""
        return {
            "format": MANIFEST_FORMAT,
            "image": self.image,
            "ops": None if self.ops is None else list(self.ops),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "board": self.board,
            "runtime": self.runtime,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "labels": list(self.labels),
            "unit": self.unit,
            "arena_bytes": self.arena_bytes,
            "model_bytes": self.model_bytes,
            "model_sha256": self.model_sha256.hex(),
            "signer_key": self.signer_key.hex(),
        }

    def to_cbor(self) -> bytes:
        data = {key: value for key, value in self.to_dict().items() if value is not None}
        data["model_sha256"] = self.model_sha256
        data["signer_key"] = self.signer_key
        return cbor2.dumps(data, canonical=True)

    @staticmethod
    def from_cbor(data: bytes) -> Manifest:
        """Decode and validate; ImageError names the first bad field."""
        try:
            raw = cbor2.loads(data)
        except (cbor2.CBORDecodeError, ValueError) as exc:
            raise ImageError(f"the image manifest is not valid CBOR: {exc}") from exc
        if not isinstance(raw, dict):
            raise ImageError("the image manifest is not a CBOR map")
        version = raw.get("format")
        if type(version) is not int or version not in READABLE_FORMATS:  # 1.0 and True are not formats
            raise ImageError(f"unknown image manifest format {version!r} (this wedge reads "
                             f"{', '.join(map(str, sorted(READABLE_FORMATS)))})")
        image = _field(raw, "image", int) if version >= 2 else MODEL_IMAGE
        if not 0 <= image <= 15:
            raise ImageError(f"the image manifest names MCUboot image {image}, not 0..15")
        for key in ("model_sha256", "signer_key"):  # a SHA-256 digest; a raw ed25519 public key
            if len(_field(raw, key, bytes)) != DIGEST_BYTES:
                raise ImageError(f"the image manifest's {key!r} is {len(raw[key])} bytes, not {DIGEST_BYTES}")
        for key in ("arena_bytes", "model_bytes"):
            if _field(raw, key, int) < 0:
                raise ImageError(f"the image manifest's {key!r} is negative ({raw[key]})")
        return Manifest(
            model_name=_field(raw, "model_name", str),
            model_version=_field(raw, "model_version", str),
            board=_field(raw, "board", str),
            runtime=_field(raw, "runtime", str),
            inputs=_tensors(raw, "inputs"),
            outputs=_tensors(raw, "outputs"),
            labels=tuple(_strings(raw, "labels")),
            arena_bytes=_field(raw, "arena_bytes", int),
            model_bytes=_field(raw, "model_bytes", int),
            model_sha256=_field(raw, "model_sha256", bytes),
            signer_key=_field(raw, "signer_key", bytes),
            ops=tuple(_strings(raw, "ops")) if version >= 2 else None,
            image=image,
            unit=_optional_text(raw, "unit"),
        )


def _optional_text(raw: Mapping[str, Any], key: str) -> str | None:
    """An optional string field (absent from manifests packed before it existed)."""
    return None if raw.get(key) is None else _field(raw, key, str)


def checked_field(raw: Mapping[str, Any], key: str, kind: type, what: str = "image manifest") -> Any:
    """raw[key] if it is a `kind`; ImageError naming the field otherwise."""
    value = raw.get(key)
    # bool is an int in Python; a manifest never means a flag where it says a count.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ImageError(f"the {what} has no valid {key!r}")
    return value


def checked_strings(raw: Mapping[str, Any], key: str, what: str = "image manifest") -> list[str]:
    values = checked_field(raw, key, list, what)
    if not all(isinstance(v, str) for v in values):
        raise ImageError(f"the {what}'s {key!r} must be strings")
    return values


_field = checked_field
_strings = checked_strings


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(float(value)) and abs(float(value)) <= FLOAT32_MAX
    except OverflowError:
        return False


def _tensors(raw: Mapping[str, Any], key: str) -> tuple[TensorManifest, ...]:
    tensors = []
    for item in _field(raw, key, list):
        if not isinstance(item, dict):
            raise ImageError(f"the image manifest's {key!r} holds a non-map entry")
        shape = _field(item, "shape", list)
        scales = _field(item, "scales", list)
        zero_points = _field(item, "zero_points", list)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape + zero_points) or not all(
            isinstance(s, (int, float)) and not isinstance(s, bool) for s in scales
        ):
            raise ImageError(f"the image manifest's {key!r} has a malformed tensor")
        if any(d < -1 for d in shape) or not all(_finite(s) for s in scales):
            # -1 marks a dynamic dimension; a scale is a finite float32 (an integer too big for one is not).
            raise ImageError(f"the image manifest's {key!r} has a tensor with a negative dimension or a non-finite scale")
        tensors.append(TensorManifest(
            name=_field(item, "name", str),
            shape=tuple(shape),
            dtype=_field(item, "dtype", str),
            scales=tuple(float(s) for s in scales),
            zero_points=tuple(zero_points),
            axis=_field(item, "axis", int),
        ))
    return tuple(tensors)
