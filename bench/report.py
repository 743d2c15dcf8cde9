"""Turning results.json into the Markdown report, the console table and the chart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGETS = ("bare", "bare-h11", "blogpost", "bastion", "bastion-pg", "fastapi-users")
HEADS = {
    "bare": "bare (ceiling)",
    "bare-h11": "bare on h11",
    "blogpost": "blog post",
    "bastion": "Bastion",
    "bastion-pg": "Bastion PG+Redis",
    "fastapi-users": "fastapi-users",
}
BASTIONS = ("bastion", "bastion-pg")
#: W3's kinds of flooding client, and their short labels.
W3_KINDS = {"retry-at-once": "retrying at once", "honour-retry-after": "honouring Retry-After"}


def fmt(value: Any, unit: str = "") -> str:
    """A number at a precision that suits its size; ``—`` for nothing."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) and unit != "%":
        return f"{value:,}" + unit
    x = float(value)
    if unit == "%":
        return f"{x * 100:.1f}%" if abs(x) >= 0.001 else f"{x * 100:.3f}%"
    if abs(x) >= 100:
        text = f"{x:,.0f}"
    elif abs(x) >= 10:
        text = f"{x:.1f}"
    elif abs(x) >= 0.1 or x == 0:
        text = f"{x:.2f}"
    else:
        text = f"{x:.3g}"
    return text + unit


def _get(results: dict[str, Any], workload: str, target: str, key: str) -> Any:
    value = results["workloads"].get(workload, {}).get("results", {}).get(target, {})
    return value.get(key) if isinstance(value, dict) else None


def _kind(results: dict[str, Any], target: str, kind: str, key: str) -> Any:
    """A figure of one W3 flood kind."""
    kinds = _get(results, "W3", target, "kinds")
    value = kinds.get(kind) if isinstance(kinds, dict) else None
    return value.get(key) if isinstance(value, dict) else None


def _w3_kind_line(kind: str, k: dict[str, Any]) -> str:
    polite = (
        f", {k.get('flood_retry_after_waits')} Retry-After waits"
        if kind == "honour-retry-after"
        else ""
    )
    return (
        f"{kind}: flood p50/p99 {fmt(k.get('flood_p50_ms'))}/{fmt(k.get('flood_p99_ms'))} ms "
        f"(max {fmt(k.get('flood_max_ms'))}) = {fmt(k.get('p99_ratio'))}x idle p99; "
        f"flood {k.get('flood_status')}{polite}"
    )


