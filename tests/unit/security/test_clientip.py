"""Client identity: one canonical key per client, whatever the socket family."""

from __future__ import annotations

import ipaddress

from bastion.security.clientip import ClientResolver, normalize_peer, rate_limit_key

PROXY = ClientResolver([ipaddress.ip_network("10.0.0.0/8")])


def test_an_ipv4_mapped_peer_is_its_ipv4_address() -> None:
    assert normalize_peer("::ffff:192.0.2.7") == "192.0.2.7"
    assert ClientResolver().resolve("::ffff:192.0.2.7", None) == "192.0.2.7"


def test_rate_limit_key_unwraps_ipv4_mapped_addresses() -> None:
    assert rate_limit_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert rate_limit_key("2001:db8::1") == "2001:db8::/64"


def test_an_unparsable_hop_behind_a_trusted_proxy_is_an_opaque_key() -> None:
    assert PROXY.resolve("10.0.0.1", "_hidden") == "hop:_hidden"
    assert PROXY.resolve("10.0.0.1", "198.51.100.1, garbage\x00\n") == "hop:garbage"


def test_an_opaque_hop_is_clipped() -> None:
    assert len(PROXY.resolve("10.0.0.1", "x" * 500)) == len("hop:") + 45


def test_a_trusted_ipv4_mapped_proxy_is_trusted() -> None:
    assert PROXY.resolve("::ffff:10.0.0.1", "203.0.113.5") == "203.0.113.5"
