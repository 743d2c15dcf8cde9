"""Creating the first admin from the command line."""

from __future__ import annotations

from pydantic import ValidationError

from bastion.api.schemas import UserCreate
from bastion.bootstrap import build
from bastion.config import Settings
from bastion.errors import BastionError
from bastion.types import ADMIN


async def create_admin_user(
    settings: Settings, username: str, email: str, age: int, password: str
) -> int:
    """Register an admin with the same validation as ``POST /users``.

    Raises:
        ValueError: with a printable reason when anything is refused.
    """
    try:
        body = UserCreate(username=username, email=email, age=age, password=password)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(reasons) from None
    container = build(settings)
    await container.start()
    try:
        user = await container.user_service.register(
            username=body.username,
            email=body.email,
            age=body.age,
            password=body.password,
            permissions=(ADMIN,),
        )
    except BastionError as exc:
        raise ValueError(exc.message) from None
    finally:
        await container.stop()
    return user.id
