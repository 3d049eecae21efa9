"""The child process that holds the ASan/UBSan-built device core: calls arrive pickled on stdin, results leave
pickled on stdout. Started with the ASan runtime preloaded and Python's allocator on malloc, so every buffer the
tests hand the C code has redzones; a sanitizer report ends the process and the parent shows it."""

from __future__ import annotations

import pickle
import struct
import sys
import traceback
from typing import BinaryIO

_LENGTH = struct.Struct("<I")


def _read(stream: BinaryIO) -> object | None:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    return pickle.loads(stream.read(size))


def _write(stream: BinaryIO, value: object) -> None:
    data = pickle.dumps(value)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def main() -> None:
    module_dir, repo_root = sys.argv[1], sys.argv[2]
    sys.path[:0] = [module_dir, repo_root]
    from tests.device_c.host_api import HostApi

    api = HostApi()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies on the pipe
    while (call := _read(stdin)) is not None:
        name, args, kwargs = call  # type: ignore[misc]
        try:
            _write(stdout, (True, getattr(api, name)(*args, **kwargs)))
        except Exception as exc:  # a Python-side error in the harness: hand it back
            _write(stdout, (False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


if __name__ == "__main__":
    main()