def one_line(workload: str, r: dict[str, Any]) -> str:
    """The figures of one workload on one target, for the console."""
    if "error" in r:
        return f"ERROR {r['error']}"
    if workload == "W1":
        return (
            f"{fmt(r.get('rps'))} req/s, p50 {fmt(r.get('p50_ms'))} ms, "
            f"p99 {fmt(r.get('p99_ms'))} ms, non-2xx {r.get('non_2xx')}, errors {r.get('errors')}"
        )
    if workload in ("W2", "W4"):
        what = "logins/s" if workload == "W2" else "registrations/s"
        line = (
            f"{fmt(r.get('per_s'))} {what} (c={r.get('concurrency')}), "
            f"p50 {fmt(r.get('p50_ms'))} ms, p99 {fmt(r.get('p99_ms'))} ms, "
            f"status {r.get('status')}"
        )
        if r.get("physical_limit_per_s"):
            line += (
                f"; limit {fmt(r['physical_limit_per_s'])}/s = {r['server_cores']} core / "
                f"{fmt(r['t_hash_ms'])} ms -> {fmt(r['fraction_of_limit'], '%')} of it"
            )
        return line
    if workload == "W3":
        kinds = r.get("kinds", {})
        return (
            f"/health p50/p99 idle {fmt(r.get('idle_p50_ms'))}/{fmt(r.get('idle_p99_ms'))} ms; "
            f"flood of {r.get('flood_concurrency')} logins, "
            + "; ".join(_w3_kind_line(kind, k) for kind, k in kinds.items())
        )
    if workload == "W9":
        return (
            f"RSS idle {fmt(r.get('rss_idle_mib'))} MiB -> {fmt(r.get('rss_after_mib'))} MiB "
            f"after {r.get('clients'):,} distinct clients (+{fmt(r.get('rss_growth_mib'))} MiB, "
            f"{fmt(r.get('growth_kib_per_client'))} KiB/client; peak "
            f"{fmt(r.get('hwm_after_mib'))} MiB); status {r.get('status')}, "
            f"{fmt(r.get('rps'))} req/s"
            + (
                f"; Redis used_memory {fmt(r['redis_used_idle_mib'])} -> "
                f"{fmt(r.get('redis_used_after_mib'))} MiB"
                if r.get("redis_used_idle_mib") is not None
                else ""
            )
        )
    if workload == "W5":
        if "skipped" in r:
            return str(r["skipped"])
        if r.get("impl") == "redis":
            return (
                f"{fmt(r.get('new_client_check_us'))} us/check (new client), "
                f"{fmt(r.get('hot_check_us'))} us/check (one hot client, "
                f"{fmt(r.get('hot_allowed_fraction'), '%')} allowed), "
                f"{r.get('clients'):,} calls each, RedisRateLimitStore on a local redis-server"
            )
        return (
            f"{fmt(r.get('new_client_check_us'))} us/check (new client), "
            f"{fmt(r.get('hot_check_us'))} us/check (hot), "
            f"{fmt(r.get('memory_mib'))} MiB for {r.get('clients'):,} clients, "
            f"{r.get('keys_held'):,} keys held"
        )
    if workload == "W6":
        return (
            f"is_revoked {fmt(r.get('is_revoked_us'))} us; verify of a new token "
            f"{fmt(r.get('verify_us'))} us (+check {fmt(r.get('verify_and_check_us'))} us, "
            f"check = {fmt(r.get('overhead_fraction'), '%')}); verify of a repeated token "
            f"{fmt(r.get('verify_repeat_us'))} us (+check "
            f"{fmt(r.get('verify_repeat_and_check_us'))} us, "
            f"check = {fmt(r.get('overhead_fraction_repeat'), '%')})"
        )
    if workload == "W7":
        return (
            f"log+metrics on {fmt(r.get('on_rps'))} req/s, off {fmt(r.get('off_rps'))} req/s "
            f"-> overhead {fmt(r.get('overhead_fraction'), '%')} "
            f"({fmt(r.get('cost_us_per_request'))} us/request; target at most "
            f"{fmt(r.get('target_overhead_fraction'), '%')}), best of {r.get('rounds')} rounds "
            f"of {r.get('requests_per_round'):,} requests"
        )
    if workload == "W8":
        return (
            f"--workers 1 {fmt(r.get('workers_1_rps'))} req/s (p99 "
            f"{fmt(r.get('workers_1_p99_ms'))} ms), --workers 2 {fmt(r.get('workers_2_rps'))} "
            f"req/s (p99 {fmt(r.get('workers_2_p99_ms'))} ms) -> x{fmt(r.get('speedup'))}; "
            f"non-2xx {r.get('non_2xx')}, errors {r.get('errors')}; {r.get('placement')}"
        )
    return str(r)


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return float(a) / float(b)
    return None


def _pair(values: list[float | None]) -> str:
    if all(v is None for v in values):
        return "—"
    return " / ".join(fmt(v) for v in values)


Row = tuple[str, str, str, Callable[[str], Any], Callable[[str], Any] | None]


