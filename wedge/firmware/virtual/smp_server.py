"""The virtual board's SMP server: routes each request to its group's handler and answers errors as Zephyr does.

Unknown groups or commands get `rc: ENOTSUP`; a request whose fields do not validate gets `rc: EINVAL`.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from wedge.firmware.protocol.smp_messages import (
    MGMT_ERR,
    OP,
    MalformedMessage,
    RawHeader,
    error_response,
    parse_body,
    parse_header,
)

Handler = Callable[[RawHeader, bytes], bytes]


class SmpServer:
    """A table of (group, command, op) -> handler."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[int, int, OP], Handler] = {}

    def register(self, group: int, command: int, op: OP, handler: Handler) -> None:
        self._handlers[(int(group), int(command), op)] = handler

    def handle(self, message: bytes) -> bytes | None:
        """The reply to one request message, or None for something that is not a request."""
        try:
            header = parse_header(message)
        except MalformedMessage:
            return None
        if header.op not in (OP.READ, OP.WRITE):
            return None  # a response (or our own output echoed back): nothing to answer
        handler = self._handlers.get((int(header.group_id), int(header.command_id), header.op))
        if handler is None:
            return error_response(header, MGMT_ERR.ENOTSUP, group_error=False)
        try:
            parse_body(message)
            return handler(header, message)
        except (MalformedMessage, ValidationError, ValueError, TypeError):
            return error_response(header, MGMT_ERR.EINVAL, group_error=False)
