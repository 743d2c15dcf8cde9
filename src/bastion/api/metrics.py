"""Prometheus metrics of one app, on a registry of its own."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

#: Set (by ``bastion serve --workers N``) to a directory shared by the worker
#: processes: each keeps its values there and ``/metrics`` adds them up, so
#: the answer is the service's, whichever worker serves the scrape.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Methods counted under their own name. HTTP lets a client send any token as
#: a method; each new one would be a new time series kept for the life of the
#: process, so the rest are counted as ``OTHER`` (the route label is bounded
#: already: route templates and ``unmatched``).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The counters Bastion keeps.

    Each app has its own registry, so two apps in one process (tests, a
    library user mounting two) do not collide.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._shared_dir = os.environ.get(MULTIPROCESS_ENV)
        self.requests = Counter(
            "bastion_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bastion_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.logins = Counter(
            "bastion_logins",
            "Password grants by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.hash_queue = Gauge(
            "bastion_hash_pool_in_flight",
            "Password hashes running or waiting.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.event_queue = Gauge(
            "bastion_event_queue_depth",
            "Security events waiting to be written.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

        self.hash_wait = Histogram(
            "bastion_hash_pool_wait_seconds",
            "Time a password hash waited for a hashing thread.",
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.events_dropped = Counter(
            "bastion_events_dropped",
            "Security events not stored: refused by the database, or dropped after a short "
            "wait when the queue stayed full during an outage.",
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        label = method if method in KNOWN_METHODS else "OTHER"
        key = (route, label, status)
        children = self._children.get(key)
        if children is None:
            # ``labels()`` hashes and validates its arguments on every call;
            # the label sets are few (routes x methods x statuses), so their
            # children are looked up once and kept.
            children = (
                self.requests.labels(route, label, str(status)),
                self.latency.labels(route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The text exposition format (summed over workers when there are several)."""
        if self._shared_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self._shared_dir)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    def close(self) -> None:
        """Retire this worker's live gauges (multi-worker mode)."""
        if self._shared_dir:
            multiprocess.mark_process_dead(os.getpid(), self._shared_dir)  # type: ignore[no-untyped-call]
