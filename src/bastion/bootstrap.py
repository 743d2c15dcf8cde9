"""The one place that turns settings into concrete backends and services.

Both the HTTP app and the CLI build their parts here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.bootstrap_housekeeping import build_housekeeper
from bastion.bootstrap_limits import LimitParts, RateRules, build_throttle
from bastion.bootstrap_mail import MailParts, build_mail
from bastion.bootstrap_mfa import MfaParts, build_mfa
from bastion.config import Settings
from bastion.errors import ConfigurationError, Unavailable
from bastion.security.hashpool import HashPool
from bastion.security.keys import KeyRing, key_from_secret
from bastion.security.passwords import PasswordHasher
from bastion.security.policy import PasswordPolicy, common_passwords
from bastion.security.revocation import RevocationList
from bastion.security.tokens import AccessTokenCodec
from bastion.services.auth import AuthService
from bastion.services.browser_sessions import BrowserSessionService
from bastion.services.devices import KnownDevices
from bastion.services.events import EventRecorder
from bastion.services.housekeeping import Housekeeper
from bastion.services.notify import MailNotifier
from bastion.services.passwords import PasswordService
from bastion.services.revocations import RevocationFeed
from bastion.services.users import UserService
from bastion.storage.database import create_engine, guarded
from bastion.storage.keyfile import KeyFile, ensure_private_dir
from bastion.storage.limits_memory import MemoryRateLimitStore
from bastion.storage.limits_redis import RedisRateLimitStore
from bastion.storage.mailport import MailTransport
from bastion.storage.migrate import is_current, upgrade_sqlite
from bastion.storage.protocols import RateLimitStore, Revocation
from bastion.storage.redis_revocations import RedisRevocationBus
from bastion.storage.sql_browser_sessions import SqlBrowserSessionStore
from bastion.storage.sql_devices import SqlDeviceTokenStore
from bastion.storage.sql_events import SqlEventStore
from bastion.storage.sql_sessions import SqlRevocationStore, SqlSessionStore
from bastion.storage.sql_users import SqlUserStore
from bastion.types import Clock, SystemClock

log = logging.getLogger("bastion")

#: How often each instance picks up revocations made by other instances.
REVOCATION_POLL_SECONDS = 1.0
#: How often each instance looks for a rotated key (SPEC: within 60 s).
KEY_RELOAD_SECONDS = 15.0
#: How often idle clients are dropped from the in-process limiter.
LIMIT_PRUNE_SECONDS = 30.0
#: First background housekeeping run after start, then the pause between runs.
HOUSEKEEPING_FIRST_SECONDS = 60.0
HOUSEKEEPING_SECONDS = 600.0


def build_key_ring(settings: Settings, key_file: KeyFile, now: float) -> KeyRing:
    """The signing keys: the configured secret, or the data directory's keys."""
    if settings.secret_key is not None and settings.jwt_algorithm == "HS256":
        return KeyRing([key_from_secret(settings.secret_key.get_secret_value().encode("utf-8"))])
    return key_file.load_or_create(settings.jwt_algorithm, now=now)


