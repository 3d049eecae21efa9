"""Builds a signed MCUboot image from a .tflite model with imgtool as a library, manifest included.

Checks the model against the board first (TFLM kernels, arena, model slot) so an image that cannot run is
not built unless asked; the image is written atomically and read back through the verifier.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from imgtool import image as imgtool_image
from imgtool import version as imgtool_version

from wedge.boards import Board
from wedge.errors import first_line
from wedge.firmware.errors import ImageError
from wedge.firmware.image.format import IMAGE_HEADER_BYTES, TLV_WEDGE_MANIFEST
from wedge.firmware.image.keys import load_signing_key, raw_public_key
from wedge.firmware.image.manifest import Manifest, TensorManifest
from wedge.firmware.image.model_image import ModelImage, read_model_image, require_trusted
from wedge.runtime.artifacts import ArtifactError, inspect_model
from wedge.runtime.artifacts.tflm_ops import tflm_unsupported


@dataclass(frozen=True)
class PackResult:
    """A built image and where it went; `notes` hold the fit problems when the fit checks were skipped."""

    image: ModelImage
    path: Path | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": None if self.path is None else str(self.path),
            "size_bytes": self.image.size_bytes,
            "version": str(self.image.version),
            "image_hash": self.image.image_hash.hex(),
            "key_hash": self.image.key_hash.hex(),
            "manifest": self.image.manifest.to_dict(),
            "notes": list(self.notes),
        }


def _decode_version(text: str) -> Any:
    try:
        return imgtool_version.decode_version(text)
    except ValueError:
        raise ImageError(f"version {text!r} is not MAJOR.MINOR.REVISION[+BUILD] (for example 1.2.0)") from None


def _fit_problems(board: Board, model_bytes: int, image_bytes: int, arena_bytes: int, ops: list[str]) -> list[str]:
    problems = []
    unsupported = tflm_unsupported(ops)
    if unsupported:
        problems.append(f"TFLite-Micro on {board.name} has no kernel for {', '.join(unsupported)}")
    if arena_bytes > board.budgets.arena_bytes:
        problems.append(
            f"the model needs {arena_bytes:,} bytes of TFLM arena; {board.name} allows {board.budgets.arena_bytes:,}"
        )
    if image_bytes > board.budgets.model_slot_bytes:
        problems.append(
            f"the image is {image_bytes:,} bytes ({model_bytes:,} of model); "
            f"{board.name}'s model slot holds {board.budgets.model_slot_bytes:,}"
        )
    return problems


def _sign(model_path: Path, version: Any, key: Any, manifest: Manifest) -> bytes:
    signer = imgtool_image.Image(version=version, header_size=IMAGE_HEADER_BYTES, pad_header=True)
    # imgtool prints progress ("sign the digest") on stdout, which would corrupt `--json` output.
    with contextlib.redirect_stdout(io.StringIO()), tempfile.TemporaryDirectory(prefix="wedge-pack-") as work:
        try:
            signer.load(str(model_path))
            signer.create(key, "hash", None, custom_tlvs={TLV_WEDGE_MANIFEST: manifest.to_cbor()})
            out = Path(work) / "image.bin"
            signer.save(str(out))
        except (click.ClickException, ValueError, OSError) as exc:
            raise ImageError(f"imgtool cannot sign {model_path.name}: {first_line(exc)}") from exc
        return out.read_bytes()


def check_model_path(model: str | Path) -> Path:
    """The model path, if it names an existing .tflite file (the format TFLite-Micro runs)."""
    model_path = Path(model)
    if model_path.suffix.lower() != ".tflite":
        raise ImageError(f"{model_path.name}: pack takes a .tflite model (the one TFLite-Micro runs)")
    if not model_path.is_file():
        raise ImageError(f"model file not found: {model_path}")
    return model_path


def build_image(
    model: str | Path,
    board: Board,
    key_path: str | Path,
    version: str,
    *,
    arena_bytes: int,
    model_name: str | None = None,
    labels: Sequence[str] = (),
    check_fit: bool = True,
) -> PackResult:
    """Sign `model` (.tflite) for `board` into an image in memory.

    arena_bytes: the TFLM arena the model needs (as the TFLite export measures it), written in the manifest.
    check_fit: refuse a model the board cannot run (missing kernels, arena or slot too small); when False
    the problems become notes, and the board itself will refuse or roll back the image.
    """
    model_path = check_model_path(model)
    if board.compute.runtime != "tflm":
        raise ImageError(
            f"{board.name} runs {board.compute.runtime} models from files; pack builds MCUboot images for TFLM boards"
        )
    try:
        info = inspect_model(model_path)
    except ArtifactError as exc:
        raise ImageError(str(exc)) from exc
    key = load_signing_key(key_path)
    header_version = _decode_version(version)
    if arena_bytes <= 0:
        raise ImageError(f"the arena size must be positive, got {arena_bytes}")
    ops = list(info.op_histogram)
    model_data = model_path.read_bytes()
    manifest = Manifest(
        # A file name that is not UTF-8 still names the model, with its undecodable bytes shown as U+FFFD.
        model_name=model_name or os.fsencode(model_path.stem).decode("utf-8", "replace"),
        model_version=version,
        board=board.name,
        runtime=board.compute.runtime,
        inputs=tuple(TensorManifest.from_spec(s) for s in info.inputs),
        outputs=tuple(TensorManifest.from_spec(s) for s in info.outputs),
        labels=tuple(labels),
        arena_bytes=arena_bytes,
        model_bytes=len(model_data),
        model_sha256=hashlib.sha256(model_data).digest(),
        signer_key=raw_public_key(key.key.public_key()),
    )
    data = _sign(model_path, header_version, key, manifest)
    image = read_model_image(data, model_path.name)
    require_trusted(image, model_path.name, key.key.public_key())
    problems = _fit_problems(board, len(model_data), image.size_bytes, arena_bytes, ops)
    if problems and check_fit:
        raise ImageError(f"{model_path.name} does not fit {board.name}: {problems[0]}")
    notes = tuple(problems) + tuple(info.notes)
    return PackResult(image=image, path=None, notes=notes)


def write_image(result: PackResult, out: str | Path) -> PackResult:
    """Write the image atomically (a half-written image must never look like a whole one)."""
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(result.image.data)
        os.replace(tmp, path)
    except OSError as exc:
        raise ImageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return PackResult(image=result.image, path=path, notes=result.notes)
