"""The DUT client against scripted devices on a pty: silence, garbage and a busy port fail with a clear reason."""

from __future__ import annotations

import os
import threading
import tty
from collections.abc import Callable, Iterator

import pytest

from wedge.hil.dut_client import DutClient
from wedge.hil.errors import DutError


@pytest.fixture
def fake_dut() -> Iterator[Callable[[Callable[[bytes], bytes]], str]]:
    """A pty whose far end answers each command (text up to `%`) with what `answer` returns."""
    stop = threading.Event()
    fds: list[int] = []

    def start(answer: Callable[[bytes], bytes]) -> str:
        master, slave = os.openpty()
        tty.setraw(slave)
        fds.extend([master, slave])

        def serve() -> None:
            pending = b""
            while not stop.is_set():
                try:
                    data = os.read(master, 4096)
                except OSError:
                    return
                pending += data
                while b"%" in pending:
                    command, pending = pending.split(b"%", 1)
                    os.write(master, answer(command))

        threading.Thread(target=serve, daemon=True).start()
        return os.ttyname(slave)

    yield start
    stop.set()
    for fd in fds:
        os.close(fd)


def test_a_dut_that_never_answers_fails_with_a_timeout_and_what_it_printed(fake_dut) -> None:
    port = fake_dut(lambda command: b"booting...\r\n")
    with DutClient(port, timeout_s=0.5) as client, pytest.raises(DutError, match=r"did not answer b'name%' with m-ready within 0.5 s .*booting"):
        client.name()


def test_a_dut_answering_garbage_results_is_refused(fake_dut) -> None:
    port = fake_dut(lambda command: b"m-warmup-start-0\r\nm-lap-us-1\r\nm-lap-us-9\r\nm-results-[0.1,zz]\r\nm-ready\r\n")
    with DutClient(port, timeout_s=2) as client, pytest.raises(DutError, match="answered garbage: results line with a non-number 'zz'"):
        client.infer(1, 0)


def test_an_infer_without_timestamps_is_reported(fake_dut) -> None:
    port = fake_dut(lambda command: b"m-results-[1.0]\r\nm-ready\r\n")
    with DutClient(port, timeout_s=2) as client, pytest.raises(DutError, match="0 lap line"):
        client.infer(1, 0)


def test_a_dut_error_line_is_the_reason(fake_dut) -> None:
    port = fake_dut(lambda command: b"e-[Unknown command: name]\r\nm-ready\r\n")
    with DutClient(port, timeout_s=2) as client, pytest.raises(DutError, match="Unknown command: name"):
        client.name()


def test_a_port_held_by_another_client_is_busy(fake_dut) -> None:
    port = fake_dut(lambda command: b"m-ready\r\n")
    with DutClient(port) as first, pytest.raises(DutError, match="is busy"):
        DutClient(port).open()
    assert first.port == port


def test_an_absent_port_cannot_be_opened() -> None:
    with pytest.raises(DutError, match="serial port /dev/ttyNOPE does not exist"):
        DutClient("/dev/ttyNOPE").open()
