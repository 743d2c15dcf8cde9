"""The settings added for mail: each wrong value is refused with a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bastion import Settings


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **values)


def test_the_defaults_are_the_specs(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.public_url == "http://localhost:8000"
    assert s.smtp_url is None
    assert s.mail_from == "Bastion <no-reply@localhost>"
    assert s.email_verification == "optional"
    assert (s.reset_token_ttl, s.verify_token_ttl) == (1800, 86400)
    assert s.recovery_rate_limit == "5/minute"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("reset_token_ttl", 59),
        ("verify_token_ttl", 10),
        ("public_url", "ftp://example.com"),
        ("public_url", "https://example.com/?a=1"),
        ("smtp_url", "http://relay.example"),
        ("smtp_url", "smtp://relay.example:notaport"),
        ("smtp_url", "smtp://relay.example?starttls=maybe"),
        ("mail_from", "nobody"),
        ("mail_from", "A <a@example.com>\r\nBcc: x@example.com"),
        ("email_verification", "sometimes"),
        ("recovery_rate_limit", "lots"),
        ("mail_secret", "too short"),
    ],
)
def test_wrong_values_are_refused(tmp_path: Path, name: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        settings(tmp_path, **{name: value})


def test_accepted_values(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        reset_token_ttl=60,
        public_url="https://login.example.com/",
        smtp_url="smtp://u:p@relay.example:587?starttls=require",
        email_verification="required",
    )
    assert s.public_url == "https://login.example.com"
    assert s.smtp_url is not None
    assert "p@relay" not in repr(s)  # the password is masked
    assert settings(tmp_path, smtp_url="smtps://relay.example").smtp_url is not None
