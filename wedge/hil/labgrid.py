"""labgrid places as bench boards: a place is acquired and released through labgrid's client library, its
NetworkSerialPort becomes a pyserial URL and its power resource a labgrid power driver.

labgrid (the `lab` extra) is imported on first use only. The calls follow labgrid's own scripts
(contrib/sync-places.py): a `ClientSession` on its own event loop, the coordinator's gRPC requests on
`session.stub`, then `sync_with_coordinator()` so the session's view of the places is current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Self

from wedge.hil.errors import HilError

PLACE_SCHEME: Final[str] = "labgrid:"
COORDINATOR_ENV: Final[str] = "LG_COORDINATOR"
# labgrid-client's default when neither -x, an environment config nor LG_COORDINATOR names one.
DEFAULT_COORDINATOR: Final[str] = "127.0.0.1:20408"
COORDINATOR_PORT: Final[int] = 20408
CONNECT_TIMEOUT_S: Final[float] = 10.0
REQUEST_TIMEOUT_S: Final[float] = 30.0
SERIAL_RESOURCE: Final[str] = "NetworkSerialPort"
# The place tag naming a board profile (labgrid-client -p NAME set-tags profile=ring-nrf52840).
PROFILE_TAG: Final[str] = "profile"
# Power resources a client drives by itself (the switch is reached over the network from here), and the labgrid
# driver for each, as `labgrid-client power` picks them. The exporter-side ones (NetworkUSBPowerPort, ...) need
# labgrid's ssh plumbing: for those, give the map a `power` command such as `labgrid-client -p NAME power cycle`.
POWER_DRIVERS: Final[dict[str, str]] = {
    "NetworkPowerPort": "NetworkPowerDriver",
    "PDUDaemonPort": "PDUDaemonDriver",
    "TasmotaPowerPort": "TasmotaPowerDriver",
}


class LabgridError(HilError):
    """A labgrid coordinator that cannot be reached, or a place that is unknown, held by someone else, or unfit."""


def coordinator_address(given: str | None = None, from_map: str | None = None) -> str:
    """The coordinator to use, in labgrid-client's order: the option, the config file, LG_COORDINATOR, the default."""
    return given or from_map or os.environ.get(COORDINATOR_ENV) or DEFAULT_COORDINATOR


def place_name(spec: str) -> str:
    """`labgrid:NAME` -> NAME; LabgridError for anything else."""
    if not spec.startswith(PLACE_SCHEME) or not spec[len(PLACE_SCHEME):]:
        raise LabgridError(f"place {spec!r}: write it as \"{PLACE_SCHEME}NAME\" (a labgrid place)")
    return spec[len(PLACE_SCHEME):]


def _client() -> Any:
    try:
        from labgrid.remote import client
    except ImportError:
        raise LabgridError("labgrid places need labgrid: python3 -m pip install 'wedge[lab]'") from None
    return client


@dataclass(frozen=True)
class PlaceResource:
    """One resource of a place as the coordinator describes it."""

    exporter: str
    group: str
    cls: str
    name: str
    args: dict[str, Any]
    extra: dict[str, Any]
    avail: bool

    @property
    def path(self) -> str:
        return f"{self.exporter}/{self.group}/{self.cls}/{self.name}"


@dataclass(frozen=True)
class PlaceInfo:
    """A place: who holds it (`host/user`, or None), its tags, and the resources it matches (or has acquired)."""

    name: str
    holder: str | None
    tags: dict[str, str]
    matches: tuple[str, ...]
    resources: tuple[PlaceResource, ...]

    def serial(self) -> PlaceResource:
        """The place's NetworkSerialPort; LabgridError naming what it has instead."""
        found = [r for r in self.resources if r.cls == SERIAL_RESOURCE]
        if not found:
            have = ", ".join(sorted({r.cls for r in self.resources})) or "no resources at all"
            hint = " (is its exporter running?)" if not self.resources else ""
            raise LabgridError(f"place {self.name} has no {SERIAL_RESOURCE} for SMP and the DUT protocol: it matches "
                               f"{', '.join(self.matches) or 'nothing'} and has {have}{hint}")
        unavailable = [r.path for r in found if not r.avail]
        if len(found) == len(unavailable):
            raise LabgridError(f"place {self.name}: its serial port {unavailable[0]} is unavailable (exporter down?)")
        return next(r for r in found if r.avail)

    def power(self) -> PlaceResource | None:
        return next((r for r in self.resources if r.cls in POWER_DRIVERS), None)


