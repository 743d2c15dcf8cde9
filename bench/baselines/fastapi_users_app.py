"""fastapi-users set up the way its documentation's SQLAlchemy example does it.

SQLite through SQLAlchemy (aiosqlite), the JWT strategy with the bearer
transport, ``UUIDIDMixin`` users, the register and auth routers, and a
``current_active_user`` dependency guarding ``GET /protected``. Runs only in
the peer's own virtual environment (``bench/.peers-venv``, built by
``bench.run``): fastapi-users is not a Bastion dependency.

Differences from the docs' example: the secret is generated at start-up, the
database file is given by ``BENCH_FU_DATABASE_URL``, the ``on_after_*`` hooks
print nothing, and ``GET /protected`` and ``GET /health`` are added.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

DATABASE_URL = os.environ.get("BENCH_FU_DATABASE_URL", "sqlite+aiosqlite:///./fastapi-users.db")
SECRET = secrets.token_urlsafe(32)


# -- db.py --------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


engine = create_async_engine(DATABASE_URL)
async_session_maker = async_sessionmaker(engine, expire_on_commit=False)


async def create_db_and_tables() -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
    async with async_session_maker() as session:
        yield session


async def get_user_db(session: AsyncSession = Depends(get_async_session)):
    yield SQLAlchemyUserDatabase(session, User)


# -- schemas.py -----------------------------------------------------------------------


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class UserUpdate(schemas.BaseUserUpdate):
    pass


# -- users.py -------------------------------------------------------------------------


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


async def get_user_manager(user_db: SQLAlchemyUserDatabase = Depends(get_user_db)):
    yield UserManager(user_db)


bearer_transport = BearerTransport(tokenUrl="auth/jwt/login")


def get_jwt_strategy() -> JWTStrategy:
    return JWTStrategy(secret=SECRET, lifetime_seconds=3600)


auth_backend = AuthenticationBackend(
    name="jwt",
    transport=bearer_transport,
    get_strategy=get_jwt_strategy,
)

fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])
current_active_user = fastapi_users.current_user(active=True)


# -- app.py ---------------------------------------------------------------------------


@asynccontextmanager
async def lifespan(app: FastAPI):
    await create_db_and_tables()
    yield


app = FastAPI(lifespan=lifespan)
app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth/jwt", tags=["auth"])
app.include_router(
    fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth", tags=["auth"]
)
app.include_router(
    fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users", tags=["users"]
)


@app.get("/protected")
async def protected(user: User = Depends(current_active_user)) -> dict[str, str]:
    """The blog post's example answer for the authenticated user."""
    return {"message": f"Hello user {user.id}"}


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness (benchmark addition)."""
    return {"status": "ok"}