def _rows(results: dict[str, Any]) -> list[Row]:
    """(label, workload, key, value-of-target, ceiling-of-target) for the summary."""

    def val(w: str, key: str) -> Callable[[str], Any]:
        return lambda t: _get(results, w, t, key)

    return [
        (
            "W1 GET /protected, req/s (higher is better)",
            "W1",
            "rps",
            val("W1", "rps"),
            lambda _t: _get(results, "W1", "bare", "rps"),
        ),
        (
            "W1 p99 latency, ms",
            "W1",
            "p99_ms",
            val("W1", "p99_ms"),
            lambda _t: _get(results, "W1", "bare", "p99_ms"),
        ),
        ("W2 logins/s", "W2", "per_s", val("W2", "per_s"), val("W2", "physical_limit_per_s")),
        (
            "W2 physical limit, logins/s (cores / t_hash)",
            "W2",
            "physical_limit_per_s",
            val("W2", "physical_limit_per_s"),
            None,
        ),
        ("W3 /health p99 idle, ms", "W3", "idle_p99_ms", val("W3", "idle_p99_ms"), None),
        *(
            row
            for kind, label in W3_KINDS.items()
            for row in (
                (
                    f"W3 /health p99 during login flood, clients {label}, ms",
                    "W3",
                    "flood_p99_ms",
                    (lambda k: lambda t: _kind(results, t, k, "flood_p99_ms"))(kind),
                    None,
                ),
                (
                    f"W3 the same ÷ idle p99 (target ≤ 3), clients {label}",
                    "W3",
                    "p99_ratio",
                    (lambda k: lambda t: _kind(results, t, k, "p99_ratio"))(kind),
                    None,
                ),
            )
        ),
        (
            "W3 server RSS after both floods, MiB",
            "W3",
            "rss_after_flood_mib",
            lambda t: _kind(results, t, "honour-retry-after", "rss_after_flood_mib"),
            None,
        ),
        (
            "W4 registrations/s",
            "W4",
            "per_s",
            val("W4", "per_s"),
            val("W4", "physical_limit_per_s"),
        ),
        (
            "W5 limiter, us per check (new clients)",
            "W5",
            "new_client_check_us",
            val("W5", "new_client_check_us"),
            None,
        ),
        (
            "W5 limiter, us per check (hot clients)",
            "W5",
            "hot_check_us",
            val("W5", "hot_check_us"),
            None,
        ),
        ("W5 limiter memory, MiB", "W5", "memory_mib", val("W5", "memory_mib"), None),
        ("W6 is_revoked, us per call", "W6", "is_revoked_us", val("W6", "is_revoked_us"), None),
        ("W6 verify of a new token, us", "W6", "verify_us", val("W6", "verify_us"), None),
        (
            "W6 verify of a repeated token, us",
            "W6",
            "verify_repeat_us",
            val("W6", "verify_repeat_us"),
            None,
        ),
        (
            "W6 is_revoked ÷ verify (new token)",
            "W6",
            "overhead_fraction",
            val("W6", "overhead_fraction"),
            None,
        ),
        (
            "W7 GET /protected in process, req/s, access log + metrics on",
            "W7",
            "on_rps",
            val("W7", "on_rps"),
            None,
        ),
        ("W7 the same, log + metrics off", "W7", "off_rps", val("W7", "off_rps"), None),
        (
            "W7 observability overhead, 1 - on ÷ off (target ≤ 10%)",
            "W7",
            "overhead_fraction",
            lambda t: _percent(_get(results, "W7", t, "overhead_fraction")),
            None,
        ),
        (
            "W7 over HTTP, req/s, log + metrics on",
            "W7",
            "http_on_rps",
            val("W7", "http_on_rps"),
            None,
        ),
        ("W7 over HTTP, log + metrics off", "W7", "http_off_rps", val("W7", "http_off_rps"), None),
        (
            "W7 over HTTP, overhead (target ≤ 10%)",
            "W7",
            "http_overhead_fraction",
            lambda t: _percent(_get(results, "W7", t, "http_overhead_fraction")),
            None,
        ),
        (
            "W8 bastion serve --workers 1, req/s (unpinned)",
            "W8",
            "workers_1_rps",
            val("W8", "workers_1_rps"),
            None,
        ),
        (
            "W8 bastion serve --workers 2, req/s (unpinned)",
            "W8",
            "workers_2_rps",
            val("W8", "workers_2_rps"),
            None,
        ),
        ("W8 2 workers ÷ 1 worker", "W8", "speedup", val("W8", "speedup"), None),
        (
            "W9 RSS idle → after 100,000 distinct clients, MiB"
            if _get_any(results, "W9", "clients_target") == 100_000
            else "W9 RSS idle → after N distinct clients (smoke: N below 100,000), MiB",
            "W9",
            "rss",
            lambda t: _arrow(
                _get(results, "W9", t, "rss_idle_mib"), _get(results, "W9", t, "rss_after_mib")
            ),
            None,
        ),
        ("W9 distinct clients reached", "W9", "clients", val("W9", "clients"), None),
    ]


