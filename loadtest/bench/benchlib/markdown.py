"""Writes BENCHMARKS.md from results.json: machine, versions, command, tables, targets, charts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from . import figures as fig
from .scenarios import SCENARIOS
from .servers import KINDS
from .targets import TARGETS, Verdict, evaluate


@dataclass(frozen=True)
class Row:
    """One table row: a figure of one step, shown for every server."""

    label: str
    step: int
    metric: str
    kind: str = "num"
    # Indices into TARGETS of the targets Chorus's value is compared with.
    targets: tuple[int, ...] = ()


def _t(*texts: str) -> tuple[int, ...]:
    """Indices of the targets whose texts start with ``texts``."""
    return tuple(next(i for i, t in enumerate(TARGETS) if t.text.startswith(text)) for text in texts)


def _run_rows(step: int, verify: bool = False, cpu_targets: tuple[int, ...] = (),
              p99_targets: tuple[int, ...] = ()) -> list[Row]:
    rows = [
        Row("deliveries/s (measured window)", step, "deliveries_per_s", "int"),
        Row("latency p50 (ms)", step, "p50_ms"),
        Row("latency p99 (ms)", step, "p99_ms", "num", p99_targets),
        Row("latency p99.9 (ms)", step, "p999_ms"),
        Row("latency max (ms)", step, "max_ms"),
        Row("lost / duplicated deliveries", step, "lost_dup", "str"),
        Row("updates echoed to their sender", step, "echoed", "int"),
        Row("ack (Hocuspocus SyncStatus) p50 / p99 / p99.9 (ms)", step, "ack_p50_p99_p999", "str"),
    ]
    if verify:
        rows.append(Row("`--verify` (documents converge, exactly once)", step, "verify", "str"))
    rows += [
        Row("server CPU, measured window (% of one core)", step, "server_cpu_pct", "pct"),
        Row("server CPU per delivery (µs)", step, "cpu_us_per_delivery", "num", cpu_targets),
        Row("server peak RSS during the step (MiB)", step, "server_peak_rss_mib", "num"),
        Row("generator CPU (% of one core)", step, "generator_cpu_pct", "pct"),
        Row("generator health", step, "generator_flag", "str"),
    ]
    return rows


def _presence_rows(step: int, cpu_targets: tuple[int, ...]) -> list[Row]:
    return [
        Row("presence deliveries/s", step, "presence_per_s", "int"),
        Row("presence latency p50 (ms)", step, "presence_p50_ms"),
        Row("presence latency p99 (ms)", step, "presence_p99_ms"),
        Row("receivers missing a sender's final state", step, "presence_missing", "int"),
        Row("connections synced / dropped", step, "synced_dropped", "str"),
        Row("server CPU, measured window (% of one core)", step, "server_cpu_pct", "pct", cpu_targets),
        Row("server CPU per presence delivery (µs)", step, "cpu_us_per_delivery"),
        Row("server peak RSS during the step (MiB)", step, "server_peak_rss_mib"),
        Row("generator CPU (% of one core)", step, "generator_cpu_pct", "pct"),
        Row("generator health", step, "generator_flag", "str"),
    ]


def _idle_rows(step: int, kb_targets: tuple[int, ...], held_targets: tuple[int, ...]) -> list[Row]:
    return [
        Row("connections synced / attempted", step, "synced_attempted", "str", held_targets),
        Row("failed / dropped while held", step, "failed_dropped", "str"),
        Row("server memory per connection (KB = 1,000 B)", step, "kb_per_conn", "num", kb_targets),
        Row("server memory per connection (KiB)", step, "kib_per_conn"),
        Row("server RSS before → after (MiB)", step, "rss_before_after", "str"),
        Row("time to open all (s)", step, "open_all_s"),
        Row("handshake p99 (ms)", step, "handshake_p99_ms"),
    ]


def _join_rows(step: int, p50_targets: tuple[int, ...], max_targets: tuple[int, ...],
               rss_targets: tuple[int, ...]) -> list[Row]:
    return [
        Row("joiners that got the whole document", step, "succeeded_joiners", "str"),
        Row("connect → step 2 received, p50 (ms)", step, "step2_p50_ms", "num", p50_targets),
        Row("connect → step 2 received, p99 (ms)", step, "step2_p99_ms"),
        Row("connect → step 2 received, slowest (ms)", step, "step2_max_ms", "num", max_targets),
        Row("connect → step 2 applied (client yrs), p50 (ms)", step, "applied_p50_ms"),
        Row("connect → step 2 applied, slowest (ms)", step, "applied_max_ms"),
        Row("step 2 size (MB)", step, "step2_mb"),
        Row("server RSS with the document loaded (MiB)", step, "rss_seeded_mib"),
        Row("server peak RSS during the joins (MiB, 10 ms samples)", step, "peak_rss_mib", "num", rss_targets),
        Row("server VmHWM at the end (MiB)", step, "vm_hwm_mib"),
    ]


def _cross_rows() -> list[Row]:
    rows = []
    for step, label in ((0, "two nodes"), (1, "one node")):
        rows += [
            Row(f"{label}: deliveries/s", step, "deliveries_per_s", "int"),
            Row(f"{label}: latency p50 / p99 (ms), all deliveries", step, "p50_p99", "str"),
            Row(f"{label}: lost / duplicated", step, "lost_dup", "str"),
            Row(f"{label}: `--verify`", step, "verify", "str"),
            Row(f"{label}: presence p99 (ms)", step, "presence_p99_ms"),
            Row(f"{label}: server CPU, all nodes (% of one core)", step, "server_cpu_pct", "pct"),
            Row(f"{label}: generator health", step, "generator_flag", "str"),
        ]
    rows.insert(2, Row("two nodes: cross-node latency p50 / p99 (ms)", 0, "cross_p50_p99", "str"))
    return rows


def _rooms_title(st: dict) -> str:
    if st.get("rooms") == 1:
        return f"one room of {st.get('users')} users"
    return f"{st.get('rooms')} rooms × {st.get('users')} users"


# Per scenario: (title from the step's effective settings, rows) per table.
TABLES: dict[str, list[tuple[Callable[[dict], str], list[Row]]]] = {
    "A": [(lambda st: "", _run_rows(0, verify=True, cpu_targets=_t("A: server CPU per delivery ≤", "A: server CPU per delivery below"), p99_targets=_t("A: p99")))],
    "B": [(lambda st: "", _run_rows(0, cpu_targets=_t("B: server CPU per delivery ≤", "B: server CPU per delivery below")))],
    "C": [(lambda st: f"{st.get('connections', 0):,} idle connections",
           _idle_rows(0, _t("C: idle memory ≤ 4.5 KB per connection (5"), ())),
          (lambda st: f"{st.get('connections', 0):,} idle connections",
           _idle_rows(1, _t("C: idle memory ≤ 4.5 KB per connection (19"), _t("C: 19,900")))],
    "D": [(lambda st: f"{st.get('joiners')} joiners of a {st.get('doc_size_mib', 0):g} MiB document, one after another",
           _join_rows(0, _t("D: 10 MiB"), (), ())),
          (lambda st: f"{st.get('joiners')} joiners of a {st.get('doc_size_mib', 0) * 1.048576:.0f} MB document"
                      + (" at once" if st.get("concurrent") else ", one after another"),
           _join_rows(1, (), _t("D: 150"), _t("D: peak")))],
    "P": [(_rooms_title, _presence_rows(0, ())), (_rooms_title, _presence_rows(1, _t("P:")))],
    "X": [(lambda st: "", _cross_rows())],
}


# Cells that combine two figures: metric -> (left, right, the field that must be present, separator).
_PAIRS = {
    "lost_dup": ("lost", "duplicated", "lost", " / "),
    "synced_attempted": ("synced", "attempted", "attempted", " / "),
    "failed_dropped": ("failed", "dropped", "failed", " / "),
    "synced_dropped": ("synced", "dropped", "synced", " / "),
    "rss_before_after": ("rss_before_mib", "rss_after_mib", "rss_after_mib", " → "),
    "succeeded_joiners": ("succeeded", "joiners", "joiners", " / "),
    "p50_p99": ("p50_ms", "p99_ms", "p50_ms", " / "),
    "cross_p50_p99": ("cross_p50_ms", "cross_p99_ms", "cross_p50_ms", " / "),
}

# Cells that combine three figures: metric -> (the figures, the one that must be present).
_TRIPLES = {
    "ack_p50_p99_p999": (("ack_p50_ms", "ack_p99_ms", "ack_p999_ms"), "ack_p50_ms"),
}


def _derived(f: dict, metric: str):
    """Figures shown combined in one cell."""
    def n(v):
        return "—" if v is None else f"{v:,}" if isinstance(v, int) else _num(v)
    triple = _TRIPLES.get(metric)
    if triple is not None:
        names, present = triple
        return None if f.get(present) is None else " / ".join(n(f.get(name)) for name in names)
    pair = _PAIRS.get(metric)
    if pair is None:
        return f.get(metric)
    left, right, present, sep = pair
    return None if f.get(present) is None else f"{n(f.get(left))}{sep}{n(f.get(right))}"


def _num(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def cell(value, kind: str) -> str:
    """A table cell; — when the run produced no value."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "str" or isinstance(value, str):
        return str(value).replace("|", "\\|")
    if kind == "int":
        return f"{round(value):,}"
    if kind == "pct":
        return f"{value:.0f} %"
    return _num(value)


