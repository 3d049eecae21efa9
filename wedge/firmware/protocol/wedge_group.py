"""wedge's own SMP group: what board this is, which signing key its bootloader trusts, and how its model runs.

A user-defined mcumgr group (ids from 64 up are for users); a device without it answers ENOTSUP, and the host
then falls back to the standard image-state read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, unique
from typing import Any, ClassVar, Final

from smp import error, message

WEDGE_GROUP_ID: Final[int] = 96


@unique
class WedgeCommand(IntEnum):
    BOARD_INFO = 0
    MODEL_STATUS = 1


@unique
class WEDGE_ERR(IntEnum):
    """Errors of the wedge group."""

    OK = 0
    UNKNOWN = 1


@unique
class ModelState(IntEnum):
    """What the board's runtime is doing with the model in its primary slot."""

    NO_MODEL = 0
    RUNNING = 1
    FAILED = 2


class BoardInfoReadRequest(message.ReadRequest):
    """Ask for the board's identity, budgets and trusted signing key."""

    _GROUP_ID: ClassVar[int] = WEDGE_GROUP_ID
    _COMMAND_ID: ClassVar[int] = WedgeCommand.BOARD_INFO


class BoardInfoReadResponse(message.ReadResponse):
    """The board profile name, its runtime and budgets, and the SHA-256 of the public key its bootloader trusts."""

    _GROUP_ID: ClassVar[int] = WEDGE_GROUP_ID
    _COMMAND_ID: ClassVar[int] = WedgeCommand.BOARD_INFO

    board: str
    runtime: str
    model_slot_bytes: int
    arena_bytes: int
    key_hash: bytes
    firmware: str


class ModelStatusReadRequest(message.ReadRequest):
    """Ask what the runtime is doing with the booted model."""

    _GROUP_ID: ClassVar[int] = WEDGE_GROUP_ID
    _COMMAND_ID: ClassVar[int] = WedgeCommand.MODEL_STATUS


class ModelStatusReadResponse(message.ReadResponse):
    """The booted model (if any), whether its self-test passed, and the last boot event (a rollback and why)."""

    _GROUP_ID: ClassVar[int] = WEDGE_GROUP_ID
    _COMMAND_ID: ClassVar[int] = WedgeCommand.MODEL_STATUS

    state: ModelState
    boot_count: int
    model_name: str | None = None
    model_version: str | None = None
    model_hash: bytes | None = None
    arena_used_bytes: int | None = None
    self_test_us: int | None = None
    event: str | None = None


@dataclass(frozen=True)
class ModelStatus:
    """The model status record: what the board's runtime reports about its model, on both sides of the link."""

    state: ModelState
    boot_count: int
    model_name: str | None = None
    model_version: str | None = None
    model_hash: bytes | None = None
    arena_used_bytes: int | None = None
    self_test_us: int | None = None
    event: str | None = None

    @classmethod
    def from_response(cls, response: ModelStatusReadResponse) -> ModelStatus:
        return cls(ModelState(response.state), response.boot_count, response.model_name, response.model_version,
                   response.model_hash, response.arena_used_bytes, response.self_test_us, response.event)

    def body(self) -> dict[str, object]:
        """The response body the device sends (absent fields left out, as CBOR maps from firmware do)."""
        fields = {
            "state": int(self.state),
            "boot_count": self.boot_count,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "model_hash": self.model_hash,
            "arena_used_bytes": self.arena_used_bytes,
            "self_test_us": self.self_test_us,
            "event": self.event,
        }
        return {key: value for key, value in fields.items() if value is not None}

    @property
    def state_text(self) -> str:
        return self.state.name.lower().replace("_", " ")

    @property
    def label(self) -> str:
        return f"{self.model_name} {self.model_version}" if self.model_name else "no model"

    def to_dict(self) -> dict[str, Any]:
        """The host's JSON record of it."""
        return {
            "state": self.state_text,
            "boot_count": self.boot_count,
            "model": self.model_name,
            "version": self.model_version,
            "hash": None if self.model_hash is None else self.model_hash.hex(),
            "self_test_us": self.self_test_us,
            "event": self.event,
        }


class WedgeErrorV1(error.ErrorV1):
    _GROUP_ID: ClassVar[int] = WEDGE_GROUP_ID


class WedgeErrorV2(error.ErrorV2[WEDGE_ERR]):
    _GROUP_ID: ClassVar[int] = WEDGE_GROUP_ID


class BoardInfoRead(BoardInfoReadRequest):
    """The request paired with its replies, as smpclient's `SMPClient.request` expects."""

    _Response = BoardInfoReadResponse
    _ErrorV1 = WedgeErrorV1
    _ErrorV2 = WedgeErrorV2


class ModelStatusRead(ModelStatusReadRequest):
    """The request paired with its replies, as smpclient's `SMPClient.request` expects."""

    _Response = ModelStatusReadResponse
    _ErrorV1 = WedgeErrorV1
    _ErrorV2 = WedgeErrorV2
