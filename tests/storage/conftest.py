"""Fixtures of the storage tests: an instance's parts, built but not serving."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bastion.bootstrap import Container, build
from bastion.storage.migrate import upgrade_sqlite
from bastion.types import Clock
from tests.conftest import SettingsFactory

ContainerFactory = Callable[..., Awaitable[Container]]


@pytest.fixture
async def make_container(make_settings: SettingsFactory) -> AsyncIterator[ContainerFactory]:
    """Build containers on this test's backend (migrated, background tasks not
    started); all are stopped afterwards."""
    built: list[Container] = []

    async def factory(*, clock: Clock | None = None, **overrides: Any) -> Container:
        settings = await make_settings(**overrides)
        container = build(settings, clock=clock)
        built.append(container)
        if settings.is_sqlite:
            await upgrade_sqlite(container.engine)
        return container

    yield factory
    for container in built:
        await container.stop()
