"""wedge's own SMP group: what board this is, which signing key its bootloader trusts, and how its model runs.

A user-defined mcumgr group (ids from 64 up are for users, MGMT_GROUP_ID_PERUSER); its id is the firmware's
choice (a product may use 96 for its own group), so every request class here is made for a given id. A device
without it answers ENOTSUP, and the host then falls back to the standard groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, unique
from typing import Any, ClassVar, Final

from smp import error, message

WEDGE_GROUP_ID: Final[int] = 96  # the default id; `wedge_requests(group_id)` makes the classes for another
PERUSER_GROUP_ID: Final[int] = 64


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
    descriptor: dict[str, Any] | None = None  # the application's firmware descriptor (wedge.firmware.image)


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


@dataclass(frozen=True)
class WedgeRequests:
    """The wedge group's request classes (paired with their replies) for one group id."""

    group_id: int
    board_info: type[BoardInfoRead]
    model_status: type[ModelStatusRead]


_MADE: dict[int, WedgeRequests] = {WEDGE_GROUP_ID: WedgeRequests(WEDGE_GROUP_ID, BoardInfoRead, ModelStatusRead)}


def wedge_requests(group_id: int = WEDGE_GROUP_ID) -> WedgeRequests:
    """The request classes for the wedge group at `group_id` (64..65535, the user range)."""
    if not PERUSER_GROUP_ID <= group_id <= 0xFFFF:
        raise ValueError(f"a user SMP group id is {PERUSER_GROUP_ID}..65535, got {group_id}")
    if group_id not in _MADE:
        _MADE[group_id] = _make(group_id)
    return _MADE[group_id]


def _make(group_id: int) -> WedgeRequests:
    class ErrorV1(WedgeErrorV1):
        _GROUP_ID: ClassVar[int] = group_id

    class ErrorV2(WedgeErrorV2):
        _GROUP_ID: ClassVar[int] = group_id

    class InfoResponse(BoardInfoReadResponse):
        _GROUP_ID: ClassVar[int] = group_id

    class StatusResponse(ModelStatusReadResponse):
        _GROUP_ID: ClassVar[int] = group_id

    class Info(BoardInfoRead):
        _GROUP_ID: ClassVar[int] = group_id
        _Response = InfoResponse
        _ErrorV1 = ErrorV1
        _ErrorV2 = ErrorV2

    class Status(ModelStatusRead):
        _GROUP_ID: ClassVar[int] = group_id
        _Response = StatusResponse
        _ErrorV1 = ErrorV1
        _ErrorV2 = ErrorV2

    return WedgeRequests(group_id, Info, Status)
