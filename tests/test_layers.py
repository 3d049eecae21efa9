"""The layer rules of pyproject's [tool.importlinter] hold for the package, and a wrong import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def _lint(source_root: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run([*LINT, "--config", str(config), "--no-cache"], cwd=source_root, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_every_import_points_down_the_layers() -> None:
    result = _lint(REPO_ROOT, REPO_ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_an_import_from_the_board_layer_up_to_the_cli_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "wedge", copy / "wedge", ignore=shutil.ignore_patterns("*.onnx", "*.npz", "__pycache__"))
    (copy / "wedge" / "boards" / "shortcut.py").write_text("from wedge.cli import main\n")
    (copy / "wedge" / "firmware" / "protocol" / "shortcut.py").write_text("from wedge.boards import load\n")
    result = _lint(copy, REPO_ROOT / "pyproject.toml")
    assert result.returncode != 0
    assert "wedge.boards.shortcut -> wedge.cli" in result.stdout
    assert "wedge.firmware.protocol.shortcut -> wedge.boards" in result.stdout


def test_no_unused_or_undefined_names_and_sorted_imports() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F,I", "--output-format", "concise",
                             "wedge", "tests", "bench"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
