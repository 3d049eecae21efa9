"""SMP over a serial line as Zephyr's mcumgr speaks it: frames of base64 lines that share the UART with console text.

A frame is base64(length + message + CRC-16/XMODEM) cut into lines that start `06 09` (first) or `04 14`
(continuation) and end in a newline; the `smp` package encodes and decodes one frame, this module splits a byte
stream into frames and console text.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Generator
from dataclasses import dataclass
from typing import Final

from smp import packet as smppacket
from smp.exceptions import SMPBadContinueDelimiter, SMPBadCRC, SMPBadStartDelimiter

START_DELIMITER: Final[bytes] = smppacket.START_DELIMITER
CONTINUE_DELIMITER: Final[bytes] = smppacket.CONTINUE_DELIMITER
END_DELIMITER: Final[bytes] = smppacket.END_DELIMITER
# smpclient's line length convention: delimiter + 124 base64 characters + newline = 127 bytes on the wire.
LINE_LENGTH_BYTES: Final[int] = 128
# Zephyr's console transport holds one line of at most 127 bytes (MCUMGR_SERIAL_MAX_FRAME); a longer line
# cannot be a frame line, so it is console text.
MAX_FRAME_LINE_BYTES: Final[int] = 128
# Frame length + CRC-16 around the message, both big-endian uint16.
FRAME_OVERHEAD_BYTES: Final[int] = smppacket.FRAME_LENGTH_STRUCT.size + smppacket.CRC16_STRUCT.size


def encode_frame(message: bytes, line_length: int = LINE_LENGTH_BYTES) -> bytes:
    """The wire bytes of one SMP message: its frame lines, concatenated."""
    return b"".join(smppacket.encode(message, line_length=line_length))


def frame_wire_bytes(message_bytes: int, line_length: int = LINE_LENGTH_BYTES) -> int:
    """How many bytes a message of `message_bytes` takes on the wire, framing included."""
    return len(encode_frame(bytes(message_bytes), line_length))


@dataclass(frozen=True)
class Frame:
    """One decoded SMP message (header + CBOR body), CRC checked."""

    message: bytes


@dataclass(frozen=True)
class Console:
    """Bytes on the line that are not SMP frames: log output, a shell, or a text protocol."""

    text: bytes


@dataclass(frozen=True)
class BadFrame:
    """Frame lines that could not be decoded (bad base64, CRC, order or size); the frame is dropped."""

    reason: str


SerialEvent = Frame | Console | BadFrame


def _next_delimiter_byte(data: bytes, pos: int) -> int:
    """Index of the next byte that may start a frame line (0x06 or 0x04) at or after `pos`, or -1."""
    found = [i for i in (data.find(START_DELIMITER[:1], pos), data.find(CONTINUE_DELIMITER[:1], pos)) if i != -1]
    return min(found) if found else -1


class SerialFrameReader:
    """Splits a serial byte stream, fed in any pieces, into SMP frames and console text.

    A frame line (from a delimiter to its newline) is held until complete; any other bytes are console text,
    passed on as they arrive (a text protocol such as MLPerf Tiny's `name%` has no newline to wait for).
    """

    def __init__(self, max_message_bytes: int = 65_535) -> None:
        self._max_message_bytes = max_message_bytes
        self._line = bytearray()
        self._in_frame_line = False
        self._decoder: Generator[None, bytes, bytes] | None = None
        self._base64_bytes = 0

    def feed(self, data: bytes) -> list[SerialEvent]:
        """Consume `data`; return the frames, console text and frame errors it completes, in order."""
        events: list[SerialEvent] = []
        console = bytearray()
        # Scanning with find() instead of byte by byte: at 1 Mbaud the per-byte Python cost would show.
        data = bytes(self._line) + data if self._in_frame_line else data
        self._line.clear()
        self._in_frame_line = False
        pos = 0
        end = len(data)
        while pos < end:
            start = _next_delimiter_byte(data, pos)
            if start == -1:
                console += data[pos:]
                break
            console += data[pos:start]
            if start + 1 == end:
                # The delimiter's second byte is still on its way: keep the first for the next feed.
                self._line += data[start:]
                self._in_frame_line = True
                break
            if data[start : start + 2] not in (START_DELIMITER, CONTINUE_DELIMITER):
                # A lone 0x06 or 0x04 is console text.
                console += data[start : start + 1]
                pos = start + 1
                continue
            newline = data.find(END_DELIMITER, start, start + MAX_FRAME_LINE_BYTES)
            if newline == -1:
                if end - start < MAX_FRAME_LINE_BYTES:
                    self._line += data[start:]
                    self._in_frame_line = True
                    break
                # Too long for a frame line (its newline was lost): the frame in progress cannot complete.
                self._abandon_frame(events, "frame line longer than a serial line")
                console += data[start : start + MAX_FRAME_LINE_BYTES]
                pos = start + MAX_FRAME_LINE_BYTES
                continue
            self._flush_console(console, events)
            self._end_frame_line(data[start : newline + 1], events)
            pos = newline + 1
        self._flush_console(console, events)
        return events

    def _flush_console(self, console: bytearray, events: list[SerialEvent]) -> None:
        if console:
            events.append(Console(bytes(console)))
            console.clear()

    def _end_frame_line(self, line: bytes, events: list[SerialEvent]) -> None:
        delimiter = line[: len(START_DELIMITER)]
        if delimiter == START_DELIMITER:
            if self._decoder is not None:
                events.append(BadFrame("a new frame started before the previous one ended"))
            self._decoder = smppacket.decode()
            next(self._decoder)
            self._base64_bytes = 0
        elif self._decoder is None:
            events.append(BadFrame("a continuation line without a frame start"))
            return
        self._base64_bytes += len(line) - len(START_DELIMITER) - len(END_DELIMITER)
        if self._base64_bytes * 3 // 4 > self._max_message_bytes + FRAME_OVERHEAD_BYTES + 3:
            self._abandon_frame(events, f"frame larger than {self._max_message_bytes} bytes")
            return
        decoder = self._decoder
        assert decoder is not None
        try:
            decoder.send(line)
        except StopIteration as done:
            self._decoder = None
            events.append(Frame(bytes(done.value)))
        except (binascii.Error, struct.error, ValueError, SMPBadCRC, SMPBadStartDelimiter,
                SMPBadContinueDelimiter) as exc:
            self._decoder = None
            events.append(BadFrame(f"undecodable frame: {type(exc).__name__}: {exc}"))

    def _abandon_frame(self, events: list[SerialEvent], reason: str) -> None:
        if self._decoder is not None:
            events.append(BadFrame(reason))
        self._decoder = None
