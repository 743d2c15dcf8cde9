"""Warn, once per peer, about forwarding headers from a proxy that is not trusted.

Behind a reverse proxy missing from ``BASTION_TRUSTED_PROXIES`` every client
arrives from the proxy's address, so all of them share one rate-limit budget
and one per-client login bucket: a handful of typos locks everyone out. The
proxy's ``X-Forwarded-For`` (or ``Forwarded``, RFC 7239, or ``X-Real-IP``) is
ignored, rightly, since anyone can send it; but its presence is the signature
of that mistake, so the operator is told what to set.
"""

from __future__ import annotations

from collections import OrderedDict

import structlog

#: Headers that only a proxy (or a spoofing client) sends.
FORWARDING_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip")
#: Peers remembered; past this the least recently warned is forgotten (and
#: would be warned about once more if it came back): bounded memory whatever
#: the number of distinct peers.
MAX_PEERS = 10_000

log = structlog.get_logger("bastion.edge")


def remedy(peer: str) -> str:
    """What the operator should set, for the log line and the event."""
    return (
        f"a request from {peer} carried proxy headers, but {peer} is not a trusted proxy: "
        f"they are ignored and every client behind it shares one budget; if {peer} is your "
        f"reverse proxy set BASTION_TRUSTED_PROXIES={peer} (or its network)"
    )


class ProxyWarnings:
    """Remembers which peers were warned about.

    Args:
        max_peers: Most peers remembered at once.
    """

    def __init__(self, max_peers: int = MAX_PEERS) -> None:
        self.max_peers = max_peers
        self._seen: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, peer: str) -> bool:
        """Whether ``peer`` has not been warned about yet (and remember it now)."""
        if peer in self._seen:
            return False
        if len(self._seen) >= self.max_peers:
            self._seen.popitem(last=False)
        self._seen[peer] = None
        return True

    def warn(self, peer: str, header: str) -> bool:
        """Log the warning for ``peer`` if it is new; whether it was."""
        if not self.first_time(peer):
            return False
        log.warning("proxy_misconfigured", peer=peer, header=header, remedy=remedy(peer))
        return True
