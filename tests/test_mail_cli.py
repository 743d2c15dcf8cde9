"""The command line added for mail."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from bastion.cli import app as cli_app

MAIL_VARIABLES = [
    "BASTION_PUBLIC_URL",
    "BASTION_SMTP_URL",
    "BASTION_MAIL_FROM",
    "BASTION_EMAIL_VERIFICATION",
    "BASTION_RESET_TOKEN_TTL",
    "BASTION_VERIFY_TOKEN_TTL",
    "BASTION_RECOVERY_RATE_LIMIT",
]


def test_mail_help_lists_test() -> None:
    result = CliRunner().invoke(cli_app, ["mail", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert re.search(r"\btest\b", result.output)


def test_serve_help_lists_the_mail_variables() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--help"], env={"COLUMNS": "200"})
    listed = set(re.findall(r"BASTION_[A-Z_]+[A-Z]", result.output))
    assert set(MAIL_VARIABLES) <= listed