class _LabgridLog(logging.Handler, logging.Filter):
    """Keeps what labgrid's client logs on the root logger (a lost coordinator, with its gRPC status) for our error.

    labgrid logs through the module-level `logging.error`, which installs a stderr handler on an unconfigured root
    logger: being a root handler prevents that, and being a root filter keeps its records off other handlers.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self, logging.WARNING)
        logging.Filter.__init__(self)
        self.messages: list[str] = []
        self._root = logging.getLogger()
        self._root.addFilter(self)
        self._root.addHandler(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if f"{os.sep}labgrid{os.sep}" not in record.pathname:
            return True
        if record.levelno >= logging.WARNING:
            message = record.getMessage()
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None:
                details = getattr(exc, "details", None)
                message += f": {details() if callable(details) else exc}"
            self.messages.append(message)
        return False

    def emit(self, record: logging.LogRecord) -> None:
        pass

    def remove(self) -> None:
        self._root.removeFilter(self)
        self._root.removeHandler(self)


class Coordinator:
    """A client session with a labgrid coordinator, on an event loop of its own (as labgrid-client holds one).

    Short-lived: open it, acquire or release or look, close it. A place stays acquired when the session ends,
    which is how labgrid works (`labgrid-client acquire` returns at once).
    """

    def __init__(self, address: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.address = address
        self._client = _client()
        from labgrid.remote.generated import labgrid_coordinator_pb2
        from labgrid.util.proxy import proxymanager

        self._pb2 = labgrid_coordinator_pb2
        self._loop = asyncio.new_event_loop()
        self._session: Any = None
        self._log = _LabgridLog()
        grpc_address = proxymanager.get_grpc_address(address, default_port=COORDINATOR_PORT)
        try:
            self._session = self._run(self._open(grpc_address), timeout_s)
        except (TimeoutError, self._client.Error) as exc:
            said = self._log.messages[-1] if self._log.messages else (str(exc) or f"no answer within {timeout_s:.0f} s")
            self.close()
            raise LabgridError(f"cannot reach the labgrid coordinator at {address}: {_one_line(said)}") from None

    async def _open(self, grpc_address: str) -> Any:
        # The gRPC channel binds to the running loop, so the session is made inside it.
        session = self._client.ClientSession(grpc_address, asyncio.get_running_loop())
        try:
            await session.start()
        except BaseException:
            await _quietly(session.stop())
            await _quietly(session.close())
            raise
        return session

    def _run(self, coroutine: Any, timeout_s: float = REQUEST_TIMEOUT_S) -> Any:
        return self._loop.run_until_complete(asyncio.wait_for(coroutine, timeout_s))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._session is not None:
            session, self._session = self._session, None
            self._loop.run_until_complete(_quietly(session.stop()))
            self._loop.run_until_complete(_quietly(session.close()))
        self._loop.close()
        self._log.remove()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def identity(self) -> str:
        """Who this client is to the coordinator: `host/user` (LG_HOSTNAME / LG_USERNAME override them)."""
        return f"{self._session.gethostname()}/{self._session.getuser()}"

    def place(self, name: str) -> PlaceInfo:
        """The place named exactly `name` (labgrid-client also matches substrings: a bench wants one board)."""
        places = self._session.places
        if name not in places:
            known = ", ".join(sorted(places)) or "no places yet (labgrid-client -p NAME create)"
            raise LabgridError(f"labgrid place {name!r} does not exist on the coordinator at {self.address} "
                               f"(it has: {known})")
        place = places[name]
        if place.acquired:
            paths = [tuple(p) for p in place.acquired_resources]
        else:
            paths = [(exporter, group, entry.cls, resource)
                     for exporter, groups in sorted(self._session.resources.items())
                     for group, entries in sorted(groups.items())
                     for resource, entry in sorted(entries.items())
                     if place.getmatch((exporter, group, entry.cls, resource)) is not None]
        resources = []
        for exporter, group, cls, resource in paths:
            entry = self._session.resources.get(exporter, {}).get(group, {}).get(resource)
            if entry is None:  # an acquired resource whose exporter went away
                continue
            resources.append(PlaceResource(exporter, group, cls, resource, dict(entry.args), dict(entry.extra),
                                           bool(entry.avail)))
        return PlaceInfo(name, place.acquired or None, dict(place.tags),
                         tuple(str(m) for m in place.matches), tuple(resources))

    def _held_by_other(self, info: PlaceInfo) -> LabgridError:
        return LabgridError(f"place {info.name} is held by {info.holder} (labgrid coordinator {self.address}): "
                            f"ask them to release it (labgrid-client -p {info.name} release)")

    def acquire(self, name: str) -> bool:
        """Acquire the place: True when this call acquired it, False when this host/user already held it."""
        info = self.place(name)
        info.serial()
        if info.holder == self.identity:
            return False
        if info.holder is not None:
            raise self._held_by_other(info)
        grpc = _grpc()
        try:
            self._run(self._session.stub.AcquirePlace(self._pb2.AcquirePlaceRequest(placename=name)))
            self._run(self._session.sync_with_coordinator())
        except grpc.aio.AioRpcError as exc:
            self._run(self._session.sync_with_coordinator())
            now = self.place(name)
            if now.holder not in (None, self.identity):  # taken between our look and our request
                raise self._held_by_other(now) from None
            raise LabgridError(f"cannot acquire place {name}: {exc.details()}") from None
        return True

    def release(self, name: str) -> None:
        """Release the place if this host/user still holds it (never someone who took it since)."""
        grpc = _grpc()
        request = self._pb2.ReleasePlaceRequest(placename=name, fromuser=self.identity)
        try:
            self._run(self._session.stub.ReleasePlace(request))
            self._run(self._session.sync_with_coordinator())
        except grpc.aio.AioRpcError as exc:
            raise LabgridError(f"cannot release place {name}: {exc.details()}") from None


def _grpc() -> Any:
    import grpc

    return grpc


async def _quietly(coroutine: Any) -> None:
    """Tidy up a session that may never have connected: labgrid's stop/close then fail in various ways."""
    with contextlib.suppress(Exception):
        await coroutine


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class HeldPlaces:
    """Places acquired for a run; `tags` of each, and which ones this run acquired (and so releases)."""

    coordinator: str
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    acquired: list[str] = field(default_factory=list)