def _server_figures(results: dict, scenario: str, server: str) -> list[dict]:
    result = results["scenarios"].get(scenario, {}).get(server)
    return fig.scenario_figures(scenario, result) if result else []


def verdicts(results: dict, server: str = "chorus") -> list[Verdict]:
    """Every target against one server's figures of this run (Chorus by default)."""
    out = []
    for t in TARGETS:
        others = {s: _server_figures(results, t.scenario, s) for s in results["scenarios"].get(t.scenario, {})}
        out.append(evaluate(t, _server_figures(results, t.scenario, server), others))
    return out


# Configuration variants of Chorus whose figures are shown next to the targets too.
VARIANTS = ["chorus-fsync-1s", "chorus-memory"]


def _target_text(v: Verdict) -> str:
    t = v.target
    symbol = {"le": "≤", "ge": "≥", "lt": "<", "eq": "="}.get(t.compare.__name__, "?")
    if isinstance(t.threshold, bool):
        return "all held"
    if t.relative_to is None:
        return f"{symbol} {_num(t.threshold)} {t.unit}".strip()
    ratio = "" if t.threshold == 1.0 else f"{t.threshold:g}× "
    kind = KINDS.get(t.relative_to)
    label = kind.label if kind else t.relative_to
    limit = "" if v.limit is None else f" = {_num(v.limit)} {t.unit}"
    return f"{symbol} {ratio}{label}{limit}".strip()


