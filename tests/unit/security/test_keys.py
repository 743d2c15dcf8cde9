"""Signing keys, the key ring, and the data directory's key file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jwt
import pytest

from bastion.security.keys import (
    GENERATED_SECRET_BYTES,
    Algorithm,
    KeyRing,
    SigningKey,
    generate_key,
    key_from_record,
    key_from_secret,
    key_to_record,
)
from bastion.storage.keyfile import KEY_FILE, KeyFile

ALGORITHMS: list[Algorithm] = ["HS256", "EdDSA", "ES256"]


def mode(path: Path) -> int:
    """Permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def signs_for(signer: SigningKey, verifier: SigningKey) -> bool:
    """Whether a token signed by ``signer`` verifies with ``verifier``'s public part."""
    token = jwt.encode({"x": 1}, signer.private, algorithm=signer.algorithm)
    try:
        jwt.decode(token, verifier.public, algorithms=[verifier.algorithm])
    except jwt.InvalidSignatureError:
        return False
    return True


# -- keys ---------------------------------------------------------------------------------


def test_generated_hs256_secret_is_32_random_bytes() -> None:
    first, second = generate_key("HS256", created_at=0), generate_key("HS256", created_at=0)
    assert isinstance(first.private, bytes)
    assert len(first.private) == GENERATED_SECRET_BYTES
    assert first.private != second.private


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_generated_keys_have_distinct_kids(algorithm: Algorithm) -> None:
    kids = {generate_key(algorithm, created_at=0).kid for _ in range(5)}
    assert len(kids) == 5


def test_key_from_secret_names_one_secret_alike_everywhere() -> None:
    secret = b"s" * 32
    assert key_from_secret(secret).kid == key_from_secret(secret).kid
    assert key_from_secret(secret).kid != key_from_secret(b"t" * 32).kid


def test_key_from_secret_uses_the_bytes_as_they_are() -> None:
    secret = b"a configured secret of 32+ bytes!"
    key = key_from_secret(secret)
    assert key.algorithm == "HS256"
    assert key.private == key.public == secret
    assert secret.decode() not in key.kid


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_record_round_trip_keeps_the_key(algorithm: Algorithm) -> None:
    key = generate_key(algorithm, created_at=1234.5)
    restored = key_from_record(json.loads(json.dumps(key_to_record(key))))
    assert (restored.kid, restored.algorithm, restored.created_at) == (key.kid, algorithm, 1234.5)
    assert signs_for(key, restored)
    assert signs_for(restored, key)


@pytest.mark.parametrize(("algorithm", "other"), [("EdDSA", "ES256"), ("ES256", "EdDSA")])
def test_record_whose_material_does_not_match_its_algorithm_is_refused(
    algorithm: Algorithm, other: Algorithm
) -> None:
    record = key_to_record(generate_key(algorithm, created_at=0))
    record["alg"] = other
    with pytest.raises(ValueError, match="does not match"):
        key_from_record(record)


def test_hs256_key_has_no_public_jwk() -> None:
    assert generate_key("HS256", created_at=0).public_jwk() is None


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256"])
def test_public_jwk_names_the_key_and_holds_no_private_part(algorithm: Algorithm) -> None:
    key = generate_key(algorithm, created_at=0)
    jwk = key.public_jwk()
    assert jwk is not None
    assert jwk["kid"] == key.kid
    assert jwk["alg"] == algorithm
    assert jwk["use"] == "sig"
    assert "d" not in jwk
    token = jwt.encode({"x": 1}, key.private, algorithm=algorithm)
    assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[algorithm]) == {"x": 1}


# -- key ring ----------------------------------------------------------------------------


def test_empty_ring_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        KeyRing([])


def test_newest_key_signs() -> None:
    keys = [generate_key("EdDSA", created_at=float(n)) for n in range(3)]
    ring = KeyRing(keys)
    assert ring.signing_key is keys[-1]
    assert ring.keys == tuple(keys)


def test_every_key_of_the_ring_is_found_by_kid() -> None:
    keys = [generate_key("EdDSA", created_at=float(n)) for n in range(3)]
    ring = KeyRing(keys)
    assert [ring.find(key.kid) for key in keys] == keys
    assert ring.find("unknown") is None


