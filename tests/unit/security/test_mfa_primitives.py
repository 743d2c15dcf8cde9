"""Recovery codes, the secret box, the key file and what counts as multi-factor."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bastion.security.amr import is_multi_factor
from bastion.security.recovery_codes import digest_code, new_codes, normalise
from bastion.security.secretbox import SecretBox, SecretBoxError, new_key
from bastion.storage.secret_file import load_or_create_key


def test_recovery_codes_are_ten_distinct_80_bit_codes() -> None:
    codes = new_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    for code in codes:
        canonical = normalise(code)
        assert canonical is not None
        assert len(canonical) == 16


def test_recovery_code_digests_forgive_case_dashes_and_look_alikes() -> None:
    code = new_codes(1)[0]
    assert digest_code(code) == digest_code(code.upper().replace("-", " "))
    assert digest_code("0000-0000-0000-0001") == digest_code("oooo-OOOO-0000-000l")
    assert digest_code(code) != code
    assert len(digest_code(code) or "") == 64


@pytest.mark.parametrize("typed", ["", "abc", "x" * 65, "uuuu-uuuu-uuuu-uuuu", "123456"])
def test_what_cannot_be_a_recovery_code_has_no_digest(typed: str) -> None:
    assert digest_code(typed) is None


def test_the_secret_box_round_trips_and_binds_the_context() -> None:
    box = SecretBox(new_key())
    sealed = box.seal(b"JBSWY3DPEHPK3PXP", context="totp:1")
    assert b"JBSWY3DPEHPK3PXP" not in sealed.encode()
    assert box.open(sealed, context="totp:1") == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(SecretBoxError):
        box.open(sealed, context="totp:2")
    with pytest.raises(SecretBoxError):
        SecretBox(new_key()).open(sealed, context="totp:1")
    with pytest.raises(SecretBoxError):
        box.open(sealed[:-4] + "AAAA", context="totp:1")


def test_the_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "mfa.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key


def test_a_corrupt_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mfa.key"
    path.write_text("not base64 of 32 bytes")
    with pytest.raises(ValueError, match="32 bytes"):
        load_or_create_key(path)


@pytest.mark.parametrize(
    ("amr", "expected"),
    [
        (["pwd"], False),
        (["pwd", "otp", "mfa"], True),
        (["hwk", "user"], True),
        (["swk", "user"], True),
        (["hwk"], False),
        (["user"], False),
        ([], False),
    ],
)
def test_what_counts_as_multi_factor(amr: list[str], expected: bool) -> None:
    assert is_multi_factor(amr) is expected


def test_concurrent_creators_of_the_key_file_agree(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "mfa.key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_or_create_key(path), range(32)))
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["mfa.key"]