def _verdict_text(v: Verdict) -> str:
    mark = {"met": "**met**", "missed": "**missed**"}.get(v.verdict, v.verdict)
    return f"{mark} ({v.note})" if v.note else mark


def render(results: dict, charts: dict[str, str], results_rel: str, notes: str | None) -> str:
    """The whole BENCHMARKS.md."""
    meta = results["meta"]
    servers = meta["servers"]
    labels = {k: results["servers"].get(k, {}).get("label", k) for k in servers}
    all_verdicts = verdicts(results)
    out: list[str] = []
    w = out.append
    w("# Benchmarks\n")
    w(f"Chorus against the reference y-websocket servers and a bare relay, all on one machine, in one "
      f"run of `loadtest/bench/bench.py` ({meta['started']} – {meta['finished']}, "
      f"{meta['elapsed_min']:.0f} min). "
      f"The load generator is `chorus-loadtest` (`loadtest/README.md`), which every server saw unchanged. "
      f"Raw data: [`{results_rel}/results.json`]({results_rel}/results.json).\n")
    if rerun := meta.get("rerun"):
        w(f"**Scenarios {', '.join(rerun['scenarios'])} were run again for every server** "
          f"({rerun['started']} – {rerun['finished']}, commit `{rerun['git_commit']}`): "
          f"{rerun['why']}. Their figures come from that run; see the notes at the end.\n")
    if meta["quick"]:
        w("**Quick mode:** shorter durations and fewer connections and joiners than the scenario files; "
          "targets that depend on the full size show as *not comparable*.\n")
    if meta.get("incomplete"):
        w(f"**This run did not finish:** {meta['incomplete']}\n")

    _at_a_glance(w, results, servers, labels)

    w("## Targets (Chorus)\n")
    variants = [k for k in VARIANTS if k in servers]
    variant_verdicts = [verdicts(results, k) for k in variants]
    w("| target | Chorus | target | met / missed | " + " | ".join(labels[k] for k in variants)
      + (" |" if variants else ""))
    w("|---|---|---|---|" + "---|" * len(variants))
    for i, v in enumerate(all_verdicts):
        line = f"| {v.target.text} | {cell(v.value, 'num')} | {_target_text(v)} | {_verdict_text(v)} |"
        for vv in variant_verdicts:
            other = vv[i]
            line += (f" {cell(other.value, 'num')} ({other.verdict}) |" if other.value is not None else " — |")
        w(line)
    w("")
    if variants:
        w("The variant columns are the same binary with other settings, for comparison; the targets are "
          "judged on Chorus as it ships (its defaults).\n")

    w("## Machine\n")
    m = meta["machine"]
    mem = m.get("mem_total_kib")
    w(f"- CPU: {m['cpu_model']}, `nproc` = {m['nproc']}")
    w(f"- Memory: {mem / 1048576:.1f} GiB" if mem else "- Memory: unknown")
    w(f"- Kernel: {m['kernel']} ({m['os']})")
    w(f"- Open files (soft, hard) after raising the soft limit: {m.get('nofile_limit_raised')}")
    w(f"- Load average at the start / end: {meta.get('loadavg_start')} / {meta.get('loadavg_end')} "
      "(the machine is shared with other work; each step's own load averages are in results.json)")
    w("- Generator and servers share the machine's cores: every figure includes that competition.\n")

    w("## Versions\n")
    w(f"- Chorus: `{m['git_commit']}`{' with uncommitted changes' if m.get('git_dirty') else ''}, "
      f"release build; {m['rustc']}")
    w(f"- Node {m['node']}, npm {m['npm']}; {m['redis_server']}; Python {m['python']}")
    w("")
    w("| server | role | version (as installed) | notes |")
    w("|---|---|---|---|")
    for key in servers:
        s = results["servers"].get(key, {})
        notes_cell = "; ".join(s.get("notes", []) + ([f"NOT RUN: {s['error']}"] if s.get("error") else []))
        w(f"| {labels[key]} | {s.get('role', '')} | {cell(s.get('version'), 'str')} | {cell(notes_cell, 'str')} |")
    w("")

    w("## Command\n")
    w("```sh")
    w(meta["build_command"])
    w(meta["command"])
    w("```\n")
    w("Each step of a scenario ran against a freshly started server on 127.0.0.1 (port 0 or a free port), "
      "which was stopped with SIGTERM afterwards; the stages of S share one server, as `chorus-loadtest ramp`'s "
      "do. The generator's exact command line of every step is in results.json.\n")

    w("## How to read the figures\n")
    w("- **Deliveries/s**: deliveries of updates sent in the measured window, divided by its length. "
      "A delivery is one update arriving at one other user of its room.")
    w("- **Latency**: from just before the send to the moment the receiver reads the frame (HdrHistogram).")
    w("- **Server CPU per delivery** = server CPU time over the measured window (from /proc, by the generator) "
      "÷ deliveries in that window. For presence-only runs, ÷ presence deliveries.")
    w("- **Peak RSS during the step**: the bench's own /proc sampler (every 0.25 s) over the whole step. "
      "D's peak during the joins comes from the generator's 10 ms sampler.")
    w("- **Generator health**: *ticks late* means the generator's send ticks fired more than 20 ms late at p99 "
      "(the machine was busy), *generator saturated* that the generator used > 85 % of its cores; latency then "
      "includes the generator's own queueing.")
    w("- The reference servers echo every update to its sender too (y-websocket's design); those echoes are "
      "counted apart and are part of their CPU cost.\n")

    for key, scn in SCENARIOS.items():
        if key not in meta["scenarios"]:
            continue
        w(f"## {key}: {scn.title}\n")
        w(f"Scenario file: `loadtest/scenarios/{scn.file}`" +
          (f"; overrides: `{_overrides_text(scn, meta['quick'])}`" if _overrides_text(scn, meta['quick']) else "") + ".\n")
        by_server = results["scenarios"].get(key, {})
        cols = [s for s in servers if s in by_server]
        skipped = [(s, by_server[s].get("skipped")) for s in cols if by_server[s].get("skipped")]
        cols = [s for s in cols if not by_server[s].get("skipped")]
        if key == "S":
            _ramp_section(w, results, cols, labels)
        else:
            settings = results.get("settings", {}).get(key, [])
            for i, (title_of, rows) in enumerate(TABLES[key]):
                title = title_of(settings[i] if i < len(settings) else {})
                if title:
                    w(f"**{title}**\n")
                _table(w, results, key, cols, labels, rows, all_verdicts)
        for s, reason in skipped:
            w(f"- {labels[s]}: not run: {reason}")
        _errors(w, results, key, cols, labels)
        _scenario_charts(w, key, charts, results, cols, labels, results_rel)
        w("")

    if notes:
        w("## Notes on this run\n")
        w(notes.strip() + "\n")
    return "\n".join(out).rstrip() + "\n"


