"""Turns raw generator reports and /proc samples into the figures the tables and charts show.

Every function takes one server's result of one scenario (as stored in results.json) and
returns ``{metric: value}``; a value is None when the run did not produce it. Nothing here
runs anything, so the report can be rebuilt from results.json alone.
"""

from __future__ import annotations


def _get(d: dict | None, *path, default=None):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def cpu_us_per_delivery(cpu_percent: float | None, deliveries_per_sec: float | None) -> float | None:
    """Server CPU time per delivered message, µs: (CPU s per s) / (deliveries per s)."""
    if cpu_percent is None or not deliveries_per_sec:
        return None
    return cpu_percent / 100.0 * 1e6 / deliveries_per_sec


def server_cpu_percent(report: dict | None) -> float | None:
    """CPU of all sampled servers over the generator's measured window, % of one core."""
    values = [s.get("cpu_percent") for s in _get(report, "servers", default=[]) or []]
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def sampled_peak_rss_mib(record: dict) -> float | None:
    """Highest RSS the bench's own /proc sampler saw during the step, summed over servers."""
    peaks = [s.get("rss_kib_peak") for s in record.get("samples", [])]
    peaks = [p for p in peaks if p is not None]
    return sum(peaks) / 1024.0 if peaks else None


def generator_flag(report: dict | None) -> str:
    """Why the latency figures may measure the machine rather than the server."""
    if _get(report, "generator", "saturated"):
        return "generator saturated"
    if _get(report, "generator", "ticks_late"):
        return "ticks late"
    return ""


def run_figures(record: dict) -> dict:
    """Figures of one `run` step (A, B, P, X, and each S stage)."""
    report = _get(record, "generator", "report")
    updates = _get(report, "updates") or {}
    presence = _get(report, "presence")
    cpu = server_cpu_percent(report)
    typed = bool(updates.get("sent"))
    deliveries = updates.get("deliveries_per_sec") if typed else None
    if presence:
        # Presence-only runs: the server's CPU goes to awareness fan-out.
        per_delivery = cpu_us_per_delivery(cpu, (deliveries or 0) + presence.get("deliveries_per_sec", 0))
    else:
        per_delivery = cpu_us_per_delivery(cpu, deliveries)
    verify = _get(report, "verify", "ok")
    conns = _get(report, "connections") or {}
    return {
        "error": _error(record),
        "deliveries_per_s": deliveries,
        "p50_ms": _get(updates, "latency_ms", "p50_ms") if typed else None,
        "p99_ms": _get(updates, "latency_ms", "p99_ms") if typed else None,
        "p999_ms": _get(updates, "latency_ms", "p999_ms") if typed else None,
        "max_ms": _get(updates, "latency_ms", "max_ms") if typed else None,
        "ack_p50_ms": _get(report, "acks", "latency_ms", "p50_ms") if typed else None,
        "ack_p99_ms": _get(report, "acks", "latency_ms", "p99_ms") if typed else None,
        "ack_p999_ms": _get(report, "acks", "latency_ms", "p999_ms") if typed else None,
        "cross_p50_ms": _get(updates, "cross_node_latency_ms", "p50_ms"),
        "cross_p99_ms": _get(updates, "cross_node_latency_ms", "p99_ms"),
        "lost": updates.get("lost") if typed else None,
        "duplicated": updates.get("duplicated") if typed else None,
        "echoed": updates.get("echoed") if typed else None,
        "presence_per_s": _get(presence, "deliveries_per_sec"),
        "presence_p50_ms": _get(presence, "latency_ms", "p50_ms"),
        "presence_p99_ms": _get(presence, "latency_ms", "p99_ms"),
        "presence_missing": _get(presence, "final_state_missing"),
        "verify": None if verify is None else ("OK" if verify else "FAILED"),
        "synced": conns.get("synced"),
        "attempted": conns.get("attempted"),
        "dropped": conns.get("disconnected"),
        "handshake_p99_ms": _get(conns, "handshake_ms", "p99_ms"),
        "server_cpu_pct": cpu,
        "cpu_us_per_delivery": per_delivery,
        "server_peak_rss_mib": sampled_peak_rss_mib(record),
        "generator_cpu_pct": _get(report, "generator", "cpu_percent"),
        "generator_flag": generator_flag(report),
        "server_alive": all(record.get("servers_alive_after", [True])),
    }


