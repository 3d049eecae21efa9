"""The C manifest reader (zcbor) and image walker against what `wedge pack` writes and the Python reader accepts,
including truncated and tampered manifests: C accepts only what Python accepts, and reads the same fields."""

from __future__ import annotations

import math
from typing import Any

import cbor2
import numpy as np
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from tests.device_c.core import Core
from wedge.firmware.errors import ImageError
from wedge.firmware.image.format import TLV_WEDGE_MANIFEST, parse_image
from wedge.firmware.image.manifest import Manifest

SLOT_BYTES = 64 * 1024


def manifest_of(image: bytes) -> bytes:
    return parse_image(image).protected_tlvs[TLV_WEDGE_MANIFEST]


def python_reads(data: bytes) -> Manifest | None:
    try:
        return Manifest.from_cbor(data)
    except ImageError:
        return None
    except (OverflowError, TypeError, ValueError):
        return None  # a value cbor2 decodes that the Python reader then trips over: refused either way


def f32(value: float) -> float:
    return float(np.float32(value))


def same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def assert_same_fields(c: dict[str, Any], py: Manifest) -> None:
    assert (c["model_name"], c["model_version"], c["board"], c["runtime"]) == (
        py.model_name, py.model_version, py.board, py.runtime)
    assert (c["image"], c["arena_bytes"], c["model_bytes"]) == (py.image, py.arena_bytes, py.model_bytes)
    assert (c["model_sha256"], c["signer_key"], c["n_labels"]) == (py.model_sha256, py.signer_key, len(py.labels))
    assert c["ops"] == (None if py.ops is None else list(py.ops))
    for side in ("inputs", "outputs"):
        ours, theirs = c[side], getattr(py, side)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert (a["name"], a["dtype"], tuple(a["shape"]), a["axis"]) == (b.name, b.dtype, b.shape, b.axis)
            assert (a["n_scales"], a["n_zero_points"]) == (len(b.scales), len(b.zero_points))
            assert all(same_float(x, f32(y)) for x, y in zip(a["scales"], b.scales, strict=False))
            assert a["zero_points"] == list(b.zero_points[: len(a["zero_points"])])


def check_agreement(core: Core, errors: dict[str, int], data: bytes) -> int:
    """C accepts only what Python accepts (reading the same fields); where Python accepts and C does not, the
    reason is one of the documented device limits. Returns C's code."""
    py = python_reads(data)
    rc, field, c = core.manifest_read(data)
    if rc == errors["WEDGE_OK"]:
        assert py is not None, f"C accepted a manifest Python refuses: {data.hex()}"
        assert_same_fields(c, py)
    elif py is not None:
        assert rc in (errors["WEDGE_ERR_UNSUPPORTED"], errors["WEDGE_ERR_RANGE"]), (rc, field, data.hex())
    if currently_in_test_context():
        event(f"c={rc} python={'ok' if py is not None else 'refused'}")
    return rc


def test_the_image_walker_finds_what_the_python_parser_finds(core: Core, packed_image: bytes) -> None:
    parts = parse_image(packed_image)
    rc, info = core.image_read(packed_image, SLOT_BYTES)
    assert rc == 0
    assert (info["header_bytes"], info["body_bytes"], info["protected_bytes"], info["total_bytes"]) == (
        parts.header_bytes, parts.body_bytes, parts.protected_tlv_bytes, parts.total_bytes)
    v = parts.version
    assert (info["version_major"], info["version_minor"], info["version_revision"], info["version_build"]) == (
        v.major, v.minor, v.revision, v.build)
    assert info["sha256"] == parts.tlvs[0x10]
    assert info["manifest"] == parts.protected_tlvs[TLV_WEDGE_MANIFEST]


def test_an_erased_slot_holds_no_image_and_a_cut_image_is_malformed(core: Core, errors: dict[str, int],
                                                                    packed_image: bytes) -> None:
    assert core.image_read(b"", SLOT_BYTES)[0] == errors["WEDGE_ERR_NOTFOUND"]
    # The slot ends inside the image: its areas no longer fit.
    for size in (40, len(packed_image) // 2, len(packed_image) - 1):
        assert core.image_read(packed_image, size)[0] == errors["WEDGE_ERR_MALFORMED"]


def test_c_reads_the_manifest_wedge_pack_wrote(core: Core, packed_image: bytes) -> None:
    data = manifest_of(packed_image)
    rc, field, c = core.manifest_read(data)
    assert (rc, field) == (0, "")
    assert_same_fields(c, Manifest.from_cbor(data))
    assert c["model_name"] == "kws-tiny" and c["ops"] == ["FULLY_CONNECTED"] and c["n_labels"] == 8


def test_a_format_1_manifest_has_no_ops_and_is_for_image_1(core: Core, packed_image: bytes) -> None:
    raw = cbor2.loads(manifest_of(packed_image))
    raw["format"] = 1
    raw["ops"] = "whatever: format 1 has no ops"
    raw["image"] = -3
    rc, _, c = core.manifest_read(cbor2.dumps(raw, canonical=True))
    assert rc == 0 and c["ops"] is None and c["image"] == 1


def test_every_truncation_is_refused(core: Core, errors: dict[str, int], packed_image: bytes) -> None:
    data = manifest_of(packed_image)
    for size in range(len(data)):
        rc = check_agreement(core, errors, data[:size])
        assert rc in (errors["WEDGE_ERR_MALFORMED"], errors["WEDGE_ERR_VERSION"]), size


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from("xid")),
                      min_size=1, max_size=4))
