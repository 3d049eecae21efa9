"""Signed images: what `pack` builds reads back verified, and every kind of damage or misfit is caught by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.firmware.firmware_models import RING, pack, write_model
from wedge.boards import load as load_board
from wedge.firmware.errors import ImageError, SigningKeyError
from wedge.firmware.image.build import build_image
from wedge.firmware.image.format import IMAGE_MAGIC, TLV_ED25519, TLV_KEYHASH, TLV_SHA256, TLV_WEDGE_MANIFEST
from wedge.firmware.image.keys import generate_keys, load_public_key, load_signing_key, public_key_hash
from wedge.firmware.image.manifest import Manifest
from wedge.firmware.image.model_image import check_image, read_image_file, read_model_image, require_trusted
from wedge.samples.tiny_tflite import int8_fc_model


def test_a_packed_image_is_mcuboot_with_hash_signature_and_manifest(tiny_model: Path, keys) -> None:
    image = pack(tiny_model, keys, "1.2.3+4")
    assert int.from_bytes(image.data[:4], "little") == IMAGE_MAGIC
    assert {TLV_SHA256, TLV_KEYHASH, TLV_ED25519} <= set(image.parts.tlvs)
    assert TLV_WEDGE_MANIFEST in image.parts.protected_tlvs  # inside what the signature covers
    assert str(image.version) == "1.2.3+4"
    assert image.parts.body == tiny_model.read_bytes()
    manifest = image.manifest
    assert (manifest.board, manifest.runtime, manifest.model_version) == (RING, "tflm", "1.2.3+4")
    assert manifest.inputs[0].shape == (1, 64) and manifest.inputs[0].dtype == "int8"
    assert manifest.inputs[0].scales == pytest.approx((0.05,)) and manifest.outputs[0].zero_points == (-5,)
    check = check_image(image, load_public_key(keys.public_path))
    assert check.ok and check.hash_ok and check.signature_ok and check.trusted
    assert image.key_hash == public_key_hash(load_public_key(keys.public_path))


def test_the_manifest_round_trips_through_cbor(tiny_model: Path, keys) -> None:
    manifest = pack(tiny_model, keys, "1.0.0").manifest
    assert Manifest.from_cbor(manifest.to_cbor()) == manifest


@pytest.mark.parametrize("where", ["header", "model", "manifest"])
def test_any_modified_byte_breaks_the_hash(tiny_model: Path, keys, where: str) -> None:
    image = pack(tiny_model, keys, "1.0.0")
    offset = {"header": 20, "model": 100, "manifest": image.parts.hashed_bytes - 10}[where]
    data = bytearray(image.data)
    data[offset] ^= 0x01
    try:
        check = check_image(read_model_image(bytes(data)))
    except ImageError:
        return  # a damaged manifest or header may not even parse: also refused
    assert not check.hash_ok and "modified after signing" in check.problems[0]


def test_an_image_from_another_key_is_not_trusted(tiny_model: Path, keys, other_keys) -> None:
    image = pack(tiny_model, other_keys, "1.0.0")
    with pytest.raises(ImageError, match="not signed by the trusted key"):
        require_trusted(image, "model.img", load_public_key(keys.public_path))


def test_over_slot_and_over_arena_models_are_refused_unless_asked(tmp_path: Path, keys) -> None:
    big = write_model(tmp_path, "big.tflite", int8_fc_model(features=2048, units=160))  # 320 KiB of weights
    with pytest.raises(ImageError, match="model slot holds 262,144"):
        pack(big, keys, "1.0.0")
    image = pack(big, keys, "1.0.0", check_fit=False)
    assert image.size_bytes > load_board(RING).budgets.model_slot_bytes
    small = write_model(tmp_path, "small.tflite", int8_fc_model())
    with pytest.raises(ImageError, match="bytes of TFLM arena"):
        pack(small, keys, "1.0.0", arena_bytes=10_000_000)


def test_bad_versions_keys_and_inputs_get_one_line_errors(tmp_path: Path, tiny_model: Path, keys) -> None:
    ring = load_board(RING)
    with pytest.raises(ImageError, match="MAJOR.MINOR.REVISION"):
        build_image(tiny_model, ring, keys.private_path, "v1", arena_bytes=4096)
    with pytest.raises(SigningKeyError, match="public key"):
        build_image(tiny_model, ring, keys.public_path, "1.0.0", arena_bytes=4096)
    with pytest.raises(SigningKeyError, match="not found"):
        build_image(tiny_model, ring, tmp_path / "nope.pem", "1.0.0", arena_bytes=4096)
    with pytest.raises(ImageError, match=".tflite model"):
        build_image(tmp_path / "model.onnx", ring, keys.private_path, "1.0.0", arena_bytes=4096)
    with pytest.raises(ImageError, match="runs onnxruntime"):
        build_image(tiny_model, load_board("glasses-soc"), keys.private_path, "1.0.0", arena_bytes=4096)
    (tmp_path / "junk.img").write_bytes(b"\x00" * 100)
    with pytest.raises(ImageError, match="not a valid MCUboot image"):
        read_image_file(tmp_path / "junk.img")


def test_keys_are_never_overwritten(tmp_path: Path) -> None:
    pair = generate_keys(tmp_path)
    with pytest.raises(SigningKeyError, match="refusing to overwrite"):
        generate_keys(tmp_path)
    assert load_signing_key(pair.private_path) is not None
    assert (pair.private_path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize(("change", "message"), [
    ({"format": 2.0}, "unknown image manifest format"),
    ({"model_sha256": bytes(31)}, "'model_sha256' is 31 bytes, not 32"),
    ({"signer_key": bytes(40)}, "'signer_key' is 40 bytes, not 32"),
    ({"arena_bytes": -1}, "'arena_bytes' is negative"),
    ({"model_bytes": -5}, "'model_bytes' is negative"),
    ({"inputs": [{"name": "x", "shape": [1, -7], "dtype": "int8", "scales": [0.1], "zero_points": [0], "axis": 0}]},
     "negative dimension or a non-finite scale"),
    ({"inputs": [{"name": "x", "shape": [1, 4], "dtype": "int8", "scales": [10**400], "zero_points": [0], "axis": 0}]},
     "non-finite scale"),
])
def test_a_manifest_with_impossible_values_is_refused_in_one_line(tiny_model: Path, keys, change: dict,
                                                                  message: str) -> None:
    import cbor2

    manifest = pack(tiny_model, keys, "1.0.0").manifest
    raw = {**cbor2.loads(manifest.to_cbor()), **change}
    with pytest.raises(ImageError, match=message):
        Manifest.from_cbor(cbor2.dumps(raw))
