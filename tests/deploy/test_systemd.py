"""The example unit (deploy/systemd/bastion@.service) parses and is hardened.

systemd is not started: ``systemd-analyze verify`` loads the unit as the
service manager would, and reports unknown keys and unparsable values.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.deploy.conftest import REPO, SYSTEMD_UNIT

BASTION = str(Path(sys.executable).with_name("bastion"))
INSTALLED_BASTION = "/opt/bastion/.venv/bin/bastion"


def directives(text: str) -> list[tuple[str, str]]:
    """``(key, value)`` of every directive line, in order."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            found.append((key.strip(), value.strip()))
    return found


def test_the_unit_runs_bastion_serve_on_its_instance_port_from_an_environment_file() -> None:
    settings = dict(directives(SYSTEMD_UNIT.read_text()))
    assert settings["ExecStart"] == f"{INSTALLED_BASTION} serve --host 127.0.0.1 --port %i"
    assert settings["EnvironmentFile"] == "/etc/bastion/bastion.env"
    assert settings["User"] == "bastion"
    assert settings["KillSignal"] == "SIGTERM"
    example = REPO / "deploy" / "systemd" / "bastion.env.example"
    names = [key for key, _ in directives(example.read_text())]
    assert names
    assert all(name.startswith("BASTION_") for name in names)


def test_the_unit_is_hardened() -> None:
    pairs = directives(SYSTEMD_UNIT.read_text())
    settings = dict(pairs)
    assert settings["NoNewPrivileges"] == "yes"
    assert settings["ProtectSystem"] == "strict"
    assert settings["ReadWritePaths"] == "/var/lib/bastion"
    assert settings["PrivateTmp"] == "yes"
    assert settings["PrivateDevices"] == "yes"
    assert settings["ProtectHome"] == "yes"
    assert settings["CapabilityBoundingSet"] == ""
    assert settings["UMask"] == "0077"
    assert ("Environment", "BASTION_DATA_DIR=/var/lib/bastion") in pairs


def test_the_unit_has_its_three_sections_in_order() -> None:
    sections = [
        line.strip() for line in SYSTEMD_UNIT.read_text().splitlines() if line.startswith("[")
    ]
    assert sections == ["[Unit]", "[Service]", "[Install]"]


def test_systemd_accepts_every_line_of_the_unit(tmp_path: Path) -> None:
    """Every key is known and every value parses (systemd-analyze verify, part
    of systemd; where it is missing, the checks above are what remains)."""
    text = SYSTEMD_UNIT.read_text()
    assert INSTALLED_BASTION in text
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        assert all(key.isidentifier() for key, _ in directives(text))
        return
    # verify also checks that ExecStart's program exists: point it at ours.
    unit = tmp_path / SYSTEMD_UNIT.name
    unit.write_text(text.replace(INSTALLED_BASTION, BASTION))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "bastion@" not in output, output