def _error(record: dict) -> str | None:
    if record.get("error"):
        return record["error"]
    if not all(record.get("servers_alive_after", [True])):
        return "the server died during the step"
    return _get(record, "generator", "error")


def ramp_figures(result: dict) -> dict:
    """Scenario S: every stage, and the best one under the p99 limit."""
    limit = result.get("p99_limit_ms", 50.0)
    stages = []
    for stage in result.get("stages", []):
        f = run_figures(stage)
        f["rate"] = stage.get("rate")
        stages.append(f)
    eligible = [
        s for s in stages
        if s["p99_ms"] is not None and s["p99_ms"] <= limit and s["lost"] == 0
        and s["generator_flag"] != "generator saturated" and s["deliveries_per_s"] is not None
        and not s["error"]
    ]
    best = max(eligible, key=lambda s: s["deliveries_per_s"], default=None)
    return {
        "error": result.get("error"),
        "stages": stages,
        "stages_run": len(stages),
        "stopped_because": result.get("stopped_because"),
        "best_deliveries_per_s": best and best["deliveries_per_s"],
        "best_rate": best and best["rate"],
        "best_p99_ms": best and best["p99_ms"],
        "best_cpu_pct": best and best["server_cpu_pct"],
        "best_cpu_us_per_delivery": best and best["cpu_us_per_delivery"],
        "generator_flag": best["generator_flag"] if best else "",
    }


def idle_figures(record: dict) -> dict:
    """One `idle` step of scenario C."""
    report = _get(record, "generator", "report") or {}
    kib = _get(report, "server", "kib_per_connection")
    return {
        "error": _error(record),
        "attempted": report.get("attempted"),
        "synced": report.get("synced"),
        "failed": report.get("failed"),
        "dropped": report.get("dropped_while_held"),
        "kib_per_conn": kib,
        # The target is in KB (1,000 bytes).
        "kb_per_conn": None if kib is None else kib * 1.024,
        "rss_before_mib": _mib(_get(report, "server", "rss_kib_before")),
        "rss_after_mib": _mib(_get(report, "server", "rss_kib_after")),
        "open_all_s": report.get("open_all_s"),
        "handshake_p99_ms": _get(report, "handshake_ms", "p99_ms"),
        "held": bool(report) and report.get("failed") == 0 and report.get("dropped_while_held") == 0
        and report.get("synced") == report.get("attempted"),
        "server_peak_rss_mib": sampled_peak_rss_mib(record),
    }


def join_figures(record: dict) -> dict:
    """One `join` step of scenario D."""
    report = _get(record, "generator", "report") or {}
    return {
        "error": _error(record),
        "doc_mb": None if report.get("doc_chars") is None else report["doc_chars"] / 1e6,
        "joiners": report.get("joiners"),
        "succeeded": report.get("succeeded"),
        "failed": report.get("failed"),
        "step2_mb": None if report.get("step2_bytes") is None else report["step2_bytes"] / 1e6,
        "seed_s": report.get("seed_s"),
        "step2_p50_ms": _get(report, "time_to_step2_ms", "p50_ms"),
        "step2_p99_ms": _get(report, "time_to_step2_ms", "p99_ms"),
        "step2_max_ms": _get(report, "time_to_step2_ms", "max_ms"),
        "applied_p50_ms": _get(report, "time_to_applied_ms", "p50_ms"),
        "applied_max_ms": _get(report, "time_to_applied_ms", "max_ms"),
        "rss_seeded_mib": _mib(_get(report, "server", "rss_kib_seeded")),
        "peak_rss_mib": _mib(_get(report, "server", "peak_rss_kib_during_joins")),
        "vm_hwm_mib": _mib(_get(report, "server", "vm_hwm_kib")),
        "server_peak_rss_mib": sampled_peak_rss_mib(record),
    }


def _mib(kib: float | None) -> float | None:
    return None if kib is None else kib / 1024.0


def scenario_figures(scenario: str, result: dict) -> list[dict]:
    """Figures of each step of one server's result (S: one entry for the whole ramp)."""
    if result.get("skipped"):
        return []
    if scenario == "S":
        return [ramp_figures(result)]
    per_step = {"C": idle_figures, "D": join_figures}.get(scenario, run_figures)
    return [per_step(record) for record in result.get("steps", [])]
