"""fastapi-users in its documented SQLAlchemy + JWT setup, with the docs' ``SECRET``.

``bench/baselines/fastapi_users_app.py`` follows the documentation but
generates the secret; the documentation itself writes ``SECRET = "SECRET"``,
which is what a team copying it ships. Runs in the peers' virtual
environment (fastapi-users cannot share Bastion's dependency pins).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Imported by name: fastapi-users lives in the peers' venv, not Bastion's.
documented: Any = import_module("bench.baselines.fastapi_users_app")
app = documented.app

documented.SECRET = "SECRET"  # read by get_jwt_strategy() at each request
documented.UserManager.reset_password_token_secret = "SECRET"
documented.UserManager.verification_token_secret = "SECRET"

__all__ = ["app"]
