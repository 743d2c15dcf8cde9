"""Bastion: secure-by-default async users and authentication for Python.

Run it as a service (``bastion serve``) or embed it in a FastAPI app::

    from bastion import Bastion, Settings

    auth = Bastion(Settings())
    auth.install(app)
"""

from __future__ import annotations

from bastion.api.app import Bastion, create_app
from bastion.config import Settings
from bastion.errors import BastionError
from bastion.types import Principal, User

__all__ = ["Bastion", "BastionError", "Principal", "Settings", "User", "create_app"]
__version__ = "0.1.0"
