"""A signed model image read back: its parts, manifest, hashes, and the checks a host or a bootloader makes.

`read_model_image` fails only on structure; `check_image` reports hash, signature and key findings, and
`require_trusted` turns the first failed check into an ImageError.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from wedge.firmware.errors import ImageError, SigningKeyError
from wedge.firmware.image.format import (
    TLV_ED25519,
    TLV_KEYHASH,
    TLV_SHA256,
    TLV_WEDGE_MANIFEST,
    ImageParts,
    ImageVersion,
    parse_image,
)
from wedge.firmware.image.keys import public_key_from_raw, public_key_hash
from wedge.firmware.image.manifest import Manifest


@dataclass(frozen=True)
class ModelImage:
    """A wedge image: the bytes, their MCUboot parts and the manifest. `image_hash` is the SHA-256 TLV."""

    data: bytes
    parts: ImageParts
    manifest: Manifest

    @property
    def version(self) -> ImageVersion:
        return self.parts.version

    @property
    def size_bytes(self) -> int:
        return self.parts.total_bytes

    @property
    def image_hash(self) -> bytes:
        """The SHA-256 the image claims for header + body + protected TLVs (what SMP image states report)."""
        return self.parts.tlvs.get(TLV_SHA256, b"")

    @property
    def key_hash(self) -> bytes:
        return self.parts.tlvs.get(TLV_KEYHASH, b"")

    @property
    def upload_sha256(self) -> bytes:
        """SHA-256 of the whole file: what an SMP upload names its data by (to resume and to check it)."""
        return hashlib.sha256(self.data).digest()


@dataclass(frozen=True)
class ImageCheck:
    """What holds for an image: hash, signature by its own signer key, and trust in a given key (None: not asked)."""

    hash_ok: bool
    signature_ok: bool
    signer_key_hash: bytes
    trusted: bool | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "hash_ok": self.hash_ok,
            "signature_ok": self.signature_ok,
            "signer_key_hash": self.signer_key_hash.hex(),
            "trusted": self.trusted,
            "problems": list(self.problems),
        }


def read_model_image(data: bytes, name: str = "image", *, exact: bool = True) -> ModelImage:
    """Parse a wedge image (ImageError if it is not one); nothing is verified yet."""
    parts = parse_image(data, name, exact=exact)
    manifest_bytes = parts.protected_tlvs.get(TLV_WEDGE_MANIFEST)
    if manifest_bytes is None:
        raise ImageError(f"{name} is an MCUboot image without a wedge manifest: build it with `wedge pack`")
    return ModelImage(data=bytes(data[: parts.total_bytes]), parts=parts, manifest=Manifest.from_cbor(manifest_bytes))


def read_image_file(path: str | Path) -> ModelImage:
    """Read and parse the image file at `path`."""
    image_path = Path(path)
    if not image_path.is_file():
        raise ImageError(f"image file not found: {image_path}")
    try:
        data = image_path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {image_path}: {exc.strerror or exc}") from exc
    return read_model_image(data, image_path.name)


def _verifies(key: Ed25519PublicKey, signature: bytes, digest: bytes) -> bool:
    try:
        key.verify(signature, digest)
    except InvalidSignature:
        return False
    return True


def check_image(image: ModelImage, trusted_key: Ed25519PublicKey | None = None) -> ImageCheck:
    """Recompute the SHA-256 and check the ed25519 signature (MCUboot signs the digest), optionally by `trusted_key`."""
    parts = image.parts
    problems: list[str] = []
    digest = hashlib.sha256(image.data[: parts.hashed_bytes]).digest()
    claimed = parts.tlvs.get(TLV_SHA256)
    hash_ok = claimed == digest
    if claimed is None:
        problems.append("it has no SHA-256 TLV")
    elif not hash_ok:
        problems.append("its SHA-256 does not match its contents (the image was modified after signing)")
    signature = parts.tlvs.get(TLV_ED25519)
    try:
        signer = public_key_from_raw(image.manifest.signer_key)
    except (SigningKeyError, ValueError):
        signer = None
    signer_hash = public_key_hash(signer) if signer is not None else b""
    signature_ok = False
    if signature is None:
        problems.append("it is not signed (no ED25519 TLV)")
    elif signer is None:
        problems.append("its manifest holds no valid signer key")
    else:
        signature_ok = _verifies(signer, signature, digest)
        if not signature_ok:
            problems.append("its ed25519 signature does not verify")
        if parts.tlvs.get(TLV_KEYHASH) != signer_hash:
            signature_ok = False
            problems.append("its KEYHASH TLV does not name the key in its manifest")
    trusted: bool | None = None
    if trusted_key is not None:
        trusted = signature is not None and _verifies(trusted_key, signature, digest)
        if not trusted:
            problems.append(
                f"it is not signed by the trusted key {public_key_hash(trusted_key).hex()[:16]} "
                f"(signed by {image.key_hash.hex()[:16] or 'nobody'})"
            )
    return ImageCheck(hash_ok, signature_ok, signer_hash, trusted, tuple(problems))


def require_trusted(image: ModelImage, name: str, trusted_key: Ed25519PublicKey | None = None) -> ImageCheck:
    """check_image, raising ImageError with the first problem."""
    result = check_image(image, trusted_key)
    if result.problems:
        raise ImageError(f"{name} cannot be trusted: {result.problems[0]}")
    return result
