"""The password policy (NIST SP 800-63B-4 §3.1.1.2) and its setting."""

from __future__ import annotations

import unicodedata
from importlib.resources import files
from pathlib import Path

import pytest
from pydantic import ValidationError

from bastion.config import Settings
from bastion.errors import BastionError, ValidationFailed, WeakPassword
from bastion.security.policy import (
    MAX_PASSWORD_LENGTH,
    PasswordPolicy,
    common_passwords,
    normalize_password,
)

DEFAULT = PasswordPolicy(blocklist=common_passwords())
LENIENT = PasswordPolicy(min_length=8, blocklist=common_passwords())


def refusal(
    policy: PasswordPolicy,
    password: str,
    *,
    username: str | None = None,
    field: str = "password",
) -> WeakPassword:
    """The error ``policy`` raises for ``password``."""
    with pytest.raises(WeakPassword) as caught:
        policy.check(password, username=username, field=field)
    return caught.value


# -- length --------------------------------------------------------------------------


def test_default_minimum_is_15() -> None:
    assert PasswordPolicy().min_length == 15


def test_14_characters_are_too_short() -> None:
    assert refusal(DEFAULT, "x" * 6 + "-short-" + "y").code == "password_too_short"


def test_15_characters_are_enough() -> None:
    DEFAULT.check("fifteen chars!!")


def test_length_counts_code_points_not_bytes() -> None:
    DEFAULT.check("\U0001f510" * 15)
    assert refusal(DEFAULT, "\U0001f510" * 14).code == "password_too_short"


def test_length_counts_as_typed_before_normalisation() -> None:
    # U+FB03 (ffi ligature) is one code point typed, three after NFKC.
    password = "\ufb03" * 14
    assert len(normalize_password(password)) == 42
    assert refusal(DEFAULT, password).code == "password_too_short"


def test_spaces_count_towards_the_length() -> None:
    DEFAULT.check("   eleven-ch   ")


def test_1024_characters_are_allowed() -> None:
    assert MAX_PASSWORD_LENGTH == 1024
    DEFAULT.check("a long passphrase " * 56 + "x" * 16)


def test_1025_characters_are_too_long() -> None:
    assert refusal(DEFAULT, "z" * 1025).code == "password_too_long"


def test_configured_minimum_applies() -> None:
    LENIENT.check("eight-88")
    assert refusal(LENIENT, "seven-7").code == "password_too_short"


# -- blocklist -----------------------------------------------------------------------


def test_shipped_list_holds_at_least_10000_passwords() -> None:
    assert len(common_passwords()) >= 10_000


def test_shipped_list_is_normalised_and_case_folded() -> None:
    entries = common_passwords()
    assert all(unicodedata.normalize("NFKC", e).casefold() == e for e in entries)
    assert {"password", "123456", "iloveyou", "password1234"} <= entries


def test_shipped_list_comes_with_its_notice() -> None:
    notice = files("bastion.security").joinpath("data/common-passwords.NOTICE")
    assert notice.is_file()
    assert notice.read_text("utf-8").strip()


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "iloveyou",
        "PASSWORD1234",
        "ILoveYou",
        "\uff49\uff4c\uff4f\uff56\uff45\uff59\uff4f\uff55",  # fullwidth "iloveyou"
    ],
)
def test_common_password_is_refused_in_any_case_and_form(password: str) -> None:
    assert refusal(LENIENT, password).code == "password_too_common"


def test_long_common_password_is_refused_at_the_default_minimum() -> None:
    assert refusal(DEFAULT, "1qaz2wsx3edc4rfv").code == "password_too_common"


def test_common_password_inside_a_longer_one_is_fine() -> None:
    DEFAULT.check("my password1234 is longer")


def test_empty_blocklist_refuses_nothing_for_commonness() -> None:
    PasswordPolicy(min_length=8).check("password1234")


# -- username ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "alice-in-wonderland-2024",
        "I am ALICE, let me in",
        "xx \uff41\uff4c\uff49\uff43\uff45 yy zz ww",
    ],
)
def test_password_containing_the_username_is_refused(password: str) -> None:
    assert refusal(DEFAULT, password, username="Alice").code == "password_contains_username"


def test_without_a_username_there_is_nothing_to_contain() -> None:
    DEFAULT.check("alice-in-wonderland-2024", username=None)


# -- no composition rules, exact input -----------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "all lower case words here",
        "ONLYCAPITALLETTERS",
        "111122223333444455",
        "\u00e9\u00e8\u00ea\u00eb\u00e0\u00e2\u00e4\u00f4\u00f6\u00fb\u00fc\u00e7\u00ee\u00ef\u00ff",
        "\u5bc6\u7801\u5f88\u957f\u5f88\u957f\u7684\u4e00\u53e5\u8bdd\u5c31\u662f\u8fd9\u6837\u5427",
    ],
)
def test_no_composition_rules(password: str) -> None:
    DEFAULT.check(password)


def test_normalisation_does_not_trim() -> None:
    assert normalize_password("  pass  ") == "  pass  "
    assert normalize_password("\tpass\n") == "\tpass\n"


def test_normalisation_is_nfkc() -> None:
    assert normalize_password("\uff50\uff41\uff53\uff53") == "pass"
    assert normalize_password("cafe\u0301") == "caf\u00e9"
    assert normalize_password("\u2460") == "1"


# -- the refusal itself --------------------------------------------------------------


def test_refusal_names_the_field() -> None:
    error = refusal(DEFAULT, "short", field="new_password")
    assert error.field == "new_password"


def test_refusal_is_a_bastion_validation_error() -> None:
    error = refusal(DEFAULT, "short")
    assert isinstance(error, ValidationFailed)
    assert isinstance(error, BastionError)


@pytest.mark.parametrize(
    ("password", "username"),
    [
        ("Secret-9", None),
        ("z" * 1025, None),
        ("iloveyou-iloveyou", None),
        ("secret alice secret", "alice"),
    ],
)
def test_refusal_never_repeats_the_password(password: str, username: str | None) -> None:
    policy = PasswordPolicy(blocklist=frozenset({"iloveyou-iloveyou"}))
    error = refusal(policy, password, username=username)
    assert password not in error.message
    assert password not in str(error)


# -- BASTION_PASSWORD_MIN_LENGTH -----------------------------------------------------


@pytest.mark.parametrize("value", [7, 0, -1])
def test_min_length_below_8_refuses_to_build_settings(tmp_path: Path, value: int) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, data_dir=tmp_path, password_min_length=value)
    assert caught.value.errors()[0]["loc"] == ("password_min_length",)


def test_min_length_below_8_from_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_PASSWORD_MIN_LENGTH", "7")
    with pytest.raises(ValidationError):
        Settings(_env_file=None, data_dir=tmp_path)


def test_min_length_of_8_is_allowed(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, password_min_length=8)
    assert settings.password_min_length == 8


def test_min_length_defaults_to_15(tmp_path: Path) -> None:
    assert Settings(_env_file=None, data_dir=tmp_path).password_min_length == 15
