"""The workspace policy on its own: relative paths are the workspace's, symlinks out of it are refused (also inside
a folder given as data), writes and flashing need their flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wedge.mcp.errors import OutsideWorkspace, PermissionRefused
from wedge.mcp.policy import Policy


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    (tmp_path / "ws" / "data").mkdir(parents=True)
    return Policy.create(tmp_path / "ws")


def test_relative_paths_are_taken_from_the_workspace_and_dot_dot_cannot_leave_it(policy: Policy) -> None:
    assert policy.readable("data") == policy.workspace / "data"
    assert policy.readable("data/../data/x.npz") == policy.workspace / "data" / "x.npz"
    with pytest.raises(OutsideWorkspace, match="outside the workspace"):
        policy.readable("data/../../elsewhere")
    with pytest.raises(OutsideWorkspace):
        policy.readable("/etc/hostname")


def test_a_symlink_out_of_the_workspace_is_refused_even_inside_a_data_folder(policy: Policy, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.pem").write_text("private")
    os.symlink(secret, policy.workspace / "escape")
    with pytest.raises(OutsideWorkspace):
        policy.readable("escape/key.pem")
    os.symlink(secret / "key.pem", policy.workspace / "data" / "img.png")
    with pytest.raises(OutsideWorkspace, match="links to"):
        policy.readable("data")
    # A link that stays inside is fine.
    os.unlink(policy.workspace / "data" / "img.png")
    (policy.workspace / "real.png").write_bytes(b"x")
    os.symlink(policy.workspace / "real.png", policy.workspace / "data" / "img.png")
    assert policy.readable("data") == policy.workspace / "data"


def test_writing_and_flashing_need_their_flags(tmp_path: Path, policy: Policy) -> None:
    with pytest.raises(PermissionRefused, match="--allow-write"):
        policy.writable("out", "quantize")
    with pytest.raises(PermissionRefused, match="--allow-flash"):
        policy.require_flash("flash")
    allowed = Policy.create(policy.workspace, allow_write=True, allow_flash=True)
    assert allowed.writable("out", "quantize") == allowed.workspace / "out"
    with pytest.raises(OutsideWorkspace):
        allowed.writable("../out", "quantize")
    allowed.require_flash("flash")
