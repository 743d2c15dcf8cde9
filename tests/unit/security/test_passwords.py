"""Password hashing: argon2id by default, bcrypt by choice, and rehash decisions."""

from __future__ import annotations

import re
from functools import cache

import bcrypt
import pytest

from bastion.security.passwords import PasswordHasher

PASSWORD = "correct horse battery staple"
#: Longer than bcrypt's 72-byte input limit; its twin differs only past byte 72.
LONG = "b" * 72 + "-first-tail"
LONG_TWIN = "b" * 72 + "-other-tail"
ARGON2_PARAMS = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")


@cache
def argon2_hash() -> str:
    """One default argon2id hash of :data:`PASSWORD`."""
    return PasswordHasher().hash(PASSWORD)


@cache
def bcrypt_hash() -> str:
    """One default (cost 12) bcrypt hash of :data:`LONG` (bcrypt is slow on purpose)."""
    return PasswordHasher("bcrypt").hash(LONG)


def plain_bcrypt(password: bytes, prefix: bytes = b"2b", rounds: int = 4) -> str:
    """A bcrypt hash as another system would have stored it (no pre-hash)."""
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=rounds, prefix=prefix)).decode()


# -- argon2id ------------------------------------------------------------------------


def test_default_hash_is_argon2id_with_at_least_owasp_parameters() -> None:
    found = ARGON2_PARAMS.match(argon2_hash())
    assert found, argon2_hash()
    memory, time_cost, parallelism = map(int, found.groups())
    assert memory >= 19 * 1024
    assert time_cost >= 2
    assert parallelism == 1


def test_argon2_hash_verifies_its_password_only() -> None:
    hasher = PasswordHasher()
    assert hasher.verify(argon2_hash(), PASSWORD) is True
    assert hasher.verify(argon2_hash(), PASSWORD + " ") is False
    assert hasher.verify(argon2_hash(), PASSWORD.upper()) is False


def test_hashes_are_salted() -> None:
    assert PasswordHasher().hash(PASSWORD) != argon2_hash()


def test_hash_does_not_contain_the_password() -> None:
    assert PASSWORD not in argon2_hash()


# -- bcrypt --------------------------------------------------------------------------


def test_bcrypt_hash_uses_cost_12() -> None:
    assert "$2b$12$" in bcrypt_hash()


def test_bcrypt_hash_verifies_a_password_longer_than_72_bytes() -> None:
    assert PasswordHasher("bcrypt").verify(bcrypt_hash(), LONG) is True


def test_bcrypt_counts_every_byte_past_72() -> None:
    assert PasswordHasher("bcrypt").verify(bcrypt_hash(), LONG_TWIN) is False
    assert PasswordHasher("bcrypt").verify(bcrypt_hash(), "b" * 72) is False


def test_bcrypt_handles_a_nul_byte_in_the_password() -> None:
    hasher = PasswordHasher("bcrypt", bcrypt_rounds=4)
    stored = hasher.hash("before\x00after-the-nul")
    assert hasher.verify(stored, "before\x00after-the-nul") is True
    assert hasher.verify(stored, "before") is False


def test_every_hasher_verifies_the_other_algorithm() -> None:
    assert PasswordHasher("bcrypt").verify(argon2_hash(), PASSWORD) is True
    assert PasswordHasher("argon2").verify(bcrypt_hash(), LONG) is True


@pytest.mark.parametrize("prefix", [b"2a", b"2b"])
def test_plain_bcrypt_hashes_verify(prefix: bytes) -> None:
    stored = plain_bcrypt(PASSWORD.encode(), prefix)
    assert stored.startswith(f"${prefix.decode()}$")
    hasher = PasswordHasher()
    assert hasher.verify(stored, PASSWORD) is True
    assert hasher.verify(stored, PASSWORD + "!") is False


def test_plain_2y_bcrypt_hashes_verify() -> None:
    stored = "$2y$" + plain_bcrypt(PASSWORD.encode())[4:]  # PHP's name for 2b
    assert PasswordHasher().verify(stored, PASSWORD) is True


def test_plain_bcrypt_hash_of_a_long_password_verifies_as_it_was_made() -> None:
    stored = plain_bcrypt(LONG.encode()[:72])
    assert PasswordHasher().verify(stored, LONG) is True


# -- normalisation -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["argon2", "bcrypt"])
def test_hashing_is_nfkc_normalised(algorithm: str) -> None:
    hasher = PasswordHasher("bcrypt" if algorithm == "bcrypt" else "argon2", bcrypt_rounds=4)
    stored = hasher.hash("\uff50\uff41\uff53\uff53 phrase caf\u00e9")
    assert hasher.verify(stored, "pass phrase cafe\u0301") is True


def test_hashing_does_not_trim() -> None:
    hasher = PasswordHasher("bcrypt", bcrypt_rounds=4)
    stored = hasher.hash("  padded  ")
    assert hasher.verify(stored, "padded") is False
    assert hasher.verify(stored, "  padded  ") is True


# -- broken input --------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "nonsense",
        "$argon2id$garbage",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$",
        "$2b$12$short",
        "$2b$99$" + "a" * 53,
        "$bcrypt-sha256$garbage",
        "$bcrypt-sha256$$2b$12$" + "x" * 53,
        "pbkdf2_sha256$600000$salt$hash",
    ],
)
def test_verify_answers_false_for_unusable_hashes(stored: str) -> None:
    assert PasswordHasher().verify(stored, PASSWORD) is False


# -- needs_rehash --------------------------------------------------------------------


def test_current_argon2id_hash_needs_no_rehash() -> None:
    assert PasswordHasher().needs_rehash(argon2_hash()) is False


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(plain_bcrypt(PASSWORD.encode()), id="plain-bcrypt"),
        pytest.param(PasswordHasher("bcrypt", bcrypt_rounds=4).hash(PASSWORD), id="bastion-bcrypt"),
        pytest.param(
            PasswordHasher(argon2_memory_kib=8 * 1024, argon2_time_cost=1).hash(PASSWORD),
            id="weak-argon2id",
        ),
        pytest.param(
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", id="argon2i"
        ),
        pytest.param("$argon2id$garbage", id="garbled-argon2id"),
        pytest.param("nonsense", id="unknown"),
    ],
)
def test_argon2_hasher_wants_to_replace_other_and_weaker_hashes(stored: str) -> None:
    assert PasswordHasher().needs_rehash(stored) is True


def test_current_bcrypt_hash_needs_no_rehash_under_bcrypt() -> None:
    assert PasswordHasher("bcrypt").needs_rehash(bcrypt_hash()) is False


def test_bcrypt_hash_needs_rehash_under_argon2() -> None:
    assert PasswordHasher("argon2").needs_rehash(bcrypt_hash()) is True


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(
            PasswordHasher("bcrypt", bcrypt_rounds=4).hash(PASSWORD), id="bastion-bcrypt-cost-4"
        ),
        pytest.param(plain_bcrypt(PASSWORD.encode(), rounds=12), id="plain-bcrypt-cost-12"),
        pytest.param("$bcrypt-sha256$garbage", id="garbled"),
    ],
)
def test_bcrypt_hasher_wants_to_replace_weaker_or_unhashed_bcrypt(stored: str) -> None:
    assert PasswordHasher("bcrypt").needs_rehash(stored) is True


def test_argon2_hash_needs_rehash_under_bcrypt() -> None:
    assert PasswordHasher("bcrypt").needs_rehash(argon2_hash()) is True
