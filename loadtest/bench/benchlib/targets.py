"""The issues' targets for Chorus, and whether a run met them.

Speed targets are ratios to another server's figure in the same run (this machine's speed changes
between sessions, so only figures of one run compare). Size targets (memory, connections held)
are absolute.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

# 1 GB as the issue writes it: 10^9 bytes, in MiB.
ONE_GB_MIB = 1e9 / 2**20

# The servers speed targets refer to (keys of servers.KINDS).
RELAY = "bare-relay"
NODE_REFERENCE = "ws-0.1.1"
FSYNC_1S = "chorus-fsync-1s"


@dataclass(frozen=True)
class Target:
    """One target: which figure of which scenario step, compared how.

    With ``relative_to`` the threshold is ``threshold`` × that server's same figure in the same
    run; without it, ``threshold`` itself.
    """

    text: str
    scenario: str
    step: int
    metric: str
    compare: Callable[[float, float], bool]
    threshold: float
    unit: str
    # Figures that must hold for the measurement to be the one the target is about.
    requires: tuple[tuple[str, object], ...] = ()
    relative_to: str | None = None


LE, GE, LT = operator.le, operator.ge, operator.lt

TARGETS: list[Target] = [
    Target("A: server CPU per delivery ≤ 1.25× the bare relay", "A", 0, "cpu_us_per_delivery", LE, 1.25,
           "µs", relative_to=RELAY),
    Target("A: server CPU per delivery below @y/websocket-server 0.1.1", "A", 0, "cpu_us_per_delivery",
           LT, 1.0, "µs", relative_to=NODE_REFERENCE),
    Target("A: p99 latency ≤ 2× @y/websocket-server 0.1.1", "A", 0, "p99_ms", LE, 2.0, "ms",
           relative_to=NODE_REFERENCE),
    Target("B: server CPU per delivery ≤ 1.25× the bare relay", "B", 0, "cpu_us_per_delivery", LE, 1.25,
           "µs", relative_to=RELAY),
    Target("B: server CPU per delivery below @y/websocket-server 0.1.1", "B", 0, "cpu_us_per_delivery",
           LT, 1.0, "µs", relative_to=NODE_REFERENCE),
    Target("S: deliveries/s at p99 < 50 ms ≥ 0.9× Chorus --fsync 1s", "S", 0, "best_deliveries_per_s",
           GE, 0.9, "/s", relative_to=FSYNC_1S),
    Target("S: deliveries/s at p99 < 50 ms ≥ @y/websocket-server 0.1.1", "S", 0, "best_deliveries_per_s",
           GE, 1.0, "/s", relative_to=NODE_REFERENCE),
    Target("C: idle memory ≤ 4.5 KB per connection (5,000)", "C", 0, "kb_per_conn", LE, 4.5, "KB"),
    Target("C: idle memory ≤ 4.5 KB per connection (19,900)", "C", 1, "kb_per_conn", LE, 4.5, "KB"),
    Target("C: 19,900 idle connections held", "C", 1, "held", operator.eq, True, "",
           requires=(("attempted", 19_900),)),
    Target("D: 10 MiB document, join p50 ≤ 30 ms (connect → step 2)", "D", 0, "step2_p50_ms",
           LE, 30.0, "ms"),
    Target("D: 150 joiners of 20 MB all synced ≤ 3 s (slowest connect → step 2)", "D", 1,
           "step2_max_ms", LE, 3000.0, "ms", requires=(("joiners", 150), ("failed", 0))),
    Target("D: peak RSS ≤ 1 GB during the 150 joins", "D", 1, "peak_rss_mib", LE, ONE_GB_MIB, "MiB",
           requires=(("joiners", 150),)),
    Target("P: 500 users' presence in one room under ¼ core", "P", 1, "server_cpu_pct", LT, 25.0, "%"),
]


@dataclass
class Verdict:
    """A target against one run's figure."""

    target: Target
    value: object
    verdict: str
    note: str
    # The threshold in the figure's unit (for a relative target, computed from the other server).
    limit: object = None


def evaluate(target: Target, steps: list[dict], others: dict[str, list[dict]] | None = None) -> Verdict:
    """Compares a server's figure with the target.

    ``steps`` are that server's figures of the scenario; ``others`` the figures of every server
    of the run in that scenario, by server key (needed by relative targets).
    """
    if target.step >= len(steps):
        return Verdict(target, None, "not measured", "")
    figures = steps[target.step]
    value = figures.get(target.metric)
    if figures.get("error") and value is None:
        return Verdict(target, None, "not measured", str(figures["error"]))
    for key, wanted in target.requires:
        if figures.get(key) != wanted:
            return Verdict(target, value, "not comparable",
                           f"{key} was {figures.get(key)}, the target needs {wanted}")
    if value is None:
        return Verdict(target, None, "not measured", "")
    limit = target.threshold
    if target.relative_to is not None:
        reference = _reference_value(target, (others or {}).get(target.relative_to, []))
        if reference is None:
            return Verdict(target, value, "not comparable", f"{target.relative_to} was not measured")
        limit = target.threshold * reference
    met = target.compare(value, limit)
    notes = []
    flag = figures.get("generator_flag")
    if flag and target.unit in ("ms", "/s"):
        notes.append(f"{flag}: latency includes the generator's delay")
    if figures.get("error"):
        notes.append(str(figures["error"]))
    return Verdict(target, value, "met" if met else "missed", "; ".join(notes), limit)


def _reference_value(target: Target, steps: list[dict]) -> float | None:
    if target.step >= len(steps):
        return None
    figures = steps[target.step]
    if figures.get("error"):
        return None
    return figures.get(target.metric)
