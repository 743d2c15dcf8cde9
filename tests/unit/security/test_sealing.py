"""AES-GCM sealing of queued mail."""

from __future__ import annotations

import pytest

from bastion.security.sealing import Sealer, SealError, derive_key


def test_a_sealed_value_opens_with_its_key_and_context() -> None:
    sealer = Sealer(b"\x01" * 32)
    sealed = sealer.seal(b"Token: secret", context=b"outbox:1")
    assert b"secret" not in sealed.encode()
    assert sealer.open(sealed, context=b"outbox:1") == b"Token: secret"


def test_each_seal_uses_a_fresh_nonce() -> None:
    sealer = Sealer(b"\x01" * 32)
    assert sealer.seal(b"same", context=b"c") != sealer.seal(b"same", context=b"c")


def test_another_key_another_context_or_tampering_do_not_open() -> None:
    sealer = Sealer(b"\x01" * 32)
    sealed = sealer.seal(b"body", context=b"outbox:1")
    with pytest.raises(SealError):
        Sealer(b"\x02" * 32).open(sealed, context=b"outbox:1")
    with pytest.raises(SealError):
        sealer.open(sealed, context=b"outbox:2")
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    with pytest.raises(SealError):
        sealer.open(flipped, context=b"outbox:1")
    with pytest.raises(SealError):
        sealer.open("not base64 at all!", context=b"outbox:1")


def test_derived_keys_differ_by_purpose_and_are_stable() -> None:
    secret = b"s" * 32
    assert derive_key(secret, "a") == derive_key(secret, "a")
    assert derive_key(secret, "a") != derive_key(secret, "b")
    assert len(derive_key(secret, "a")) == 32


def test_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"short")
