"""The scenarios, and how each one runs against one server.

Step settings come from ``loadtest/scenarios/*.toml`` (the files `chorus-loadtest scenario`
runs), with the bench's overrides on top: shorter durations in ``--quick`` mode, and the chart
path, URL and server pid always. Every step runs against a freshly started server, so no step
inherits another's rooms, documents or memory; the stages of S share one server, as the stages
of ``chorus-loadtest ramp`` do.
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import generator, machine
from .procstat import Sampler
from .servers import Prepared, RunningServer, ServerError

# Generous: a step that takes longer than this is stuck (D's joiners time out after 120 s each).
STEP_TIMEOUT_S = 900.0


@dataclass
class Context:
    """Everything a scenario run needs."""

    repo: Path
    loadtest_bin: Path
    results_dir: Path
    workdir: Path
    quick: bool
    prepared: dict[str, Prepared]
    redis_url: str | None

    @property
    def charts_dir(self) -> Path:
        return self.results_dir / "charts"


@dataclass(frozen=True)
class Scenario:
    """One scenario: its file, which servers it applies to, and per-mode step overrides."""

    key: str
    title: str
    file: str
    runner: Callable[[Context, "Scenario", str], dict]
    # Server keys it cannot apply to, with the reason.
    not_for: dict[str, str] = field(default_factory=dict)
    # Only these servers (empty: all).
    only: tuple[str, ...] = ()
    # Extra server flags per server family ("chorus", "relay", "node"), for settings a scenario
    # needs that are not the servers' defaults.
    server_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Per step index: flags replacing the file's in quick mode / in a full run.
    quick: dict[int, dict] = field(default_factory=dict)
    full: dict[int, dict] = field(default_factory=dict)

    def steps(self, ctx: Context) -> list[dict]:
        """The file's steps with this mode's overrides applied."""
        data = generator.load_scenario(ctx.repo / "loadtest/scenarios" / self.file)
        overrides = self.quick if ctx.quick else self.full
        return [{**step, **overrides.get(i, {})} for i, step in enumerate(data["step"])]

    def skip_reason(self, server: str) -> str | None:
        if self.only and server not in self.only:
            return f"scenario {self.key} applies only to {', '.join(self.only)}"
        return self.not_for.get(server)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _pid_flags(command: str, pids: list[int]) -> list[str]:
    # `run` samples several servers; `idle` and `join` take one pid.
    if command == "run":
        return [arg for pid in pids for arg in ("--server-pid", str(pid))]
    return ["--server-pid", str(pids[0])] if pids else []


def _step_argv(step: dict, urls: list[str], pids: list[int], chart: Path | None,
               protocol: str = "y-websocket") -> list[str]:
    command = step["command"]
    flags = {k: v for k, v in step.items() if k != "command"}
    if protocol != "y-websocket":
        # `run`, `idle` and `join` all speak it; the server kind decides, not the scenario.
        flags["protocol"] = protocol
    if command == "run":
        # The file's chart name is relative to the working directory; charts go to results/.
        flags.pop("chart", None)
        if chart is not None:
            flags["chart"] = str(chart)
    # Later flags override earlier ones in chorus-loadtest, so the bench's own come last.
    argv = [command, *generator.flag_argv(flags)]
    argv += [arg for url in urls for arg in ("--url", url)]
    argv += _pid_flags(command, pids)
    if command in ("run", "idle"):
        argv.append("--no-progress")
    return argv


def _measure(ctx: Context, servers: list[RunningServer], argv: list[str]) -> dict:
    """Runs the generator against running servers while sampling them."""
    load_before = machine.load_average()
    with Sampler([s.pid for s in servers]) as sampler:
        outcome = generator.run(ctx.loadtest_bin, argv, STEP_TIMEOUT_S)
    alive = [s.alive() for s in servers]
    return {
        "generator": outcome.to_json(),
        "samples": sampler.to_json(),
        "servers_alive_after": alive,
        "server_log_tail": [s.log_tail() for s, ok in zip(servers, alive) if not ok],
        "loadavg_before": load_before,
        "loadavg_after": machine.load_average(),
    }


def _start(ctx: Context, server: str, name: str, extra: list[str] | None = None) -> RunningServer:
    return RunningServer(ctx.prepared[server], ctx.workdir / "servers", name, extra or [])


def _family(ctx: Context, server: str) -> str:
    return ctx.prepared[server].kind.family


def _stop_all(servers: list[RunningServer]) -> list[int | None]:
    return [s.stop() for s in servers]


def _chart(ctx: Context, scenario: str, step: int, server: str) -> Path:
    ctx.charts_dir.mkdir(parents=True, exist_ok=True)
    return ctx.charts_dir / f"latency-{scenario.lower()}{step + 1}-{server}.svg"


def run_steps(ctx: Context, scn: Scenario, server: str) -> dict:
    """Each step of the scenario against a fresh server."""
    steps = []
    for i, step in enumerate(scn.steps(ctx)):
        name = f"{scn.key.lower()}{i + 1}-{server}"
        try:
            running = _start(ctx, server, name, list(scn.server_args.get(_family(ctx, server), ())))
        except ServerError as err:
            steps.append({"step": i + 1, "error": str(err)})
            continue
        chart = _chart(ctx, scn.key, i, server) if step["command"] == "run" else None
        argv = _step_argv(step, [running.url], [running.pid], chart, running.kind.protocol)
        log(f"{scn.key} step {i + 1} on {server}: {' '.join(argv[:12])} ...")
        try:
            record = _measure(ctx, [running], argv)
        finally:
            exit_code = running.stop()
        record["server_exit"] = [exit_code]
        record["step"] = i + 1
        if chart is not None and chart.is_file():
            record["chart"] = str(chart.relative_to(ctx.results_dir))
        _say(scn.key, server, record)
        steps.append(record)
    return {"steps": steps}


RAMP_ONLY = ("factor", "p99_limit", "max_stages")


def run_ramp(ctx: Context, scn: Scenario, server: str) -> dict:
    """Scenario S: `run` stages at a rising rate against one server, until p99 passes the limit.

    The same stages and stop rules as `chorus-loadtest ramp`, run one `run` at a time so each
    stage reports the server's CPU over its measured window (the ramp report has none), which
    gives CPU per delivery at the best stage.
    """
    (step,) = scn.steps(ctx)
    factor = float(step.get("factor", 1.5))
    limit_ms = _duration_ms(str(step.get("p99_limit", "50ms")))
    max_stages = int(step.get("max_stages", 12))
    stage_step = {k: v for k, v in step.items() if k not in RAMP_ONLY}
    stage_step["command"] = "run"
    rate = float(stage_step.get("rate", 1))
    prefix = f"ramp-{secrets.token_hex(4)}"
    try:
        running = _start(ctx, server, f"s-{server}")
    except ServerError as err:
        return {"stages": [], "error": str(err)}
    stages = []
    stopped = f"reached max_stages {max_stages}"
    try:
        for n in range(max_stages):
            this = {**stage_step, "rate": round(rate, 4), "doc_prefix": f"{prefix}-s{n}"}
            argv = _step_argv(this, [running.url], [running.pid], None, running.kind.protocol)
            record = _measure(ctx, [running], argv)
            record["rate"] = rate
            stages.append(record)
            _say(f"S stage {n + 1}", server, record)
            report = record["generator"]["report"]
            if report is None or not record["servers_alive_after"][0]:
                stopped = record["generator"]["error"] or "the server died"
                break
            updates = report["updates"]
            if updates["latency_ms"]["p99_ms"] > limit_ms:
                stopped = f"p99 passed {limit_ms:g} ms"
                break
            if report["generator"]["saturated"]:
                stopped = "the generator saturated"
                break
            if updates["lost"] > 0:
                stopped = f"{updates['lost']} deliveries lost"
                break
            rate *= factor
    finally:
        exit_code = running.stop()
    return {"stages": stages, "stopped_because": stopped, "p99_limit_ms": limit_ms,
            "server_exit": exit_code}


def run_cross_node(ctx: Context, scn: Scenario, server: str) -> dict:
    """Scenario X: two Chorus nodes sharing Redis; users of each room alternate between them.

    The cross-node figure comes from the generator; for the same-node figure the same load runs
    against one node of a fresh pair (its relay still publishes to Redis), since the generator
    reports only the overall and the cross-node histograms.
    """
    if not ctx.redis_url:
        return {"steps": [], "error": "no Redis reachable on 127.0.0.1:6379"}
    (step,) = scn.steps(ctx)
    steps = []
    for i, (label, nodes_used) in enumerate([("two nodes (cross-node)", 2), ("one node (same-node)", 1)]):
        prefix = f"bench-{secrets.token_hex(6)}"
        extra = ["--redis-url", ctx.redis_url, "--redis-prefix", prefix]
        nodes: list[RunningServer] = []
        try:
            for n in range(2):
                nodes.append(_start(ctx, server, f"x{i + 1}-node{n + 1}", extra))
        except ServerError as err:
            _stop_all(nodes)
            steps.append({"step": i + 1, "label": label, "error": str(err)})
            continue
        chart = _chart(ctx, scn.key, i, server)
        used = nodes[:nodes_used]
        argv = _step_argv(step, [n.url for n in used], [n.pid for n in nodes], chart,
                          used[0].kind.protocol)
        log(f"X {label}: redis prefix {prefix}")
        try:
            record = _measure(ctx, nodes, argv)
        finally:
            exits = _stop_all(nodes)
        record["server_exit"] = exits
        record.update({"step": i + 1, "label": label, "redis_prefix": prefix})
        if chart.is_file():
            record["chart"] = str(chart.relative_to(ctx.results_dir))
        _say(f"X {label}", server, record)
        steps.append(record)
    return {"steps": steps}


def _duration_ms(text: str) -> float:
    units = {"ms": 1.0, "s": 1000.0, "us": 0.001}
    for unit, scale in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


def _say(what: str, server: str, record: dict) -> None:
    g = record["generator"]
    report = g["report"] or {}
    if "updates" in report:
        u = report["updates"]
        p = report.get("presence") or {}
        summary = (f"{u['deliveries_per_sec']:.0f} deliveries/s p99 {u['latency_ms']['p99_ms']:.1f} ms"
                   f" lost {u['lost']}")
        if p:
            summary += f"; presence {p['deliveries_per_sec']:.0f}/s p99 {p['latency_ms']['p99_ms']:.1f} ms"
        a = report.get("acks") or {}
        if a:
            summary += f"; ack p99 {a['latency_ms']['p99_ms']:.1f} ms ({a['received']}/{a['expected']})"
        summary += f"; generator {report['generator']['cpu_percent'] or 0:.0f}%"
    elif "synced" in report:
        server_mem = report.get("server") or {}
        summary = f"{report['synced']}/{report['attempted']} synced, {server_mem.get('kib_per_connection')} KiB/conn"
    elif "time_to_step2_ms" in report:
        summary = (f"{report['succeeded']}/{report['joiners']} joined, step 2 p50 "
                   f"{report['time_to_step2_ms']['p50_ms']:.1f} ms max {report['time_to_step2_ms']['max_ms']:.0f} ms")
    else:
        summary = "no report"
    if g["error"]:
        summary += f" [{g['error']}]"
    if not all(record["servers_alive_after"]):
        summary += " [SERVER DIED]"
    log(f"{what} {server}: {summary}")


_TIMED = {"ramp_up": "3s", "warmup": "2s", "duration": "8s"}
# A full run of every scenario against every default server must stay near 30 minutes on
# 2 cores: measured windows of 20 s instead of 30 s, and shorter ramp stages.
_FULL = {"duration": "20s"}
# The storage variants differ from Chorus only where updates are logged.
_UPDATE_PATH_ONLY = {
    variant: "storage variants are compared on the update path (A, B, S) only"
    for variant in ("chorus-fsync-1s", "chorus-memory")
}

SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in [
        Scenario("A", "100 rooms × 10 users, 1 typist per room at 10 updates/s", "a-many-rooms.toml",
                 run_steps, quick={0: _TIMED}, full={0: _FULL}),
        Scenario("B", "one room of 500 users, 5 typists at 20 updates/s", "b-big-room.toml",
                 run_steps, quick={0: _TIMED}, full={0: _FULL}),
        Scenario("S", "saturation ramp: 100 rooms × 10 users, rate ×1.5 per stage until p99 > 50 ms",
                 "s-saturation-ramp.toml", run_ramp,
                 quick={0: {"ramp_up": "3s", "warmup": "2s", "duration": "5s", "max_stages": 8}},
                 full={0: {"warmup": "2s", "duration": "6s"}}),
        Scenario("C", "5,000 then 19,900 idle connections, 10 per room", "c-idle-connections.toml",
                 run_steps, not_for=_UPDATE_PATH_ONLY,
                 quick={0: {"connections": 1000, "settle": "2s"},
                                   1: {"connections": 3000, "settle": "2s"}}),
        Scenario("D", "20 joiners of a 10 MiB document one after another; 150 joining a 20 MB document at once",
                 "d-large-document.toml", run_steps,
                 not_for={"bare-relay": "holds no document: a late joiner gets nothing, by design",
                          **_UPDATE_PATH_ONLY},
                 # One client seeds 20 MB as fast as it can; Chorus's default per-connection limit
                 # (4 MiB/s, bursts up to --max-message-bytes) closes it with 1008 part-way.
                 server_args={"chorus": ("--max-bytes-per-second", "1073741824")},
                 quick={0: {"joiners": 5}, 1: {"joiners": 30}}),
        Scenario("P", "500 users sending presence at 1 Hz: 50 rooms × 10, then one room of 500",
                 "p-presence.toml", run_steps, not_for=_UPDATE_PATH_ONLY,
                 quick={0: _TIMED, 1: _TIMED}, full={0: _FULL, 1: _FULL}),
        Scenario("X", "two Chorus nodes sharing Redis: cross-node vs same-node latency",
                 "x-cross-node.toml", run_cross_node, only=("chorus",), quick={0: _TIMED},
                 full={0: _FULL}),
    ]
}
