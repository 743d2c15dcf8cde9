"""RFC 6238 through Bastion's verifier: Appendix B vectors, skew, replay."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from bastion.security.totp import TotpVerifier, current_step, is_well_formed, new_secret

# RFC 6238 Appendix B: the seeds are ASCII "1234567890" repeated to the key
# length of each hash (20, 32 and 64 bytes).
SEEDS: dict[str, bytes] = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
HASHES: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}
VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


def _b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode("ascii")


@pytest.mark.parametrize(("time", "sha1", "sha256", "sha512"), VECTORS)
def test_rfc6238_appendix_b_vectors_match(time: int, sha1: str, sha256: str, sha512: str) -> None:
    for name, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        verifier = TotpVerifier(_b32(SEEDS[name]), digits=8, digest=HASHES[name])
        assert verifier.match(expected, float(time)) == current_step(time), name


@pytest.mark.parametrize(("time", "sha1", "_b", "_c"), VECTORS)
def test_bastion_six_digit_sha1_codes_are_the_vectors_last_six(
    time: int, sha1: str, _b: str, _c: str
) -> None:
    verifier = TotpVerifier(_b32(SEEDS["sha1"]))
    assert verifier.code_at(current_step(time)) == sha1[-6:]
    assert verifier.match(sha1[-6:], float(time)) is not None


def test_one_step_of_skew_either_way_and_no_more() -> None:
    verifier = TotpVerifier(new_secret())
    now = 1_800_000_015.0
    here = current_step(now)
    for offset, accepted in ((-2, False), (-1, True), (0, True), (1, True), (2, False)):
        found = verifier.match(verifier.code_at(here + offset), now)
        assert (found == here + offset) is accepted, offset


def test_a_used_step_or_an_earlier_one_never_matches_again() -> None:
    verifier = TotpVerifier(new_secret())
    now = 1_800_000_015.0
    here = current_step(now)
    assert verifier.match(verifier.code_at(here), now, after_step=here) is None
    assert verifier.match(verifier.code_at(here - 1), now, after_step=here) is None
    assert verifier.match(verifier.code_at(here + 1), now, after_step=here) == here + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", " 123456"])
def test_malformed_codes_never_match(code: str) -> None:
    assert not is_well_formed(code)
    assert TotpVerifier(new_secret()).match(code, 1_800_000_000.0) is None


def test_secrets_are_160_bits_of_base32_and_distinct() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(len(base64.b32decode(s)) == 20 for s in secrets)


def test_the_provisioning_uri_names_issuer_account_and_parameters() -> None:
    secret = new_secret()
    uri = TotpVerifier(secret).provisioning_uri(account="alice", issuer="Bastion")
    assert uri.startswith("otpauth://totp/Bastion:alice?")
    assert f"secret={secret}" in uri
    assert "issuer=Bastion" in uri
