"""Signed MCUboot-format model images: build with imgtool, read back, verify hash and ed25519 signature.

`build_image` / `write_image` pack a .tflite model; `read_image_file` / `check_image` read and verify one.
"""

from __future__ import annotations

from wedge.firmware.image.build import PackResult, build_image, write_image
from wedge.firmware.image.format import ImageParts, ImageVersion, parse_image
from wedge.firmware.image.keys import KeyPair, generate_keys, load_public_key, load_signing_key, public_key_hash
from wedge.firmware.image.manifest import Manifest, TensorManifest
from wedge.firmware.image.model_image import (
    Dependency,
    ImageCheck,
    ModelImage,
    SignedImage,
    check_image,
    read_any_image_file,
    read_image_file,
    read_model_image,
    read_signed_image,
    require_trusted,
)

__all__ = [
    "Dependency",
    "SignedImage",
    "read_any_image_file",
    "read_signed_image",
    "ImageCheck",
    "ImageParts",
    "ImageVersion",
    "KeyPair",
    "Manifest",
    "ModelImage",
    "PackResult",
    "TensorManifest",
    "build_image",
    "check_image",
    "generate_keys",
    "load_public_key",
    "load_signing_key",
    "parse_image",
    "public_key_hash",
    "read_image_file",
    "read_model_image",
    "require_trusted",
    "write_image",
]
