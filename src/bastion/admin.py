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
            email_verified=True,
        )
    except BastionError as exc:
        raise ValueError(exc.message) from None
    finally:
        await container.stop()
    return user.id


#: ``bastion mail test`` waits this long for the outcome of the first attempt.
MAIL_TEST_TIMEOUT = 60.0


async def send_test_mail(settings: Settings, address: str) -> tuple[bool, str]:
    """Queue a test mail to ``address``, try to send it now, and say how it went.

    Returns:
        ``(sent, report)``: whether the transport accepted it, and a line to print.

    Raises:
        ValueError: ``address`` is not an email address.
    """
    import asyncio

    from email_validator import EmailNotValidError, validate_email

    from bastion.storage.mailport import PENDING, SENT

    try:
        address = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not an email address: {exc}") from None
    container = build(settings)
    await container.start()
    try:
        mail = container.mail
        where = getattr(mail.transport, "describe", lambda: type(mail.transport).__name__)()
        row_id = await mail.service.enqueue_to("test", address)
        # This process's courier may take it first; either way, wait for the
        # first attempt's outcome in the outbox.
        await mail.courier.run_once(only=row_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAIL_TEST_TIMEOUT
        while True:
            found = await mail.outbox.status(row_id)
            assert found is not None
            status, attempts, error = found
            if status != PENDING or attempts > 0 or loop.time() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await container.stop()
    if status == SENT:
        return True, f"sent a test mail to {address} through {where}"
    if status == PENDING and attempts == 0:
        return False, f"queued a test mail to {address}; not yet sent through {where}"
    return False, (
        f"could not send the test mail to {address} through {where}: {error}; "
        "it stays queued and is retried with backoff"
    )
