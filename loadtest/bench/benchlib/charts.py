"""The comparison charts, drawn from results.json into ``results/charts/``.

Every chart lists the servers in the same order, so a server keeps its colour across charts.
Returns ``{chart name: path relative to the results directory}`` for the report to link.
"""

from __future__ import annotations

from pathlib import Path

from . import figures as fig
from . import svg
from .procstat import Series
from .targets import ONE_GB_MIB


def _figures(results: dict, scenario: str, server: str) -> list[dict]:
    result = results["scenarios"].get(scenario, {}).get(server)
    return fig.scenario_figures(scenario, result) if result else []


def _value(results: dict, scenario: str, step: int, server: str, metric: str) -> float | None:
    steps = _figures(results, scenario, server)
    if step >= len(steps):
        return None
    value = steps[step].get(metric)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def draw(results: dict, results_dir: Path) -> dict[str, str]:
    """Writes every chart the results have data for."""
    out_dir = results_dir / "charts"
    out_dir.mkdir(parents=True, exist_ok=True)
    servers = results["meta"]["servers"]
    labels = {k: results["servers"].get(k, {}).get("label", k) for k in servers}
    # A server keeps its colour in every chart, whichever servers a chart shows.
    color = {k: svg.PALETTE[i % len(svg.PALETTE)] for i, k in enumerate(servers)}
    written: dict[str, str] = {}

    def write(name: str, text: str) -> None:
        path = out_dir / f"{name}.svg"
        path.write_text(text, encoding="utf-8")
        written[name] = str(path.relative_to(results_dir))

    def bars(name, title, cells, y_label, log=False, threshold=None, only=None):
        keys = [s for s in servers if only is None or s in only]
        values = {s: [_value(results, sc, st, s, m) for sc, st, m, _ in cells] for s in keys}
        # Servers that did not run the scenario get no bars at all.
        keys = [s for s in keys if any(v is not None for v in values[s])]
        if keys:
            write(name, svg.bar_chart(title, [c[3] for c in cells], [(labels[s], values[s]) for s in keys],
                                      y_label, log, threshold, [color[s] for s in keys]))

    bars("latency-a-b", "Delivery latency, A (100 rooms × 10) and B (one room of 500)",
         [("A", 0, "p50_ms", "A p50"), ("A", 0, "p99_ms", "A p99"),
          ("B", 0, "p50_ms", "B p50"), ("B", 0, "p99_ms", "B p99")],
         "ms (log scale)", log=True)
    bars("cpu-per-delivery", "Server CPU per delivered message",
         [("A", 0, "cpu_us_per_delivery", "A"), ("B", 0, "cpu_us_per_delivery", "B"),
          ("S", 0, "best_cpu_us_per_delivery", "S best stage"),
          ("P", 0, "cpu_us_per_delivery", "P 50×10"), ("P", 1, "cpu_us_per_delivery", "P 1×500")],
         "µs per delivery (log scale)", log=True)
    bars("idle-memory", "C: server memory per idle connection",
         [("C", 0, "kb_per_conn", "5,000 connections"), ("C", 1, "kb_per_conn", "19,900 connections")],
         "KB per connection (log scale)", log=True, threshold=(4.5, "target 4.5 KB"))
    bars("join-time", "D: time from connect to step 2 received",
         [("D", 0, "step2_p50_ms", "10 MiB, p50"), ("D", 0, "step2_p99_ms", "10 MiB, p99"),
          ("D", 1, "step2_p50_ms", "150 × 20 MB, p50"), ("D", 1, "step2_max_ms", "150 × 20 MB, slowest")],
         "ms (log scale)", log=True)
    bars("join-memory", "D: server RSS with the document loaded, and peak during the joins",
         [("D", 0, "rss_seeded_mib", "10 MiB seeded"), ("D", 0, "peak_rss_mib", "10 MiB peak"),
          ("D", 1, "rss_seeded_mib", "20 MB seeded"), ("D", 1, "peak_rss_mib", "150 × 20 MB peak")],
         "MiB (log scale)", log=True, threshold=(ONE_GB_MIB, "1 GB target"))
    bars("presence-cpu", "P: server CPU, 500 users sending presence at 1 Hz",
         [("P", 0, "server_cpu_pct", "50 rooms × 10"), ("P", 1, "server_cpu_pct", "1 room × 500")],
         "% of one core", threshold=(25.0, "¼ core target"))
    bars("cross-node", "X: Chorus delivery latency across two nodes sharing Redis",
         [("X", 1, "p50_ms", "same node p50"), ("X", 1, "p99_ms", "same node p99"),
          ("X", 0, "cross_p50_ms", "cross-node p50"), ("X", 0, "cross_p99_ms", "cross-node p99")],
         "ms (log scale)", log=True, only=("chorus",))
    colors = [color[s] for s in servers]
    _ramp_chart(results, servers, labels, colors, write)
    _resource_charts(results, servers, labels, colors, write)
    return written


def _ramp_chart(results, servers, labels, colors, write) -> None:
    series = []
    for s in servers:
        steps = _figures(results, "S", s)
        stages = steps[0]["stages"] if steps else []
        series.append((labels[s], [(st["deliveries_per_s"], st["p99_ms"]) for st in stages
                                   if st["deliveries_per_s"] and st["p99_ms"]]))
    if any(pts for _, pts in series):
        limit = results["scenarios"].get("S", {}).get("chorus", {}).get("p99_limit_ms", 50.0)
        write("saturation-ramp", svg.line_chart(
            "S: p99 latency as the offered rate rises (one point per stage)", series,
            "deliveries/s (log scale)", "p99 ms (log scale)", log_y=True, log_x=True,
            threshold=(limit, f"{limit:g} ms limit"), markers=True, colors=colors))


def _resource_charts(results, servers, labels, colors, write) -> None:
    """CPU and RSS over time of each server during each step, from the bench's sampler."""
    for scenario, by_server in results["scenarios"].items():
        if scenario == "S":
            continue
        step_count = max((len(r.get("steps", [])) for r in by_server.values()), default=0)
        for step in range(step_count):
            cpu, rss = [], []
            for s in servers:
                records = by_server.get(s, {}).get("steps", [])
                record = records[step] if step < len(records) else {}
                samples = record.get("samples", [])
                # X runs two nodes: chart the first, which both steps use.
                rates = _series(samples[0]).rates() if samples else []
                cpu.append((labels[s], [(t, c) for t, c, _ in rates]))
                rss.append((labels[s], [(t, r) for t, _, r in rates]))
            name = f"{scenario.lower()}{step + 1}"
            if any(pts for _, pts in cpu):
                write(f"cpu-{name}", svg.line_chart(
                    f"{scenario} step {step + 1}: server CPU (bench /proc sampler, 0.25 s)",
                    cpu, "seconds since the step started", "% of one core", colors=colors))
                write(f"rss-{name}", svg.line_chart(
                    f"{scenario} step {step + 1}: server RSS (bench /proc sampler)",
                    rss, "seconds since the step started", "MiB", colors=colors))


def _series(sample: dict) -> Series:
    series = Series(sample.get("pid", 0))
    series.points = [tuple(p) for p in sample.get("points", [])]
    return series
