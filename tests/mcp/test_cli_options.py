"""`wedge mcp` with bad options ends with one error line before it serves anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from wedge.cli import main


@pytest.mark.parametrize(("options", "message"), [
    (["--workspace", "{tmp}/absent"], "is not a folder"),
    (["--http", "localhost"], "expected HOST:PORT"),
    (["--http", "192.0.2.7:8800"], "give a token"),
    (["--bridge", "http://127.0.0.1:8765"], "expected the bridge's WebSocket sink"),
    (["--log", "/tmp/elsewhere.log"], "outside the workspace"),
])
def test_bad_options_end_with_one_error_line(tmp_path: Path, options: list[str], message: str) -> None:
    args = ["mcp", *(["--workspace", str(tmp_path)] if "--workspace" not in options else []),
            *(o.replace("{tmp}", str(tmp_path)) for o in options)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