def test_jwks_lists_every_asymmetric_key() -> None:
    keys = [generate_key("ES256", created_at=float(n)) for n in range(2)]
    jwks = KeyRing(keys).jwks()
    assert [jwk["kid"] for jwk in jwks["keys"]] == [key.kid for key in keys]


def test_jwks_of_a_symmetric_ring_is_empty() -> None:
    assert KeyRing([generate_key("HS256", created_at=0)]).jwks() == {"keys": []}


# -- key file ----------------------------------------------------------------------------


def test_first_load_generates_a_private_key_file(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    ring = KeyFile(directory).load_or_create("HS256", now=10)
    assert mode(directory / KEY_FILE) == 0o600
    assert mode(directory) == 0o700
    assert [key.kid for key in KeyFile(directory).read()] == [ring.signing_key.kid]


def test_later_loads_return_the_same_key(tmp_path: Path) -> None:
    first = KeyFile(tmp_path).load_or_create("EdDSA", now=10)
    second = KeyFile(tmp_path).load_or_create("EdDSA", now=20)
    assert second.signing_key.kid == first.signing_key.kid
    assert signs_for(first.signing_key, second.signing_key)


def test_loose_data_directory_is_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    KeyFile(directory).load_or_create("HS256", now=0)
    assert mode(directory) == 0o700


def test_load_returns_only_keys_of_the_algorithm(tmp_path: Path) -> None:
    key_file = KeyFile(tmp_path)
    hs = key_file.load_or_create("HS256", now=0)
    ed = key_file.load_or_create("EdDSA", now=0)
    assert [key.algorithm for key in ed.keys] == ["EdDSA"]
    assert key_file.load_or_create("HS256", now=0).signing_key.kid == hs.signing_key.kid
    assert len(key_file.read()) == 2


def test_rotate_adds_a_newest_key_that_signs(tmp_path: Path) -> None:
    key_file = KeyFile(tmp_path)
    old = key_file.load_or_create("EdDSA", now=0).signing_key
    fresh = key_file.rotate("EdDSA", now=100, retire_after=1000)
    ring = key_file.load_or_create("EdDSA", now=100)
    assert [key.kid for key in ring.keys] == [old.kid, fresh.kid]
    assert ring.signing_key.kid == fresh.kid
    assert mode(tmp_path / KEY_FILE) == 0o600


def test_rotate_keeps_an_old_key_until_its_successor_has_signed_for_retire_after(
    tmp_path: Path,
) -> None:
    key_file = KeyFile(tmp_path)
    first = key_file.load_or_create("EdDSA", now=0).signing_key
    second = key_file.rotate("EdDSA", now=100, retire_after=1000)
    third = key_file.rotate("EdDSA", now=1099, retire_after=1000)
    assert [key.kid for key in key_file.read()] == [first.kid, second.kid, third.kid]


def test_rotate_retires_a_key_once_its_successor_has_signed_for_retire_after(
    tmp_path: Path,
) -> None:
    key_file = KeyFile(tmp_path)
    key_file.load_or_create("EdDSA", now=0)
    second = key_file.rotate("EdDSA", now=100, retire_after=1000)
    third = key_file.rotate("EdDSA", now=1100, retire_after=1000)
    assert [key.kid for key in key_file.read()] == [second.kid, third.kid]


def test_rotate_never_retires_the_current_signing_key(tmp_path: Path) -> None:
    key_file = KeyFile(tmp_path)
    current = key_file.load_or_create("EdDSA", now=0).signing_key
    fresh = key_file.rotate("EdDSA", now=10**9, retire_after=1)
    assert [key.kid for key in key_file.read()] == [current.kid, fresh.kid]


def test_rotate_leaves_keys_of_other_algorithms_alone(tmp_path: Path) -> None:
    key_file = KeyFile(tmp_path)
    hs = key_file.load_or_create("HS256", now=0).signing_key
    key_file.load_or_create("EdDSA", now=0)
    key_file.rotate("EdDSA", now=5000, retire_after=1)
    key_file.rotate("EdDSA", now=9000, retire_after=1)
    assert key_file.load_or_create("HS256", now=9000).signing_key.kid == hs.kid


def test_reading_a_missing_file_gives_no_keys(tmp_path: Path) -> None:
    assert KeyFile(tmp_path).read() == []
    assert KeyFile(tmp_path).mtime() == 0.0
