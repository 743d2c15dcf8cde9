"""The generated mail secret in the data directory."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bastion.storage.secretfile import load_or_create_secret


def test_the_secret_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path / "data", "mail.secret")
    assert len(first) == 32
    path = tmp_path / "data" / "mail.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert load_or_create_secret(tmp_path / "data", "mail.secret") == first


def test_a_file_holding_too_little_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mail.secret").write_text("c2hvcnQ=\n")
    with pytest.raises(ValueError, match="fewer than 32"):
        load_or_create_secret(tmp_path, "mail.secret")
