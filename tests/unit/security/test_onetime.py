"""One-time tokens and their keyed digests."""

from __future__ import annotations

import pytest

from bastion.security.onetime import (
    RESET,
    VERIFY,
    TokenDigester,
    looks_like_token,
    new_onetime_token,
)


def test_tokens_carry_256_bits_and_have_the_checked_shape() -> None:
    tokens = {new_onetime_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(looks_like_token(token) for token in tokens)
    # 43 URL-safe base64 characters = 258 bits of encoding for 256 random bits.
    assert {len(token) for token in tokens} == {43}


@pytest.mark.parametrize(
    "value", ["", "x" * 42, "x" * 44, "x" * 42 + "=", "x" * 42 + "\n", "é" * 43]
)
def test_anything_else_does_not_look_like_a_token(value: str) -> None:
    assert not looks_like_token(value)


def test_the_digest_depends_on_the_key_and_the_purpose() -> None:
    token = new_onetime_token()
    one = TokenDigester(b"k" * 32)
    assert one.digest(RESET, token) == one.digest(RESET, token)
    assert one.digest(RESET, token) != one.digest(VERIFY, token)
    assert one.digest(RESET, token) != TokenDigester(b"j" * 32).digest(RESET, token)
    assert token not in one.digest(RESET, token)
    assert len(one.digest(RESET, token)) == 64


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        TokenDigester(b"short")