@contextmanager
def hold_places(coordinator: str, names: Sequence[str],
                notify: Callable[[str], None] | None = None) -> Iterator[HeldPlaces]:
    """Acquire every place (all or none) for the body, and release those acquired here however the body ends.

    A place this host/user already holds (`labgrid-client acquire` beforehand) is used and left acquired.
    """
    say = notify or (lambda _message: None)
    held = HeldPlaces(coordinator)
    if not names:
        yield held
        return
    try:
        with Coordinator(coordinator) as session:
            for name in names:
                held.tags[name] = session.place(name).tags
                if session.acquire(name):
                    held.acquired.append(name)
                    say(f"{name}: acquired on {coordinator}")
                else:
                    say(f"{name}: already held by {session.identity}, used and left acquired")
        yield held
    finally:
        if held.acquired:
            _release_all(coordinator, held.acquired, say)


def _release_all(coordinator: str, names: Sequence[str], say: Callable[[str], None]) -> None:
    try:
        with Coordinator(coordinator) as session:
            for name in names:
                try:
                    session.release(name)
                    say(f"{name}: released")
                except LabgridError as exc:
                    say(f"{name}: {exc}")
    except LabgridError as exc:
        say(f"{', '.join(names)} not released: {exc}")


@dataclass
class PlaceBoard:
    """A place opened for one board: its serial URL and baud rate, and its power switch when it has one."""

    place: str
    coordinator: str
    port: str
    baud: int
    owned: bool
    power_driver: Any = None  # a labgrid PowerProtocol driver, on `target`
    power_absent: str = ""  # why there is none
    target: Any = None  # the local labgrid Target holding the power resource and its driver

    def power_cycle(self) -> None:
        self._power("cycle")

    def power_off(self) -> None:
        self._power("off")

    def power_on(self) -> None:
        self._power("on")

    def _power(self, action: str) -> None:
        if self.power_driver is None:
            raise LabgridError(self.power_absent)
        try:
            getattr(self.power_driver, action)()
        except Exception as exc:  # noqa: BLE001 (labgrid's power backends raise what their transport raises)
            said = _one_line(str(exc)) or type(exc).__name__
            raise LabgridError(f"place {self.place}: power {action} failed: {said}") from None

    def close(self) -> None:
        """Let go of the power driver, and release the place if `open_place` acquired it."""
        try:
            if self.target is not None:
                target, self.target = self.target, None
                target.cleanup()
        finally:
            if self.owned:
                self.owned = False
                with Coordinator(self.coordinator) as session:
                    session.release(self.place)


