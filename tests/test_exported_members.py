"""The curated public surface of ``bastion`` (httpx's ``test_exported_members``)."""

from __future__ import annotations

import importlib
from importlib.resources import files

import pytest

import bastion

EXPECTED = [
    "Bastion",
    "BastionError",
    "MailTransport",
    "Principal",
    "Settings",
    "User",
    "create_app",
]


def test_all_lists_exactly_the_public_names() -> None:
    assert bastion.__all__ == EXPECTED


def test_all_is_sorted() -> None:
    assert bastion.__all__ == sorted(bastion.__all__)


@pytest.mark.parametrize("name", EXPECTED)
def test_every_exported_name_is_importable(name: str) -> None:
    module = importlib.import_module("bastion")
    assert getattr(module, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from bastion import {name}", namespace)  # noqa: S102 - a fixed, known name
    assert namespace[name] is getattr(bastion, name)


def test_exported_objects_say_they_are_public() -> None:
    for name in EXPECTED:
        assert getattr(bastion, name).__module__.startswith("bastion.")


def test_the_package_ships_py_typed() -> None:
    assert files("bastion").joinpath("py.typed").is_file()


def test_the_package_has_a_version() -> None:
    assert isinstance(bastion.__version__, str)
    assert bastion.__version__.count(".") == 2
