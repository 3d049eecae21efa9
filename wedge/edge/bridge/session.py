"""One device's connection lifecycle: find, connect with retries, attach the profile, watch, and come back.

A session never ends on a fault: a vanished device, a refused connection, a silent stream (no notification for
several expected periods) or a dropped link all lead to a reconnect after an exponential backoff, and the
profile resubscribes and backfills each time. Only `stop` ends it, or a link that cannot be secured (no bond, a
lost bond, a failed pairing): reconnecting would get the same answer, so the session says once how to recover
and stops following the device. A session follows one device: once attached it stays bound to that device's
address, which no other session may take.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from bleak import BleakClient
from bleak.exc import BleakGATTProtocolError, BleakGATTProtocolErrorCode
from bleak_retry_connector import establish_connection

from wedge.edge.bridge.coverage import Coverage
from wedge.edge.bridge.discovery import AddressClaims, BleStack, DeviceSelector, Found, find_device
from wedge.edge.bridge.errors import BridgeError, DeviceNotFound, LinkSecurityError, PairingRequired
from wedge.edge.bridge.models import ModelCatalog
from wedge.edge.bridge.stream_record import LostRange, StreamRecord
from wedge.errors import first_line
from wedge.firmware.protocol.ble_control import EpochSpan

TICK_S: Final[float] = 0.25
# The newest link events a device's stats keep (for the live page's reconnect and restart marks).
MAX_LINK_EVENTS: Final[int] = 32
# A session that stayed up this long starts its next backoff from the beginning again.
STABLE_SESSION_S: Final[float] = 10.0

logger = logging.getLogger(__name__)

Emit = Callable[[Sequence[StreamRecord]], None]
CoverageQuery = Callable[[str, Sequence[EpochSpan]], Awaitable[Coverage]]
NoteLost = Callable[[Sequence[LostRange]], None]


@dataclass(frozen=True)
class SessionOptions:
    scan_timeout_s: float = 10.0
    connect_attempts: int = 3
    watchdog_periods: float = 5.0       # a stream silent for this many expected periods is a dead link
    watchdog_min_s: float = 1.0         # ... but never sooner than this (connection events batch notifications)
    backoff_first_s: float = 0.25
    backoff_max_s: float = 30.0
    backfill_retry_s: float = 1.5       # re-ask for a gap not filled after this long
    backfill_attempts: int = 4          # then give the gap up as lost
    reorder_hold_s: float = 1.0         # records wait this long behind a gap before leaving out of order
    pair: bool = False                  # pair (and bond) with a device that has no bond here yet


@dataclass
class DeviceStats:
    """What the status line and the summary show for one device."""

    selector: str
    state: str = "searching"
    key: str | None = None
    name: str | None = None
    address: str | None = None
    epoch: int | None = None
    epoch_changes: int = 0
    last_event: str | None = None
    rssi: int | None = None
    battery_percent: int | None = None
    heart_rate_bpm: int | None = None   # the device's Heart Rate Measurement, when it has the service
    skin_contact: bool | None = None    # ... and whether it says it touches the skin
    mtu: int | None = None
    connects: int = 0
    disconnects: int = 0
    silent_disconnects: int = 0
    connect_failures: int = 0
    frames: int = 0
    malformed: int = 0
    unsupported: int = 0
    records: int = 0
    duplicates: int = 0
    lost: int = 0
    out_of_order: int = 0
    gaps_open: int = 0
    backfill_requests: int = 0
    security: str | None = None         # how the link is secured (never the keys)
    pairings: int = 0                   # new pairings made (a reconnect with the bond makes none)
    last_error: str | None = None
    last_frame_s: float = field(default_factory=time.monotonic)
    # (kind, wall clock µs): "connected", "disconnected", "restart" (a new epoch), newest last.
    events: deque[tuple[str, int]] = field(default_factory=lambda: deque(maxlen=MAX_LINK_EVENTS))

    def note_event(self, kind: str) -> None:
        self.events.append((kind, time.time_ns() // 1000))

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("last_frame_s", "events")}
        data["events"] = [{"kind": kind, "t_us": t_us} for kind, t_us in self.events]
        return data


class Profile(Protocol):
    """What a session does on a connected device: subscribe, decode, keep the stream whole."""

    name: str

    async def attach(self, client: BleakClient, link: Link) -> None: ...

    async def maintain(self, client: BleakClient, link: Link) -> None: ...

    def expected_period_s(self) -> float: ...

    def drain(self, link: Link) -> None:
        """Hand over whatever the profile still holds (the session is ending)."""


@dataclass(frozen=True)
class Outlet:
    """Where a session's records go (`emit`), what the sinks already hold (`coverage`), where records a
    device no longer has are reported (`note_lost`), and the models the bridge can name (`models`)."""

    emit: Emit
    coverage: CoverageQuery
    note_lost: NoteLost
    models: ModelCatalog = field(default_factory=ModelCatalog)


@dataclass
class Link:
    """What a profile gets from its session: the device's stats, and the sinks' outlet."""

    stats: DeviceStats
    outlet: Outlet

    def emit(self, records: Sequence[StreamRecord]) -> None:
        self.outlet.emit(records)

    async def coverage(self, device: str, windows: Sequence[EpochSpan]) -> Coverage:
        return await self.outlet.coverage(device, windows)

    def note_lost(self, ranges: Sequence[LostRange]) -> None:
        if ranges:
            self.outlet.note_lost(ranges)

    def frame_seen(self) -> None:
        self.stats.frames += 1
        self.stats.last_frame_s = time.monotonic()


class DeviceSession:
    """Keeps one device connected and streaming until `stop` is set."""

    def __init__(self, selector: DeviceSelector, stack: BleStack, profile: Profile, outlet: Outlet,
                 options: SessionOptions | None = None, *, claims: AddressClaims | None = None,
                 address: str | None = None) -> None:
        self.selector = selector
        self.stack = stack
        self.profile = profile
        self.options = options or SessionOptions()
        self.stats = DeviceStats(selector.describe(), address=address)
        self.claims = claims or AddressClaims()
        # The device this session follows, once it attached (or from the start, when the bridge found it).
        self.address = address
        if address is not None and not self.claims.claim(address, self):
            raise BridgeError(f"{address} is followed by another session already")
        self._link = Link(self.stats, outlet)
        self._scanned = False
        self._ever_found = address is not None  # a session the bridge started for a device it already saw

    @property
    def bound(self) -> bool:
        return self.address is not None

    async def run(self, stop: asyncio.Event) -> None:
        backoff_s = self.options.backoff_first_s
        scanned_once = False
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self._connect_once(stop)
            except asyncio.CancelledError:
                raise
            except LinkSecurityError as exc:
                # The same device would give the same answer: say how to recover, once, and stop following it.
                self.stats.state = "needs pairing"
                self.stats.last_error = first_line(exc)
                self.profile.drain(self._link)
                raise
            except BridgeError as exc:
                # No adapter at start, or no such device at all, is the user's to fix; an adapter lost later
                # may come back.
                if not scanned_once or isinstance(exc, DeviceNotFound):
                    raise
                self.stats.last_error = first_line(exc)
                logger.warning("%s: %s", self.selector.describe(), self.stats.last_error)
            except Exception as exc:  # a supervisor: every fault of one attempt leads to a retry, never an exit
                self.stats.last_error = first_line(exc)
                logger.info("%s: %s", self.selector.describe(), self.stats.last_error)
            scanned_once = scanned_once or self._scanned
            if stop.is_set():
                break
            if time.monotonic() - started > STABLE_SESSION_S:
                backoff_s = self.options.backoff_first_s
            self.stats.state = f"retry in {backoff_s:.1f} s"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff_s)
            backoff_s = min(backoff_s * 2, self.options.backoff_max_s)
        self.profile.drain(self._link)
        self.stats.state = "stopped"

    async def _connect_once(self, stop: asyncio.Event) -> None:
        self.stats.state = "searching"
        selector = self.selector if self.address is None else DeviceSelector(address=self.address)
        exclude = self.claims.claimed() - {(self.address or "").upper()}
        found = await find_device(selector, self.stack, self.options.scan_timeout_s, exclude=exclude)
        self._scanned = True
        if found is None:
            self.stats.state = "not found"
            message = f"no device matching {selector.describe()} advertised within {self.options.scan_timeout_s:g} s"
            if not self._ever_found:
                # Never seen in this run: a wrong name or a device that is off is the user's to hear, not a retry.
                raise DeviceNotFound(f"{message} (is it on, in range and advertising? `wedge scan` lists the "
                                     "devices nearby)")
            raise TimeoutError(message)
        self._ever_found = True
        address = found.device.address
        if not self.claims.claim(address, self):
            raise TimeoutError(f"{address} was taken by another session while this one scanned")
        secured = False
        try:
            self.stats.address = address
            self.stats.name = found.device.name or self.stats.name
            self.stats.rssi = found.rssi
            await self._session(found, stop)
        except LinkSecurityError:
            # Keep the device: another session must not take it up and ask again.
            secured = True
            raise
        finally:
            if self.address is None and not secured:  # never attached: another session may take it
                self.claims.release(address, self)

    async def _session(self, found: Found, stop: asyncio.Event) -> None:
        """Connect, attach and stream until the link ends; the session binds to the device once attached."""
        self.stats.state = "connecting"
        disconnected = asyncio.Event()
        try:
            client = await establish_connection(
                BleakClient, found.device, self.selector.describe(),
                disconnected_callback=lambda _client: disconnected.set(),
                max_attempts=self.options.connect_attempts, pair=self.options.pair, **self.stack.client_args,
            )
        except Exception:
            self.stats.connect_failures += 1
            raise
        self.stats.connects += 1
        self.stats.note_event("connected")
        self.stats.mtu = client.mtu_size
        self._note_security(found.device.address)
        try:
            self.stats.state = "subscribing"
            try:
                await self.profile.attach(client, self._link)
            except BleakGATTProtocolError as exc:
                refusal = self._refused(found, exc)
                if refusal is None:
                    raise
                raise refusal from exc
            # From now on this session follows this device, and only it.
            self.address = found.device.address
            self.stats.state = "streaming"
            await self._watch(client, disconnected, stop)
        finally:
            if not disconnected.is_set():
                with contextlib.suppress(Exception):
                    await client.disconnect()
            self.stats.disconnects += 1
            self.stats.note_event("disconnected")
            self.stats.state = "disconnected"

    def _note_security(self, address: str) -> None:
        security = self.stack.security_of(address)
        if security is None:
            return
        self.stats.security = security.describe()
        if security.paired_now:
            self.stats.pairings += 1
            logger.warning("paired with %s (%s) by %s; the bond is kept for the next connections",
                           self.stats.name or self.selector.describe(), address, security.method_in_words())

    def _refused(self, found: Found, exc: BleakGATTProtocolError) -> LinkSecurityError | None:
        """An encryption or authentication refusal, as the error that says how to recover (None: another refusal)."""
        label = f"{found.device.name or self.selector.describe()} ({found.device.address})"
        name = found.device.name or found.device.address
        if exc.code == BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION:
            security = self.stack.security_of(found.device.address)
            if security is not None and security.encrypted:
                return PairingRequired(f"{label} needs an authenticated (MITM-protected) bond and this one is not: "
                                       f"pair it again by passkey or numeric comparison (`wedge pair {name}`)")
            return PairingRequired(f"{label} only streams over an encrypted, bonded link and this bridge has no "
                                   f"bond with it: pair it with `wedge pair {name}`, or run the bridge with --pair")
        if exc.code == BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION:
            return PairingRequired(f"{label} holds a bond with this adapter that the bridge does not (a lost or "
                                   f"different keystore): erase the bond on the device, then pair again "
                                   f"(`wedge pair {name}`)")
        return None

    async def _watch(self, client: BleakClient, disconnected: asyncio.Event, stop: asyncio.Event) -> None:
        self._link.stats.last_frame_s = time.monotonic()
        waiters = [asyncio.ensure_future(disconnected.wait()), asyncio.ensure_future(stop.wait())]
        try:
            while not (disconnected.is_set() or stop.is_set()):
                await asyncio.wait(waiters, timeout=TICK_S, return_when=asyncio.FIRST_COMPLETED)
                if disconnected.is_set() or stop.is_set():
                    return
                watchdog_s = max(self.options.watchdog_min_s,
                                 self.options.watchdog_periods * self.profile.expected_period_s())
                if time.monotonic() - self.stats.last_frame_s > watchdog_s:
                    self.stats.silent_disconnects += 1
                    self.stats.last_error = f"no notification for {watchdog_s:.1f} s: treating the link as dead"
                    logger.info("%s: %s", self.selector.describe(), self.stats.last_error)
                    return
                await self.profile.maintain(client, self._link)
        finally:
            for waiter in waiters:
                waiter.cancel()
