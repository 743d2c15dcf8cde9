"""Login must take as long for an unknown user as for a wrong password.

An app that returns before hashing when the user does not exist answers in
microseconds instead of the hash's tens of milliseconds (CWE-208). The
measurement is built to resist noise rather than to be quick:

- three groups, sent interleaved in a random order so that drift in load
  affects all alike: wrong passwords for the audit's account (K), and two
  groups of unknown users (U, V);
- at most four wrong passwords in a row on the account, then a correct
  login, so that the audit does not lock its own account out;
- K against U with a Mann-Whitney rank test and a bootstrap interval of the
  median difference; U against V is the A/A control: if two groups of the
  same kind "differ", the network is too noisy and the result says so;
- a finding needs p < 0.01 and the whole interval beyond both 5 ms and 10 %.
"""

from __future__ import annotations

import secrets

from bastion.audit.checks.base import Check, Inconclusive, Skipped
from bastion.audit.context import AuditContext
from bastion.audit.findings import Severity
from bastion.audit.stats import compare

ALPHA = 0.01
MIN_MS = 5.0
MIN_PERCENT = 10.0
BATCH = 4


async def run(ctx: AuditContext) -> str | None:
    """Sample, compare, and report the effect with its p-value."""
    account = ctx.account
    if ctx.routes.login is None or account is None:
        raise Skipped("needs the token route and an account")
    n = ctx.options.timing_samples
    needed = 3 * n + n // BATCH + 2
    if ctx.client.remaining < needed:
        raise Skipped(f"needs {needed} requests, {ctx.client.remaining} left in the budget")
    order = ["K"] * n + ["U"] * n + ["V"] * n
    ctx.rng.shuffle(order)
    times: dict[str, list[float]] = {"K": [], "U": [], "V": []}
    # Earlier checks may have left failures on the account's counter.
    wrong_in_a_row = BATCH
    for group in order:
        if group == "K" and wrong_in_a_row == BATCH:
            reset = await ctx.login(account.login_name, account.password)
            if reset.session is None:
                raise Inconclusive(f"the correct login between batches got {reset.exchange.status}")
            ctx.redact.add(reset.session.access_token)
            ctx.redact.add(reset.session.refresh_token)
            wrong_in_a_row = 0
        name = account.login_name if group == "K" else "nobody" + secrets.token_hex(6)
        attempt = await ctx.login(name, "wrong-" + secrets.token_urlsafe(12))
        if attempt.throttled:
            raise Inconclusive(f"login throttled after {sum(map(len, times.values()))} samples")
        wrong_in_a_row += group == "K"
        times[group].append(attempt.exchange.seconds)
    main = compare(times["K"], times["U"], rng=ctx.rng)
    control = compare(times["U"], times["V"], rng=ctx.rng)
    figures = f"known vs unknown: {main.describe()}\nA/A unknown vs unknown: {control.describe()}"
    if control.differs(alpha=ALPHA, min_ms=MIN_MS, min_percent=MIN_PERCENT):
        raise Inconclusive("the A/A control differs too; timings too noisy. " + figures)
    if main.differs(alpha=ALPHA, min_ms=MIN_MS, min_percent=MIN_PERCENT):
        slower = "wrong passwords" if main.difference_ms > 0 else "unknown users"
        ctx.report(
            "user-enumeration-timing",
            f"Login timing reveals which users exist ({slower} take "
            f"{abs(main.difference_ms):.0f} ms longer, p={main.p_value:.1g})",
            Severity.MEDIUM,
            figures,
            "Do the same work for unknown users: verify against a dummy hash (Django's "
            "make_password(None) pattern) before answering.",
            ("V2.2.1",),
            ("CWE-208",),
        )
        return None
    return "no difference: " + figures


CHECK = Check("user-enumeration-timing", "user enumeration by timing", run, active=True)
