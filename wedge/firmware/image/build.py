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
from wedge.files import write_atomic
from wedge.firmware.errors import ImageError
from wedge.firmware.image.format import IMAGE_HEADER_BYTES, TLV_WEDGE_MANIFEST, ImageVersion
from wedge.firmware.image.keys import load_signing_key, raw_public_key
from wedge.firmware.image.manifest import Manifest, TensorManifest
from wedge.firmware.image.model_image import ModelImage, read_model_image, require_trusted
from wedge.runtime.artifacts import ArtifactError, inspect_model
from wedge.runtime.artifacts.labels import ModelLabels, tflite_labels
from wedge.runtime.artifacts.model_info import ModelInfo
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


def _dependencies(min_firmware: str | None) -> dict[str, Any] | None:
    """imgtool's dependency argument (as its --dependencies "(0, 1.2.0)" builds it): image 0 at least this version."""
    if min_firmware is None:
        return None
    ImageVersion.parse(min_firmware)
    return {imgtool_image.DEP_IMAGES_KEY: ["0"],
            imgtool_image.DEP_VERSIONS_KEY: [imgtool_version.decode_version(min_firmware)]}


def sign_payload(payload: Path, version: Any, key: Any, custom_tlvs: dict[int, bytes],
                 dependencies: dict[str, Any] | None = None) -> bytes:
    """The signed MCUboot image of `payload` with imgtool (SHA-256, the key's hash, ed25519), `custom_tlvs`
    in the protected area."""
    signer = imgtool_image.Image(version=version, header_size=IMAGE_HEADER_BYTES, pad_header=True)
    # imgtool prints progress ("sign the digest") on stdout, which would corrupt `--json` output.
    with contextlib.redirect_stdout(io.StringIO()), tempfile.TemporaryDirectory(prefix="wedge-pack-") as work:
        try:
            signer.load(str(payload))
            signer.create(key, "hash", None, dependencies=dependencies, custom_tlvs=custom_tlvs)
            out = Path(work) / "image.bin"
            signer.save(str(out))
        except (click.ClickException, ValueError, OSError) as exc:
            raise ImageError(f"imgtool cannot sign {payload.name}: {first_line(exc)}") from exc
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
    labels: Sequence[str] | None = None,
    unit: str | None = None,
    check_fit: bool = True,
    image: int | None = None,
    min_firmware: str | None = None,
) -> PackResult:
    """Sign `model` (.tflite) for `board` into an image in memory.

    arena_bytes: the TFLM arena the model needs (as the TFLite export measures it), written in the manifest.
    labels, unit: what the first output means; None takes what the .tflite carries (`wedge quantize` writes the
    labels it was given, or found in the ONNX model, into the .tflite's metadata).
    check_fit: refuse a model the board cannot run (missing kernels, arena or slot too small); when False
    the problems become notes, and the board itself will refuse or roll back the image.
    image: the MCUboot image it is for (default: the board's model image, 1).
    min_firmware: the application (image 0) version the model needs at least: an MCUboot dependency TLV, so
    the bootloader never swaps it in under an older application.
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
    target = board.flashing.model_image if image is None else image
    if target == 0:
        raise ImageError("image 0 is the application firmware: a model goes to image 1 (`wedge pack --firmware` "
                         "builds application images)")
    if board.flashing.images and board.flashing.image(target) is None:
        raise ImageError(f"{board.name} has no MCUboot image {target} (its images: "
                         f"{', '.join(str(s.number) for s in board.flashing.images)})")
    dependencies = _dependencies(min_firmware)
    model_data = model_path.read_bytes()
    meaning = _meaning(model_data, labels, unit, info, model_path.name)
    manifest = Manifest(
        # A file name that is not UTF-8 still names the model, with its undecodable bytes shown as U+FFFD.
        model_name=model_name or os.fsencode(model_path.stem).decode("utf-8", "replace"),
        model_version=version,
        board=board.name,
        runtime=board.compute.runtime,
        inputs=tuple(TensorManifest.from_spec(s) for s in info.inputs),
        outputs=tuple(TensorManifest.from_spec(s) for s in info.outputs),
        labels=meaning.labels,
        arena_bytes=arena_bytes,
        model_bytes=len(model_data),
        model_sha256=hashlib.sha256(model_data).digest(),
        signer_key=raw_public_key(key.key.public_key()),
        ops=tuple(sorted(ops)),
        image=target,
        unit=meaning.unit,
    )
    data = sign_payload(model_path, header_version, key, {TLV_WEDGE_MANIFEST: manifest.to_cbor()}, dependencies)
    image = read_model_image(data, model_path.name)
    require_trusted(image, model_path.name, key.key.public_key())
    problems = _fit_problems(board, len(model_data), image.size_bytes, arena_bytes, ops)
    if problems and check_fit:
        raise ImageError(f"{model_path.name} does not fit {board.name}: {problems[0]}")
    notes = tuple(problems) + tuple(info.notes)
    return PackResult(image=image, path=None, notes=notes)


def _meaning(model_data: bytes, labels: Sequence[str] | None, unit: str | None, info: ModelInfo,
             name: str) -> ModelLabels:
    """The labels and unit given, else the ones the .tflite carries; checked against the first output."""
    try:
        carried = tflite_labels(model_data) or ModelLabels()
        meaning = ModelLabels(tuple(labels) if labels is not None else carried.labels,
                              unit if unit is not None else carried.unit)
        shape = info.outputs[0].shape if info.outputs else ()
        classes = shape[-1] if shape and isinstance(shape[-1], int) else None
        meaning.check_classes(classes, name)
    except ArtifactError as exc:
        raise ImageError(str(exc)) from None
    return meaning


def write_image(result: PackResult, out: str | Path) -> PackResult:
    """Write the image atomically (a half-written image must never look like a whole one)."""
    path = write_image_bytes(result.image.data, out)
    return PackResult(image=result.image, path=path, notes=result.notes)


def write_image_bytes(data: bytes, out: str | Path) -> Path:
    """Write image bytes to `out` atomically, with the mode any new file gets (an image is not a secret: only
    keys are 0600); ImageError when the folder cannot take them."""
    path = Path(out)
    try:
        return write_atomic(path, data)
    except OSError as exc:
        raise ImageError(f"cannot write {path}: {exc.strerror or exc}") from exc