@dataclass
class Container:
    """Everything one running instance is made of."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    users: SqlUserStore
    hash_pool: HashPool
    passwords: PasswordService
    codec: AccessTokenCodec
    key_file: KeyFile
    revocations: RevocationList
    revocation_store: SqlRevocationStore
    revocation_feed: RevocationFeed
    housekeeper: Housekeeper
    events: EventRecorder
    user_service: UserService
    auth_service: AuthService
    rate_store: RateLimitStore
    local_rate_store: MemoryRateLimitStore
    rules: RateRules
    mail: MailParts
    mfa: MfaParts
    browser_sessions: BrowserSessionService
    redis_limits: RedisRateLimitStore | None = None
    revocation_bus: RedisRevocationBus | None = None
    throttle_redis: Redis | None = None
    #: Whether one revocation sync has succeeded since start; until then the
    #: instance refuses bearer routes (503) and is not ready (issue 17 #8).
    revocations_synced: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _key_mtime: float = 0.0

    async def start(self) -> None:
        """Migrate SQLite, load revocations, warm up, start background work."""
        if self.settings.is_sqlite:
            await upgrade_sqlite(self.engine)
        else:
            await self._check_migrated()
        with contextlib.suppress(Unavailable):
            await self.sync_revocations()
        # The dummy hash of unknown users uses the scheme most stored hashes
        # use, so a changed BASTION_PASSWORD_HASHER does not make unknown
        # names cost other than dormant accounts (issue 17 #11).
        schemes: dict[str, int] = {}
        with contextlib.suppress(Unavailable):
            schemes = await self.users.hash_schemes()
        await self.passwords.warm_up(schemes)
        self.events.start()
        self.mail.courier.start()
        self._key_mtime = self.key_file.mtime()
        self._tasks.append(
            asyncio.create_task(self._poll_revocations(), name="bastion-revocations")
        )
        self._tasks.append(asyncio.create_task(self._poll_keys(), name="bastion-keys"))
        self._tasks.append(asyncio.create_task(self._prune_limits(), name="bastion-limits"))
        self._tasks.append(asyncio.create_task(self._housekeep(), name="bastion-housekeeping"))
        if self.revocation_bus is not None:
            self._tasks.append(
                asyncio.create_task(
                    self.revocation_bus.listen(
                        self._apply_revocation, on_connect=self._resync_after_reconnect
                    ),
                    name="bastion-revocation-bus",
                )
            )

    async def stop(self) -> None:
        """Flush events, stop background work, release connections and threads."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.mail.courier.stop()
        await self.events.stop()
        if self.revocation_bus is not None:
            await self.revocation_bus.close()
        if self.redis_limits is not None:
            await self.redis_limits.close()
        if self.throttle_redis is not None:
            await self.throttle_redis.aclose()
        await self.engine.dispose()
        self.hash_pool.close()

    async def _check_migrated(self) -> None:
        # PostgreSQL is migrated by `bastion migrate`, once per upgrade, not by
        # each of several starting instances at once.
        try:
            current = await guarded(is_current)(self.engine)
        except Unavailable:
            log.warning("database unreachable at start; requests answer 503 until it is back")
            return
        if not current:
            raise ConfigurationError(
                "BASTION_DATABASE_URL: the database is not at the latest schema; "
                "run `bastion migrate`"
            )

    def _apply_revocation(self, mark: Revocation) -> None:
        self.revocations.apply(mark.subject, mark.min_version, mark.expires_at)

    async def sync_revocations(self) -> None:
        """Apply revocations recorded since the last sync (by any instance).

        Raises:
            Unavailable: the database cannot be reached.
        """
        await self.revocation_feed.sync()
        self.revocations_synced = True

    async def _resync_after_reconnect(self) -> None:
        # Marks published while the listener was away are lost to it; the
        # database log has them.
        try:
            await self.sync_revocations()
        except Unavailable:
            pass
        except Exception:
            log.exception("revocation sync after a Redis reconnect failed")

    async def _poll_revocations(self) -> None:
        while True:
            await asyncio.sleep(REVOCATION_POLL_SECONDS)
            try:
                await self.sync_revocations()
            except Unavailable:
                continue
            except Exception:
                log.exception("revocation sync failed")

    async def _prune_limits(self) -> None:
        while True:
            await asyncio.sleep(LIMIT_PRUNE_SECONDS)
            self.local_rate_store.prune(self.clock.now())
            if isinstance(self.rate_store, MemoryRateLimitStore):
                self.rate_store.prune(self.clock.now())

    async def _housekeep(self) -> None:
        await asyncio.sleep(HOUSEKEEPING_FIRST_SECONDS)
        while True:
            try:
                removed = await self.housekeeper.run()
            except Unavailable:
                removed = None
            except Exception:
                log.exception("housekeeping failed")
                removed = None
            if removed and any(removed.values()):
                log.info("housekeeping removed %s", removed)
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    def reload_keys(self) -> bool:
        """Pick up a rotation (``bastion keys rotate``); ``True`` if the ring changed."""
        mtime = self.key_file.mtime()
        if mtime == self._key_mtime:
            return False
        self.codec.ring = build_key_ring(self.settings, self.key_file, self.clock.now())
        self._key_mtime = mtime
        return True

    async def _poll_keys(self) -> None:
        while True:
            await asyncio.sleep(KEY_RELOAD_SECONDS)
            try:
                self.reload_keys()
            except Exception:
                log.exception("key reload failed")


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    hash_pool: HashPool | None = None,
    mail_transport: MailTransport | None = None,
) -> Container:
    """Build an instance's parts from ``settings``. Nothing runs until ``start()``.

    Raises:
        ConfigurationError: when the data directory or keys cannot be set up.
    """
    clock = clock or SystemClock()
    try:
        ensure_private_dir(settings.data_dir)
    except OSError as exc:
        raise ConfigurationError(
            f"BASTION_DATA_DIR: cannot use {settings.data_dir}: {exc}"
        ) from exc
    key_file = KeyFile(settings.data_dir)
    try:
        ring = build_key_ring(settings, key_file, clock.now())
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigurationError(f"BASTION_DATA_DIR: cannot load signing keys: {exc}") from exc
    engine = create_engine(settings.resolved_database_url)
    users = SqlUserStore(engine)
    sessions = SqlSessionStore(engine)
    pool = hash_pool or HashPool()
    passwords = PasswordService(
        PasswordHasher(settings.password_hasher),
        pool,
        PasswordPolicy(min_length=settings.password_min_length, blocklist=common_passwords()),
    )
    codec = AccessTokenCodec(
        ring,
        issuer=settings.issuer,
        audience=settings.audience,
        ttl=settings.access_token_ttl,
        clock=clock,
    )
    revocations = RevocationList()
    revocation_store = SqlRevocationStore(engine)
    events = EventRecorder(SqlEventStore(engine), clock)
    bus = RedisRevocationBus(settings.redis_url) if settings.redis_url else None
    throttle_redis = (
        Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        if settings.redis_url
        else None
    )
    throttle = build_throttle(throttle_redis, settings)

    async def end_sessions(user_id: int) -> int:
        # A reset ends every session through the one revocation path
        # (database log, this instance's list, the Redis broadcast).
        return await auth_service.end_all_sessions(user_id)

    mail = build_mail(
        settings,
        engine,
        users=users,
        passwords=passwords,
        events=events,
        clock=clock,
        transport=mail_transport,
        end_sessions=end_sessions,
    )
    user_service = UserService(
        users,
        passwords,
        events,
        revocations,
        clock,
        settings.access_token_ttl,
        bus,
        throttle=throttle,
        mail=mail.service,
        verify_at_registration=settings.email_verification != "off",
    )
    auth_service = AuthService(
        users=users,
        sessions=sessions,
        passwords=passwords,
        codec=codec,
        revocations=revocations,
        events=events,
        clock=clock,
        refresh_ttl=settings.refresh_token_ttl,
        reuse_interval=settings.refresh_reuse_interval,
        broadcaster=bus,
        devices=KnownDevices(SqlDeviceTokenStore(engine), clock),
        throttle=throttle,
        require_verified_email=settings.email_verification == "required",
    )
    mfa = build_mfa(
        settings,
        engine=engine,
        users=users,
        passwords=passwords,
        auth=auth_service,
        events=events,
        clock=clock,
        redis=throttle_redis,
    )
    # An administrator's MFA reset is told to the user through the outbox.
    mfa.mfa.notifier = MailNotifier(mail.service)
    browser_store = SqlBrowserSessionStore(engine)
    housekeeper = build_housekeeper(
        settings,
        engine,
        clock,
        mail=mail,
        browser_sessions=browser_store,
        challenges=mfa.challenges,
    )
    limits = LimitParts.of(settings)
    return Container(
        mfa=mfa,
        rate_store=limits.redis or limits.local,
        local_rate_store=limits.local,
        redis_limits=limits.redis,
        revocation_bus=bus,
        throttle_redis=throttle_redis,
        rules=RateRules.of(settings),
        mail=mail,
        settings=settings,
        clock=clock,
        engine=engine,
        users=users,
        hash_pool=pool,
        passwords=passwords,
        codec=codec,
        key_file=key_file,
        revocations=revocations,
        revocation_store=revocation_store,
        revocation_feed=RevocationFeed(revocation_store, revocations, clock),
        housekeeper=housekeeper,
        events=events,
        user_service=user_service,
        auth_service=auth_service,
        browser_sessions=BrowserSessionService(browser_store, clock),
    )
