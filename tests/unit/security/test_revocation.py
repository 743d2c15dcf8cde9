"""RevocationList: revoked sessions and per-user minimum versions, with expiry."""

from __future__ import annotations

from bastion.security.revocation import DELETED, RevocationList
from bastion.types import Principal


def principal(user_id: int = 1, session_id: str = "s1") -> Principal:
    """A verified caller."""
    return Principal(user_id=user_id, session_id=session_id, token_id="j")


def test_empty_list_revokes_nothing() -> None:
    revocations = RevocationList()
    assert not revocations.is_revoked(principal(), 0)
    assert len(revocations) == 0


def test_revoked_session_kills_every_token_of_the_session() -> None:
    revocations = RevocationList()
    revocations.revoke_session("s1", expires_at=100)
    assert revocations.is_revoked(principal(session_id="s1"), 0)
    assert revocations.is_revoked(principal(session_id="s1"), 99)


def test_revoked_session_spares_other_sessions_of_the_user() -> None:
    revocations = RevocationList()
    revocations.revoke_session("s1", expires_at=100)
    assert not revocations.is_revoked(principal(session_id="s2"), 0)


def test_user_mark_kills_tokens_below_the_minimum_version() -> None:
    revocations = RevocationList()
    revocations.revoke_user_before(1, 2, expires_at=100)
    assert revocations.is_revoked(principal(), 0)
    assert revocations.is_revoked(principal(), 1)


def test_user_mark_spares_tokens_at_or_above_the_minimum_version() -> None:
    revocations = RevocationList()
    revocations.revoke_user_before(1, 2, expires_at=100)
    assert not revocations.is_revoked(principal(), 2)
    assert not revocations.is_revoked(principal(), 3)


def test_user_mark_spares_other_users() -> None:
    revocations = RevocationList()
    revocations.revoke_user_before(1, 2, expires_at=100)
    assert not revocations.is_revoked(principal(user_id=2), 0)


def test_a_lower_minimum_never_lowers_the_mark() -> None:
    revocations = RevocationList()
    revocations.revoke_user_before(1, 5, expires_at=100)
    revocations.revoke_user_before(1, 2, expires_at=100)
    assert revocations.is_revoked(principal(), 4)


def test_a_higher_minimum_raises_the_mark() -> None:
    revocations = RevocationList()
    revocations.revoke_user_before(1, 2, expires_at=100)
    revocations.revoke_user_before(1, 5, expires_at=100)
    assert revocations.is_revoked(principal(), 4)


def test_deletion_kills_every_version() -> None:
    revocations = RevocationList()
    revocations.revoke_user_before(1, DELETED, expires_at=100)
    assert revocations.is_revoked(principal(), DELETED - 1)


def test_prune_forgets_expired_entries() -> None:
    revocations = RevocationList()
    revocations.revoke_session("s1", expires_at=100)
    revocations.revoke_user_before(1, 2, expires_at=100)
    revocations.prune(now=100)
    assert len(revocations) == 0
    assert not revocations.is_revoked(principal(session_id="s1"), 0)


def test_prune_keeps_live_entries() -> None:
    revocations = RevocationList()
    revocations.revoke_session("s1", expires_at=100)
    revocations.revoke_user_before(2, 2, expires_at=100)
    revocations.prune(now=99)
    assert len(revocations) == 2
    assert revocations.is_revoked(principal(session_id="s1"), 0)
    assert revocations.is_revoked(principal(user_id=2, session_id="x"), 0)


def test_revoking_a_session_again_keeps_the_later_expiry() -> None:
    revocations = RevocationList()
    revocations.revoke_session("s1", expires_at=200)
    revocations.revoke_session("s1", expires_at=100)
    revocations.prune(now=150)
    assert revocations.is_revoked(principal(session_id="s1"), 0)


def test_raising_a_user_mark_keeps_the_later_expiry() -> None:
    revocations = RevocationList()
    revocations.revoke_user_before(1, 2, expires_at=200)
    revocations.revoke_user_before(1, 3, expires_at=100)
    revocations.prune(now=150)
    assert revocations.is_revoked(principal(), 2)


def test_apply_reads_session_subjects() -> None:
    revocations = RevocationList()
    revocations.apply("session:s1", 0, expires_at=100)
    assert revocations.is_revoked(principal(session_id="s1"), 0)
    assert list(revocations.sessions()) == ["s1"]


def test_apply_reads_user_subjects() -> None:
    revocations = RevocationList()
    revocations.apply("user:42", 3, expires_at=100)
    assert revocations.is_revoked(principal(user_id=42), 2)
    assert not revocations.is_revoked(principal(user_id=42), 3)


def test_apply_ignores_unknown_subjects() -> None:
    revocations = RevocationList()
    revocations.apply("device:abc", 0, expires_at=100)
    assert len(revocations) == 0


def test_a_version_floor_lasts_while_the_user_exists() -> None:
    from bastion.security.revocation import WHILE_USER_EXISTS

    revocations = RevocationList()
    revocations.revoke_user_before(1, 3, WHILE_USER_EXISTS)
    revocations.prune(now=10**9)
    assert revocations.is_revoked(principal(user_id=1), 2)
    assert not revocations.is_revoked(principal(user_id=1), 3)


def test_a_deletion_replaces_the_permanent_floor_and_expires() -> None:
    from bastion.security.revocation import WHILE_USER_EXISTS

    revocations = RevocationList()
    revocations.revoke_user_before(1, 3, WHILE_USER_EXISTS)
    revocations.revoke_user_before(1, DELETED, expires_at=100)
    assert revocations.is_revoked(principal(user_id=1), 5)
    revocations.prune(now=101)
    assert len(revocations) == 0
