"""A signed image read back (a model with its manifest, or an application firmware with its descriptor): its
parts, hashes, dependencies, and the checks a host or a bootloader makes.

`read_model_image` / `read_signed_image` fail only on structure; `check_image` reports hash, signature and key
findings, and `require_trusted` turns the first failed check into an ImageError.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from wedge.firmware.errors import ImageError, SigningKeyError
from wedge.firmware.image.format import (
    TLV_DEPENDENCY,
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

# imgtool's DEPENDENCY TLV payload (image.py, Image.create): image id, 3 pad bytes, then major, minor, revision,
# build as MCUboot's struct image_version (bootutil/image.h, struct image_dependency).
_DEPENDENCY: Final = struct.Struct("<B3xBBHI")


@dataclass(frozen=True)
class Dependency:
    """An MCUboot image dependency: `image` must run at least `minimum` for this image to be swapped in."""

    image: int
    minimum: ImageVersion

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "minimum": str(self.minimum)}


def dependencies_of(parts: ImageParts) -> tuple[Dependency, ...]:
    raw = parts.protected_tlvs.get(TLV_DEPENDENCY)
    if raw is None:
        return ()
    if len(raw) % _DEPENDENCY.size:
        raise ImageError(f"a DEPENDENCY TLV of {len(raw)} bytes is not {_DEPENDENCY.size}")
    found = []
    for offset in range(0, len(raw), _DEPENDENCY.size):
        image, major, minor, revision, build = _DEPENDENCY.unpack_from(raw, offset)
        found.append(Dependency(image, ImageVersion(major, minor, revision, build)))
    return tuple(found)


@dataclass(frozen=True)
class SignedImage:
    """An MCUboot image signed by wedge: the bytes and their parts. `image_hash` is the SHA-256 TLV."""

    data: bytes
    parts: ImageParts

    @property
    def signer_key(self) -> bytes:
        raise NotImplementedError

    @property
    def image_number(self) -> int:
        """The MCUboot image (0 the application, 1 the model) this image is for."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        raise NotImplementedError

    @property
    def dependencies(self) -> tuple[Dependency, ...]:
        return dependencies_of(self.parts)

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
class ModelImage(SignedImage):
    """A model image: the bytes, their MCUboot parts and the manifest."""

    manifest: Manifest

    @property
    def signer_key(self) -> bytes:
        return self.manifest.signer_key

    @property
    def image_number(self) -> int:
        return self.manifest.image

    @property
    def label(self) -> str:
        return f"{self.manifest.model_name} {self.manifest.model_version}"


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


def read_signed_image(data: bytes, name: str = "image", *, exact: bool = True) -> SignedImage:
    """A model image (it has a wedge manifest) or an application firmware image (it has a firmware descriptor)."""
    from wedge.firmware.image.firmware_image import firmware_from_parts

    parts = parse_image(data, name, exact=exact)
    firmware = firmware_from_parts(data, parts)
    if firmware is not None:
        return firmware
    return read_model_image(data, name, exact=exact)


def read_any_image_file(path: str | Path) -> SignedImage:
    """Read the image file at `path`: a model or a firmware image."""
    image_path = Path(path)
    return read_signed_image(_read(image_path), image_path.name)


def _read(image_path: Path) -> bytes:
    if not image_path.is_file():
        raise ImageError(f"image file not found: {image_path}")
    try:
        return image_path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {image_path}: {exc.strerror or exc}") from exc


def read_image_file(path: str | Path) -> ModelImage:
    """Read and parse the image file at `path`."""
    image_path = Path(path)
    return read_model_image(_read(image_path), image_path.name)


def _verifies(key: Ed25519PublicKey, signature: bytes, digest: bytes) -> bool:
    try:
        key.verify(signature, digest)
    except InvalidSignature:
        return False
    return True


def check_image(image: SignedImage, trusted_key: Ed25519PublicKey | None = None) -> ImageCheck:
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
        signer = public_key_from_raw(image.signer_key)
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


def require_trusted(image: SignedImage, name: str, trusted_key: Ed25519PublicKey | None = None) -> ImageCheck:
    """check_image, raising ImageError with the first problem."""
    result = check_image(image, trusted_key)
    if result.problems:
        raise ImageError(f"{name} cannot be trusted: {result.problems[0]}")
    return result
