"""ed25519 signing keys for images: generate a pair, load the private half to sign, the public half to verify.

Files are PEM as imgtool writes them; a key's hash (SHA-256 of its DER public key) is what MCUboot matches.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from imgtool import keys as imgtool_keys

from wedge.firmware.errors import SigningKeyError

PRIVATE_KEY_NAME: Final[str] = "wedge.pem"
PUBLIC_KEY_NAME: Final[str] = "wedge.pub"


@dataclass(frozen=True)
class KeyPair:
    """Where a generated pair was written, and the key hash a board will report when provisioned with it."""

    private_path: Path
    public_path: Path
    key_hash: bytes

    def to_dict(self) -> dict[str, str]:
        return {"private": str(self.private_path), "public": str(self.public_path), "key_hash": self.key_hash.hex()}


def generate_keys(out_dir: str | Path) -> KeyPair:
    """Write a new ed25519 pair (wedge.pem private, wedge.pub public) into `out_dir`; never overwrites a key."""
    folder = Path(out_dir)
    private_path, public_path = folder / PRIVATE_KEY_NAME, folder / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise SigningKeyError(f"{path} already exists: refusing to overwrite a signing key")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        key = imgtool_keys.Ed25519.generate()
        key.export_private(str(private_path))
        os.chmod(private_path, 0o600)
        key.export_public(str(public_path))
    except OSError as exc:
        raise SigningKeyError(f"cannot write keys to {folder}: {exc.strerror or exc}") from exc
    return KeyPair(private_path, public_path, public_key_hash(key.key.public_key()))


def existing_or_new_keys(folder: str | Path) -> KeyPair:
    """The pair already in `folder` (both halves, matching), else a new one written there."""
    folder = Path(folder)
    private_path, public_path = folder / PRIVATE_KEY_NAME, folder / PUBLIC_KEY_NAME
    if not private_path.exists() and not public_path.exists():
        return generate_keys(folder)
    public = load_signing_key(private_path).key.public_key()
    if raw_public_key(load_public_key(public_path)) != raw_public_key(public):
        raise SigningKeyError(f"{public_path} is not the public half of {private_path}")
    return KeyPair(private_path, public_path, public_key_hash(public))


def _load(path: str | Path) -> object:
    key_path = Path(path)
    if not key_path.is_file():
        raise SigningKeyError(f"key file not found: {key_path}")
    try:
        key = imgtool_keys.load(str(key_path))
    except (ValueError, TypeError, OSError) as exc:
        raise SigningKeyError(f"{key_path} is not a PEM key file ({exc})") from exc
    except Exception as exc:  # imgtool raises bare Exception for key types it does not know
        raise SigningKeyError(f"{key_path} is not a usable key: {exc}") from exc
    if key is None:
        raise SigningKeyError(f"{key_path} is password protected; wedge signs with unencrypted keys")
    return key


def load_signing_key(path: str | Path) -> imgtool_keys.Ed25519:
    """The private ed25519 key at `path`, as imgtool signs with it."""
    key = _load(path)
    if isinstance(key, imgtool_keys.Ed25519):
        return key
    if isinstance(key, imgtool_keys.Ed25519Public):
        raise SigningKeyError(f"{path} is a public key: signing needs the private key (wedge.pem)")
    raise SigningKeyError(f"{path} is not an ed25519 key: wedge images are signed with ed25519")


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """The ed25519 public key at `path` (a public key file, or the public half of a private one)."""
    key = _load(path)
    if isinstance(key, (imgtool_keys.Ed25519, imgtool_keys.Ed25519Public)):
        inner = key.key
        return inner.public_key() if isinstance(inner, Ed25519PrivateKey) else inner
    raise SigningKeyError(f"{path} is not an ed25519 key: wedge images are signed with ed25519")


def public_key_hash(key: Ed25519PublicKey) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo, as imgtool writes it in the KEYHASH TLV."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_raw(data: bytes) -> Ed25519PublicKey:
    if len(data) != 32:
        raise SigningKeyError(f"an ed25519 public key is 32 bytes, not {len(data)}")
    return Ed25519PublicKey.from_public_bytes(data)


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
