"""Bastion's HTTP edge as one pure-ASGI layer (:mod:`.edge`) running small steps.

Each rule lives in a module named for it and is tested on its own: request
context (:mod:`.context`), the probe shortcut (:mod:`.probes`), rate limits
(:mod:`.ratelimit`), body framing and size (:mod:`.bodylimit`), bearer tokens
(:mod:`.authentication`), proxy warnings (:mod:`.proxywarning`) and security
headers (:mod:`.headers`). One layer wraps ``send`` and ``receive`` once per
request instead of five times (issue 15: ~30 µs of the hot path was layering).
"""
