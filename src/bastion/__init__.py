"""Bastion: secure-by-default async users and authentication for Python.

Run it as a service (``bastion serve``) or embed it in a FastAPI app::

    from bastion import Bastion, Settings

    auth = Bastion(Settings())
    auth.install(app)

The names below are imported on first use, so ``bastion.security`` or the
command line do not pay for FastAPI and SQLAlchemy until they need them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.api.app import Bastion, create_app
    from bastion.config import Settings
    from bastion.errors import BastionError
    from bastion.storage.mailport import MailTransport
    from bastion.types import Principal, User

__all__ = [
    "Bastion",
    "BastionError",
    "MailTransport",
    "Principal",
    "Settings",
    "User",
    "create_app",
]
__version__ = "0.1.0"

_WHERE = {
    "Bastion": "bastion.api.app",
    "create_app": "bastion.api.app",
    "Settings": "bastion.config",
    "BastionError": "bastion.errors",
    "MailTransport": "bastion.storage.mailport",
    "Principal": "bastion.types",
    "User": "bastion.types",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bastion' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