def _get_any(results: dict[str, Any], workload: str, key: str) -> Any:
    """``key`` of the first target of ``workload`` that has it."""
    for target in TARGETS:
        value = _get(results, workload, target, key)
        if value is not None:
            return value
    return None


def _arrow(before: Any, after: Any) -> str | None:
    """``before → after`` for a summary cell (the ratio columns skip it)."""
    if before is None and after is None:
        return None
    return f"{fmt(before)} → {fmt(after)}"


def _percent(value: Any) -> str | None:
    """``value`` as a percentage for a summary cell (the ratio columns skip it)."""
    return None if value is None else fmt(value, "%")


def summary_table(results: dict[str, Any]) -> str:
    """One row per headline figure, one column per target, then the ratios."""
    heads = [HEADS[t] for t in TARGETS]
    lines = [
        "| figure | " + " | ".join(heads) + " | Bastion ÷ ceiling | Bastion ÷ blog post |",
        "|---" * (len(heads) + 3) + "|",
    ]
    for label, workload, _key, value, ceiling in _rows(results):
        if workload not in results["workloads"]:
            continue
        cells = [fmt(value(t)) for t in TARGETS]
        to_ceiling = _pair([_ratio(value(b), ceiling(b)) if ceiling else None for b in BASTIONS])
        to_blog = _pair([_ratio(value(b), value("blogpost")) for b in BASTIONS])
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {to_ceiling} | {to_blog} |")
    return "\n".join(lines)


_DETAIL_COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "W1": [
        ("req/s", "rps", ""),
        ("p50 ms", "p50_ms", ""),
        ("p90 ms", "p90_ms", ""),
        ("p99 ms", "p99_ms", ""),
        ("requests", "requests", ""),
        ("non-2xx", "non_2xx", ""),
        ("socket errors", "errors", ""),
        ("peak RSS MiB", "server_peak_rss_mib", ""),
    ],
    "W2": [
        ("logins/s", "per_s", ""),
        ("p50 ms", "p50_ms", ""),
        ("p99 ms", "p99_ms", ""),
        ("t_hash ms", "t_hash_ms", ""),
        ("limit/s", "physical_limit_per_s", ""),
        ("of limit", "fraction_of_limit", "%"),
        ("status", "status", ""),
        ("errors", "errors", ""),
    ],
    "W3": [
        ("flooding clients", "kind", ""),
        ("idle p50 ms", "idle_p50_ms", ""),
        ("idle p99 ms", "idle_p99_ms", ""),
        ("flood p50 ms", "flood_p50_ms", ""),
        ("flood p99 ms", "flood_p99_ms", ""),
        ("flood max ms", "flood_max_ms", ""),
        ("p99 ÷ idle", "p99_ratio", ""),
        ("/health unanswered", "health_unanswered", ""),
        ("flood requests", "flood_requests", ""),
        ("flood logins ok", "flood_logins_ok", ""),
        ("flood statuses", "flood_status", ""),
        ("Retry-After waits", "flood_retry_after_waits", ""),
        ("RSS before → after MiB", "rss", ""),
    ],
    "W9": [
        ("RSS idle MiB", "rss_idle_mib", ""),
        ("RSS after MiB", "rss_after_mib", ""),
        ("growth MiB", "rss_growth_mib", ""),
        ("KiB per client", "growth_kib_per_client", ""),
        ("peak RSS (VmHWM) MiB", "hwm_after_mib", ""),
        ("Redis used_memory idle MiB", "redis_used_idle_mib", ""),
        ("Redis used_memory after MiB", "redis_used_after_mib", ""),
        ("distinct clients", "clients", ""),
        ("of", "clients_target", ""),
        ("seconds", "seconds", ""),
        ("status", "status", ""),
        ("errors", "errors", ""),
    ],
    "W4": [
        ("registrations/s", "per_s", ""),
        ("p50 ms", "p50_ms", ""),
        ("p99 ms", "p99_ms", ""),
        ("t_hash ms", "t_hash_ms", ""),
        ("limit/s", "physical_limit_per_s", ""),
        ("of limit", "fraction_of_limit", "%"),
        ("status", "status", ""),
        ("errors", "errors", ""),
    ],
    "W5": [
        ("us/check, new clients", "new_client_check_us", ""),
        ("us/check, hot clients", "hot_check_us", ""),
        ("hot allowed", "hot_allowed_fraction", "%"),
        ("clients", "clients", ""),
        ("keys held", "keys_held", ""),
        ("memory MiB", "memory_mib", ""),
        ("call", "call", ""),
    ],
    "W7": [
        ("on req/s", "on_rps", ""),
        ("off req/s", "off_rps", ""),
        ("overhead", "overhead_fraction", "%"),
        ("on us/request", "on_us_per_request", ""),
        ("off us/request", "off_us_per_request", ""),
        ("log + metrics us/request", "cost_us_per_request", ""),
        ("requests per round", "requests_per_round", ""),
        ("rounds (best counts)", "rounds", ""),
        ("log bytes written", "log_bytes_written", ""),
    ],
    "W8": [
        ("1 worker req/s", "workers_1_rps", ""),
        ("1 worker p50 ms", "workers_1_p50_ms", ""),
        ("1 worker p99 ms", "workers_1_p99_ms", ""),
        ("2 workers req/s", "workers_2_rps", ""),
        ("2 workers p50 ms", "workers_2_p50_ms", ""),
        ("2 workers p99 ms", "workers_2_p99_ms", ""),
        ("2 ÷ 1", "speedup", ""),
        ("connections", "connections", ""),
        ("non-2xx", "non_2xx", ""),
        ("socket errors", "errors", ""),
        ("CPUs", "placement", ""),
    ],
    "W6": [
        ("is_revoked us", "is_revoked_us", ""),
        ("verify us (new token)", "verify_us", ""),
        ("verify + is_revoked us (new token)", "verify_and_check_us", ""),
        ("check ÷ verify (new)", "overhead_fraction", "%"),
        ("verify us (repeated token)", "verify_repeat_us", ""),
        ("verify + is_revoked us (repeated)", "verify_repeat_and_check_us", ""),
        ("check ÷ verify (repeated)", "overhead_fraction_repeat", "%"),
        ("revoked entries", "revoked_entries", ""),
        ("tokens", "calls", ""),
    ],
}