# The few figures a reader compares first: (label, scenario, step, metric, kind, lower is better).
GLANCE = [
    ("A: server CPU per delivery (µs)", "A", 0, "cpu_us_per_delivery", "num", True),
    ("A: latency p99 (ms)", "A", 0, "p99_ms", "num", True),
    ("B: server CPU per delivery (µs)", "B", 0, "cpu_us_per_delivery", "num", True),
    ("B: latency p99 (ms)", "B", 0, "p99_ms", "num", True),
    ("S: deliveries/s at p99 < 50 ms", "S", 0, "best_deliveries_per_s", "int", False),
    ("C: memory per idle connection, 5,000 (KB)", "C", 0, "kb_per_conn", "num", True),
    ("D: 10 MiB document, join p50 (ms)", "D", 0, "step2_p50_ms", "num", True),
]

# Servers a reader would pick between; variants and yardsticks come after them.
_ROLE_ORDER = {"under test": 0, "reference": 1, "under test (variant)": 2, "baseline": 3, "yardstick": 4}


def _at_a_glance(w, results: dict, servers: list[str], labels: dict[str, str]) -> None:
    """A short table of the headline figures of every server, best of each row in bold."""
    ran = [s for s in servers if any(s in results["scenarios"].get(g[1], {}) for g in GLANCE)]
    cols = sorted(ran, key=lambda s: _ROLE_ORDER.get(results["servers"].get(s, {}).get("role", ""), 5))
    rows = []
    for label, scenario, step, metric, kind, lower_is_better in GLANCE:
        if scenario not in results["scenarios"]:
            continue
        values = {}
        for s in cols:
            steps = _server_figures(results, scenario, s)
            value = steps[step].get(metric) if step < len(steps) else None
            values[s] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        # The yardstick does not keep documents; it is shown, but is never "best".
        contenders = [v for s, v in values.items()
                      if v is not None and results["servers"].get(s, {}).get("role") != "yardstick"]
        best = (min if lower_is_better else max)(contenders) if contenders else None
        cells = [("**" + cell(v, kind) + "**") if v is not None and v == best else cell(v, kind)
                 for v in values.values()]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    if not rows:
        return
    w("## How Chorus compares\n")
    w("| | " + " | ".join(labels[s] for s in cols) + " |")
    w("|---" * (len(cols) + 1) + "|")
    for row in rows:
        w(row)
    w("")
    w("Lower is better except for S. Bold: the best server of the row (the bare relay keeps no document and "
      "is a yardstick, not a contender). Within a row, every figure is from one run; details and the targets follow.\n")