def serial_url(resource: PlaceResource) -> str:
    """The pyserial URL of a NetworkSerialPort, through labgrid's proxy manager (an ssh forward when isolated)."""
    from labgrid.resource import NetworkSerialPort
    from labgrid.util.proxy import proxymanager

    port = NetworkSerialPort(None, resource.name, **resource.args)
    port.extra = resource.extra
    host, tcp_port = proxymanager.get_host_and_port(port)
    if port.protocol == "rfc2217":
        # As labgrid's SerialDriver opens it: ser2net does not acknowledge SET_CONTROL, pyserial would wait for it.
        return f"rfc2217://{host}:{tcp_port}?ign_set_control"
    if port.protocol == "raw":
        return f"socket://{host}:{tcp_port}"
    raise LabgridError(f"{resource.path}: unknown serial protocol {port.protocol!r} (rfc2217 or raw)")


def _power_driver(place: str, resource: PlaceResource) -> Any:
    """labgrid's driver for the place's power resource, bound to it on a local target (as labgrid-client does)."""
    from labgrid import Target, target_factory

    target = Target(place)
    power = target_factory.make_resource(target, resource.cls, resource.name, resource.args)
    power.extra = resource.extra
    driver = target_factory.class_from_string(POWER_DRIVERS[resource.cls])(target, name=None)
    target.activate(driver)
    return driver


def open_place(coordinator: str, place: str) -> PlaceBoard:
    """Take a place for a board: acquire it unless this host/user holds it already, and map its resources."""
    with Coordinator(coordinator) as session:
        owned = session.acquire(place)
        try:
            info = session.place(place)
        except LabgridError:
            if owned:
                session.release(place)
            raise
    board = PlaceBoard(place, coordinator, port="", baud=0, owned=owned)
    try:
        serial = info.serial()
        board.port = serial_url(serial)
        board.baud = int(serial.args.get("speed", 115_200))
        power = info.power()
        if power is None:
            have = ", ".join(sorted({r.cls for r in info.resources}))
            board.power_absent = (f"place {place} has no power resource labgrid drives from here "
                                  f"({', '.join(POWER_DRIVERS)}; it has {have}): no way to cut its power")
        else:
            board.power_driver = _power_driver(place, power)
            board.target = board.power_driver.target
    except BaseException:
        board.close()
        raise
    return board