def _rows_of(workload: str, r: dict[str, Any]) -> list[dict[str, Any]]:
    """The detail rows of one target: one per W3 flood kind, else one."""
    if workload == "W3" and isinstance(r.get("kinds"), dict):
        return [{**r, **k, "kind": kind} for kind, k in r["kinds"].items()]
    return [r]


def _detail(workload: str, block: dict[str, Any]) -> list[str]:
    columns = _DETAIL_COLUMNS[workload]
    lines = [
        "| target | " + " | ".join(c[0] for c in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for target in TARGETS:
        result = block["results"].get(target)
        if result is None:
            continue
        if "error" in result or "skipped" in result:
            lines.append(f"| {HEADS[target]} | {result.get('error') or result.get('skipped')} |")
            continue
        for r in _rows_of(workload, result):
            lines.append(f"| {HEADS[target]} | " + " | ".join(_cells(columns, r)) + " |")
    return lines


def _cells(columns: list[tuple[str, str, str]], r: dict[str, Any]) -> list[str]:
    """The cells of one detail row."""
    cells = []
    for _, key, unit in columns:
        if key == "rss":
            value = f"{fmt(r.get('rss_before_flood_mib'))} → {fmt(r.get('rss_after_flood_mib'))}"
        else:
            value = r.get(key)
            value = (
                ", ".join(f"{k}: {v}" for k, v in value.items()) or "—"
                if isinstance(value, dict)
                else fmt(value, unit)
            )
        cells.append(str(value).replace("|", "\\|"))
    return cells


def markdown(results: dict[str, Any]) -> str:
    """The whole report."""
    m = results["machine"]
    out = [
        "# Bastion benchmark results",
        "",
        f"- date: {m['date']} ({m['mode']} run, {m['wall_seconds']} s)",
        f"- machine: {m['nproc']} CPUs, {m['cpu_model']}, Linux {m['kernel']}, "
        f"Python {m['python']}",
        f"- {m['pinning']}; W1 load: {m['w1_tool']}",
        f"- load average at start {fmt(m['load_average_at_start'][0])}, at end "
        f"{fmt(m['load_average_at_end'][0])} (a shared machine: other work adds noise)",
        f"- code: {m['git_commit']}",
        "",
        "## Summary",
        "",
        "Cells under the ratio columns read `Bastion (SQLite) / Bastion (PostgreSQL + Redis)`. "
        "The ceiling is the bare FastAPI app for W1 and the physical hashing limit "
        "(server cores ÷ single-hash time, measured in this run) for W2 and W4.",
        "",
        summary_table(results),
        "",
    ]
    notes = [(name, info.get("notes", [])) for name, info in results["targets"].items()]
    if any(n for _, n in notes) or results.get("skipped_targets"):
        out += ["## Targets", ""]
        for name, info in results["targets"].items():
            extra = "; ".join(info.get("notes", []))
            err = f" **ERROR: {info['error']}**" if "error" in info else ""
            out.append(f"- **{name}**: {info.get('title', '')}. {extra}{err}")
        for name, why in results.get("skipped_targets", {}).items():
            out.append(f"- **{name}**: skipped: {why}")
        out.append("")
    for workload, block in results["workloads"].items():
        out += [f"## {workload}: {block['title']}", ""]
        if not block["results"]:
            out += ["(no results)", ""]
            continue
        out += [*_detail(workload, block), ""]
    if results.get("failures"):
        out += ["## Failures", "", *[f"- {f}" for f in results["failures"]], ""]
    return "\n".join(out)


def chart(results: dict[str, Any], path: Path) -> Path | None:
    """A PNG of the headline figures; ``None`` when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = [
        ("W1 GET /protected, req/s", "W1", "rps", False),
        ("W2 logins/s", "W2", "per_s", False),
        (
            "W3 /health p99, flood retrying at once, ms (log; dashes: idle)",
            "W3",
            "flood_p99_ms",
            True,
        ),
        ("W4 registrations/s", "W4", "per_s", False),
        ("W5 limiter memory, MiB", "W5", "memory_mib", False),
        ("W5 limiter, us per new-client check (log)", "W5", "new_client_check_us", True),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    colors = {
        "bare": "#999999",
        "bare-h11": "#cccccc",
        "blogpost": "#d95f02",
        "bastion": "#1b9e77",
        "bastion-pg": "#66a61e",
        "fastapi-users": "#7570b3",
    }
    for ax, (title, workload, key, log) in zip(axes.flat, panels, strict=True):

        def figure(t: str, w: str = workload, k: str = key) -> Any:
            if w == "W3":
                return _kind(results, t, "retry-at-once", k)
            return _get(results, w, t, k)

        names = [t for t in TARGETS if isinstance(figure(t), int | float)]
        values = [float(figure(t)) for t in names]
        bars = ax.bar([HEADS[t] for t in names], values, color=[colors[t] for t in names])
        ax.bar_label(bars, labels=[fmt(v) for v in values], fontsize=8)
        if workload in ("W2", "W4"):
            for i, t in enumerate(names):
                limit = _get(results, workload, t, "physical_limit_per_s")
                if limit:
                    ax.hlines(limit, i - 0.4, i + 0.4, colors="black", linestyles="dashed")
        if workload == "W3":
            for i, t in enumerate(names):
                idle = _get(results, "W3", t, "idle_p99_ms")
                if idle:
                    ax.hlines(idle, i - 0.4, i + 0.4, colors="black", linestyles="dashed")
        if log and values:
            ax.set_yscale("log")
        ax.set_title(
            title + (" (dashes: hashing limit)" if workload in ("W2", "W4") else ""), fontsize=10
        )
        ax.tick_params(axis="x", labelsize=8, rotation=15)
    m = results["machine"]
    fig.suptitle(
        f"Bastion benchmark, {m['mode']} run {m['date']}: {m['nproc']} x {m['cpu_model']}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