def test_tampered_bytes_are_refused_or_read_as_python_reads_them(core: Core, errors: dict[str, int],
                                                                 packed_image: bytes,
                                                                 edits: list[tuple[int, int, str]]) -> None:
    data = bytearray(manifest_of(packed_image))
    for where, byte, how in edits:
        at = where % (len(data) + 1)
        if how == "x" and at < len(data):
            data[at] ^= byte or 1
        elif how == "i":
            data.insert(at, byte)
        elif at < len(data):
            del data[at]
    check_agreement(core, errors, bytes(data))


leaf = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, width=64)
        | st.text(max_size=8) | st.binary(max_size=40)
        | st.builds(cbor2.CBORTag, st.sampled_from([0, 2, 32, 55799]), st.text(max_size=4)))
values = st.recursive(leaf, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6) | st.integers(0, 3), inner, max_size=4), max_leaves=12)
TOP_FIELDS = ["format", "image", "model_name", "model_version", "board", "runtime", "inputs", "outputs", "labels",
              "arena_bytes", "model_bytes", "model_sha256", "signer_key", "ops", "extra"]
TENSOR_FIELDS = ["name", "shape", "dtype", "scales", "zero_points", "axis", "extra"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(TOP_FIELDS), tensor_field=st.sampled_from(TENSOR_FIELDS), value=values,
       where=st.sampled_from(["top", "tensor", "drop", "element"]), canonical=st.booleans())
def test_fields_of_any_type_are_refused_or_read_as_python_reads_them(core: Core, errors: dict[str, int],
                                                                     packed_image: bytes, field: str,
                                                                     tensor_field: str, value: object, where: str,
                                                                     canonical: bool) -> None:
    raw = cbor2.loads(manifest_of(packed_image))
    if where == "top":
        raw[field] = value
    elif where == "drop":
        raw.pop(field, None)
    elif where == "tensor":
        raw["inputs"][0][tensor_field] = value
    elif isinstance(raw["outputs"][0].get(tensor_field), list) and raw["outputs"][0][tensor_field]:
        raw["outputs"][0][tensor_field][0] = value
    else:
        raw["labels"][0] = value
    try:
        data = cbor2.dumps(raw, canonical=canonical)
    except (cbor2.CBOREncodeError, TypeError, ValueError):
        return
    check_agreement(core, errors, data)


def test_what_the_device_refuses_that_python_takes(core: Core, errors: dict[str, int], packed_image: bytes) -> None:
    raw = cbor2.loads(manifest_of(packed_image))

    def rc_of(changed: dict[str, Any] | bytes, python_takes: bool = True) -> int:
        data = changed if isinstance(changed, bytes) else cbor2.dumps(changed, canonical=True)
        assert (python_reads(data) is not None) == python_takes
        return core.manifest_read(data)[0]

    unsupported = errors["WEDGE_ERR_UNSUPPORTED"]
    # Refused on both sides: what no valid manifest holds.
    assert rc_of({**raw, "model_sha256": raw["model_sha256"][:31]}, python_takes=False) == unsupported
    assert rc_of({**raw, "arena_bytes": -1}, python_takes=False) == unsupported
    assert rc_of({**raw, "format": 2.0}, python_takes=False) == unsupported
    tensors = [{**raw["inputs"][0], "scales": [True]}]
    assert rc_of({**raw, "inputs": tensors}, python_takes=False) == unsupported
    # Refused by the device only: sizes past its 32-bit fields, encodings its decoder does not take.
    assert rc_of({**raw, "model_bytes": 2**40}) == unsupported
    assert rc_of({**raw, "arena_bytes": 2**70}) == unsupported  # a bignum (tag 2)
    assert rc_of({**raw, 7: "an integer key"}) == unsupported
    assert rc_of(cbor2.dumps(raw, canonical=True) + b"\x00") == unsupported  # bytes after the map
    too_many = errors["WEDGE_ERR_RANGE"]
    assert rc_of({**raw, "ops": [f"OP_{i}" for i in range(33)]}) == too_many
    assert rc_of({**raw, "inputs": [{**raw["inputs"][0], "shape": [1] * 7}]}) == too_many
    assert rc_of({**raw, "outputs": raw["outputs"] * 5}) == too_many


@pytest.mark.parametrize("value", [b"\xff\xfe", b"a\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"])
def test_text_that_is_not_utf8_is_refused(core: Core, errors: dict[str, int], packed_image: bytes,
                                          value: bytes) -> None:
    data = manifest_of(packed_image)
    name = cbor2.dumps("kws-tiny")
    bad = bytes([0x60 | len(value)]) + value
    tampered = data.replace(name, bad)
    assert check_agreement(core, errors, tampered) == errors["WEDGE_ERR_MALFORMED"]


def test_deep_nesting_is_refused_without_recursing_into_it(core: Core, errors: dict[str, int],
                                                           packed_image: bytes) -> None:
    data = manifest_of(packed_image)
    deep = b"\x81" * 5000 + b"\x00"
    # An unknown key holding 5000 nested lists: walked up to the depth limit, then refused.
    head, body = data[0], data[1:]
    tampered = bytes([head + 1]) + body + cbor2.dumps("zz") + deep
    assert core.manifest_read(tampered)[0] == errors["WEDGE_ERR_UNSUPPORTED"]
