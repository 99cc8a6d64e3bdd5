"""The issue's targets for Chorus, and whether a run met them."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

# 1 GB as the issue writes it: 10^9 bytes, in MiB.
ONE_GB_MIB = 1e9 / 2**20


@dataclass(frozen=True)
class Target:
    """One target: which figure of which scenario step, compared how."""

    text: str
    scenario: str
    step: int
    metric: str
    compare: Callable[[float, float], bool]
    threshold: float
    unit: str
    # Figures that must hold for the measurement to be the one the target is about.
    requires: tuple[tuple[str, object], ...] = ()


LE, GE, LT = operator.le, operator.ge, operator.lt

TARGETS: list[Target] = [
    Target("B: p99 delivery latency ≤ 13 ms", "B", 0, "p99_ms", LE, 13.0, "ms"),
    Target("B: server CPU per delivery ≤ 13.5 µs", "B", 0, "cpu_us_per_delivery", LE, 13.5, "µs"),
    Target("A: server CPU per delivery ≤ 13.5 µs", "A", 0, "cpu_us_per_delivery", LE, 13.5, "µs"),
    Target("S: ≥ 200,000 deliveries/s at p99 < 50 ms", "S", 0, "best_deliveries_per_s", GE, 200_000, "/s"),
    Target("S: server CPU per delivery ≤ 13.5 µs (best stage)", "S", 0, "best_cpu_us_per_delivery",
           LE, 13.5, "µs"),
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


def evaluate(target: Target, steps: list[dict]) -> Verdict:
    """Compares Chorus's figure with the target; ``steps`` are Chorus's figures of the scenario."""
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
    met = target.compare(value, target.threshold)
    notes = []
    flag = figures.get("generator_flag")
    if flag and target.unit in ("ms", "/s"):
        notes.append(f"{flag}: latency includes the generator's delay")
    if figures.get("error"):
        notes.append(str(figures["error"]))
    return Verdict(target, value, "met" if met else "missed", "; ".join(notes))
