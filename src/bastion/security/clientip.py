"""Who the client is: the direct peer, unless a trusted proxy vouches otherwise.

``X-Forwarded-For`` is only a claim. It is believed only when the direct peer
is a configured trusted proxy, and then read from the right: the right-most
address that is not itself a trusted proxy is the client (the left-most
entries are whatever the client chose to send).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: IPv6 hosts usually own a whole /64, so limits key on it.
IPV6_CLIENT_PREFIX = 64


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
        address = _parse(peer)
        return address is not None and bool(self._trusted) and self.is_trusted(address)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client address as text (``"unknown"`` when there is no peer).

        Args:
            peer: The direct peer address from the transport.
            forwarded_for: The ``X-Forwarded-For`` header, all values joined by commas.
        """
        if not peer:
            return "unknown"
        if not self._trusted or not forwarded_for:
            # No proxy to believe: the transport's address is the answer, as
            # text, without parsing it on every request.
            return peer
        address = _parse(peer)
        if address is None:
            return peer
        if not self.is_trusted(address):
            return str(address)
        for hop in reversed(forwarded_for.split(",")):
            hop_address = _parse(hop)
            if hop_address is None:
                break
            address = hop_address
            if not self.is_trusted(hop_address):
                break
        return str(address)


@lru_cache(maxsize=4096)
def rate_limit_key(client: str) -> str:
    """The key a client is limited by: its address, or its /64 for IPv6."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False)
        return str(network)
    return client