def _overrides_text(scn, quick: bool) -> str:
    overrides = scn.quick if quick else scn.full
    parts = []
    for step, flags in sorted(overrides.items()):
        flags_text = " ".join(f"{k}={v}" for k, v in flags.items())
        parts.append(f"step {step + 1}: {flags_text}")
    return "; ".join(parts)


def _table(w, results, key, cols, labels, rows, all_verdicts) -> None:
    per_server = {s: fig.scenario_figures(key, results["scenarios"][key][s]) for s in cols}
    has_target = any(r.targets for r in rows)
    header = "| | " + " | ".join(labels[s] for s in cols) + (" | target | met / missed (Chorus) |" if has_target else " |")
    w(header)
    w("|---" * (len(cols) + 1 + (2 if has_target else 0)) + "|")
    for row in rows:
        cells = []
        for s in cols:
            steps = per_server[s]
            f = steps[row.step] if row.step < len(steps) else {}
            cells.append(cell(_derived(f, row.metric), row.kind))
        line = f"| {row.label} | " + " | ".join(cells)
        if has_target:
            if row.targets:
                vs = [all_verdicts[i] for i in row.targets]
                line += (" | " + "; ".join(_target_text(v) for v in vs)
                         + " | " + "; ".join(_verdict_text(v) for v in vs))
            else:
                line += " | |"
        w(line + " |")
    w("")


