"""The WebAuthn settings and the MFA key setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bastion.bootstrap_mfa import mfa_key
from bastion.config import Settings
from bastion.errors import ConfigurationError


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_rp_id_and_origin_default_from_the_public_url(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings.public_url == "http://localhost:8000"
    assert settings.resolved_webauthn_rp_id == "localhost"
    assert settings.resolved_webauthn_origins == ("http://localhost:8000",)
    other = _settings(tmp_path, public_url="https://auth.example.com/base/")
    assert other.resolved_webauthn_rp_id == "auth.example.com"
    assert other.resolved_webauthn_origins == ("https://auth.example.com",)


def test_configured_rp_id_and_origins_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_WEBAUTHN_RP_ID", "example.com")
    monkeypatch.setenv("BASTION_WEBAUTHN_ORIGINS", "https://a.example.com, https://b.example.com/")
    settings = _settings(tmp_path)
    assert settings.resolved_webauthn_rp_id == "example.com"
    assert settings.resolved_webauthn_origins == ("https://a.example.com", "https://b.example.com")


def test_a_public_url_that_is_not_absolute_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="http:// or https:// URL"):
        _settings(tmp_path, public_url="localhost:8000")


def test_a_configured_mfa_key_must_be_32_bytes(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="BASTION_MFA_ENCRYPTION_KEY"):
        mfa_key(_settings(tmp_path, mfa_encryption_key="c2hvcnQ="))
    assert len(mfa_key(_settings(tmp_path))) == 32
