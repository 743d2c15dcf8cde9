"""Who the client is: the direct peer, unless a trusted proxy vouches otherwise.

``X-Forwarded-For`` is only a claim. It is believed only when the direct peer
is a configured trusted proxy, and then read from the right: the right-most
address that is not itself a trusted proxy is the client (the left-most
entries are whatever the client chose to send).

Every address leaves this module in one canonical text form: IPv4-mapped IPv6
addresses (``::ffff:192.0.2.1``, what a dual-stack socket reports for an IPv4
peer) are unwrapped to plain IPv4, so rate limits, login throttles and
security events all key one client the same way (RFC 4291 §2.5.5.2).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: IPv6 hosts usually own a whole /64, so limits key on it.
IPV6_CLIENT_PREFIX = 64
#: An opaque hop is clipped to this many characters (the longest IPv6 text).
MAX_OPAQUE_HOP = 45
#: Prefix of the key of a hop that a trusted proxy sent but that is no address.
OPAQUE_PREFIX = "hop:"


def _parse(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)
def normalize_peer(peer: str) -> str:
    """The canonical text of a transport peer address.

    ``::ffff:a.b.c.d`` becomes ``a.b.c.d``; other addresses are returned in
    their compressed form; text that is no address is returned unchanged
    (a Unix socket path, a test client's name).
    """
    address = _parse(peer)
    return peer if address is None else str(address)


def opaque_hop(hop: str) -> str:
    """The key of a forwarded hop that is no address (RFC 7239 obfuscated
    identifiers such as ``_hidden``, ``unknown``, or garbage).

    A trusted proxy vouched for it, so it is the client, not the proxy: were
    the proxy's own address used instead, every such client would share the
    proxy's budget. Only printable ASCII is kept, clipped, so the key is safe
    in logs and in the events table.
    """
    text = "".join(char for char in hop.strip() if " " < char <= "~")
    return OPAQUE_PREFIX + (text[:MAX_OPAQUE_HOP] or "empty")


class ClientResolver:
    """Resolves the client address of a request.

    Args:
        trusted_proxies: Networks whose forwarding headers are believed.
    """

    def __init__(self, trusted_proxies: Sequence[Network] = ()) -> None:
        self._trusted = tuple(trusted_proxies)

    def is_trusted(self, address: Address) -> bool:
        """Whether ``address`` is a trusted proxy."""
        return any(address in network for network in self._trusted)

    def trusts(self, peer: str) -> bool:
        """Whether the direct peer ``peer`` (text) is a trusted proxy."""
        if not self._trusted:
            return False
        address = _parse(peer)
        return address is not None and self.is_trusted(address)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client address as canonical text (``"unknown"`` without a peer).

        Args:
            peer: The direct peer address from the transport.
            forwarded_for: The ``X-Forwarded-For`` header, all values joined by commas.
        """
        if not peer:
            return "unknown"
        if not self._trusted or not forwarded_for:
            # No proxy to believe: the transport's address, normalised once
            # per distinct peer (cached), not parsed on every request.
            return normalize_peer(peer)
        address = _parse(peer)
        if address is None:
            return peer
        if not self.is_trusted(address):
            return str(address)
        for hop in reversed(forwarded_for.split(",")):
            hop_address = _parse(hop)
            if hop_address is None:
                return opaque_hop(hop)
            address = hop_address
            if not self.is_trusted(hop_address):
                break
        return str(address)


@lru_cache(maxsize=4096)
def rate_limit_key(client: str) -> str:
    """The key a client is limited by: its address, or its /64 for IPv6.

    An IPv4-mapped address is keyed as the IPv4 address it carries, so a
    library caller that passes the raw peer of a dual-stack socket gets the
    same key as :meth:`ClientResolver.resolve` gives.
    """
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        network = ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False)
        return str(network)
    return client