def _ramp_section(w, results, cols, labels) -> None:
    rows = [
        Row("best deliveries/s with p99 ≤ limit", 0, "best_deliveries_per_s", "int", _t("S: deliveries/s at p99 < 50 ms ≥ 0.9", "S: deliveries/s at p99 < 50 ms ≥ @")),
        Row("rate per typist at that stage (updates/s)", 0, "best_rate"),
        Row("p99 at that stage (ms)", 0, "best_p99_ms"),
        Row("server CPU at that stage (% of one core)", 0, "best_cpu_pct", "pct"),
        Row("server CPU per delivery at that stage (µs)", 0, "best_cpu_us_per_delivery"),
        Row("stages run", 0, "stages_run", "int"),
        Row("why the ramp stopped", 0, "stopped_because", "str"),
    ]
    _table(w, results, "S", cols, labels, rows, verdicts(results))
    w("Stages (deliveries/s → p99 ms, server CPU):\n")
    for s in cols:
        steps = fig.scenario_figures("S", results["scenarios"]["S"][s])
        stages = steps[0]["stages"] if steps else []
        text = "; ".join(
            f"{cell(st['deliveries_per_s'], 'int')}/s → {cell(st['p99_ms'], 'num')} ms, {cell(st['server_cpu_pct'], 'pct')}"
            + (f" ({st['generator_flag']})" if st["generator_flag"] else "")
            for st in stages
        )
        w(f"- {labels[s]}: {text or 'no stage ran'}")
    w("")


def _errors(w, results, key, cols, labels) -> None:
    for s in cols:
        for i, f in enumerate(fig.scenario_figures(key, results["scenarios"][key][s])):
            if f.get("error"):
                w(f"- {labels[s]}, step {i + 1}: {cell(f['error'], 'str')}")
        if results["scenarios"][key][s].get("error"):
            w(f"- {labels[s]}: {cell(results['scenarios'][key][s]['error'], 'str')}")


CHARTS_FOR = {
    "A": ["latency-a-b", "cpu-per-delivery"],
    "B": ["latency-a-b", "cpu-per-delivery"],
    "S": ["saturation-ramp", "cpu-per-delivery"],
    "C": ["idle-memory"],
    "D": ["join-time", "join-memory"],
    "P": ["presence-cpu", "cpu-per-delivery"],
    "X": ["cross-node"],
}


# The chart shown inline in each scenario's section (each chart once).
EMBED = {"A": "latency-a-b", "B": "cpu-per-delivery", "S": "saturation-ramp", "C": "idle-memory",
         "D": "join-time", "P": "presence-cpu", "X": "cross-node"}


def _scenario_charts(w, key, charts, results, cols, labels, results_rel) -> None:
    links = [f"[{name}]({results_rel}/{charts[name]})" for name in CHARTS_FOR.get(key, []) if name in charts]
    timeline = re.compile(rf"^(cpu|rss)-{key.lower()}\d+$")
    links += [f"[{name}]({results_rel}/{charts[name]})" for name in sorted(charts) if timeline.match(name)]
    latency = []
    for s in cols:
        result = results["scenarios"][key][s]
        for record in result.get("steps", []):
            if record.get("chart"):
                latency.append(f"[{labels[s]} step {record.get('step')}]({results_rel}/{record['chart']})")
    if links:
        w("\nCharts: " + ", ".join(links) + ".")
    if latency:
        w("Latency over time (generator charts): " + ", ".join(latency) + ".")
    if (embedded := EMBED.get(key)) in charts:
        w(f"\n![{embedded}]({results_rel}/{charts[embedded]})")
