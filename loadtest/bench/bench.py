#!/usr/bin/env python3
"""Runs the load scenarios against Chorus, the reference Node servers and the bare relay, in
one run, and writes results.json, SVG charts and BENCHMARKS.md.

    python3 loadtest/bench/bench.py                  # everything (about 30 min on 2 cores)
    python3 loadtest/bench/bench.py --quick          # shorter, smaller: a smoke run
    python3 loadtest/bench/bench.py --scenarios A,C --servers chorus,bare-relay
    python3 loadtest/bench/bench.py --report-only    # redraw charts and BENCHMARKS.md

See loadtest/bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import charts, machine, markdown
from benchlib.scenarios import SCENARIOS, Context, log
from benchlib.servers import DEFAULT_SERVERS, KINDS, prepare

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent.parent
BUILD = ["cargo", "build", "--release", "-p", "chorus-cli", "-p", "chorus-loadtest"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="shorter durations, fewer connections and joiners")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"comma-separated subset of {','.join(SCENARIOS)} (default: all)")
    p.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                   help=f"comma-separated subset of {','.join(KINDS)} (default: {','.join(DEFAULT_SERVERS)})")
    p.add_argument("--no-build", action="store_true", help="use the existing target/release binaries")
    p.add_argument("--results", type=Path,
                   help="output directory (default: loadtest/bench/results, or results-quick with --quick)")
    p.add_argument("--markdown", type=Path,
                   help="report to write (default: BENCHMARKS.md at the repository root for a full run "
                        "of every scenario, else RESULTS/BENCHMARKS.md)")
    p.add_argument("--notes", type=Path, help="a Markdown file appended to the report as 'Notes on this run'")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379", help="Redis for scenario X")
    p.add_argument("--report-only", action="store_true", help="redraw charts and the report from results.json")
    p.add_argument("--keep-workdir", action="store_true", help="keep server logs, data dirs and npm installs")
    args = p.parse_args(argv)
    args.scenarios = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = [s for s in args.scenarios if s not in SCENARIOS] + [s for s in args.servers if s not in KINDS]
    if bad:
        p.error(f"unknown scenario or server: {', '.join(bad)}")
    args.results = args.results or BENCH_DIR / ("results-quick" if args.quick else "results")
    full_run = not args.quick and args.scenarios == list(SCENARIOS)
    args.markdown = args.markdown or (REPO / "BENCHMARKS.md" if full_run else args.results / "BENCHMARKS.md")
    return args


def redis_reachable(url: str) -> bool:
    """Whether something answers PING on the URL's host and port."""
    rest = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = rest.partition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 6379)), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))
    except (OSError, ValueError):
        return False


def save(results: dict, results_dir: Path) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    tmp = results_dir / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(results_dir / "results.json")


def report(results: dict, args: argparse.Namespace) -> None:
    drawn = charts.draw(results, args.results)
    rel = Path(os.path.relpath(args.results, args.markdown.parent)).as_posix()
    notes = args.notes.read_text(encoding="utf-8") if args.notes else None
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(markdown.render(results, drawn, rel, notes), encoding="utf-8")
    log(f"wrote {args.markdown} and {len(drawn)} charts under {args.results / 'charts'}")


def run(args: argparse.Namespace) -> dict:
    limits = machine.raise_nofile_limit()
    if not args.no_build:
        log(" ".join(BUILD))
        subprocess.run(BUILD, cwd=REPO, check=True)
    started = time.time()
    command = "python3 " + shlex.join([str(Path(sys.argv[0]).resolve().relative_to(REPO))] + sys.argv[1:])
    info = machine.describe(REPO)
    info["nofile_limit_raised"] = list(limits) if limits else None
    results = {
        "meta": {
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "finished": None,
            "elapsed_min": 0.0,
            "quick": args.quick,
            "scenarios": args.scenarios,
            "servers": args.servers,
            "command": command,
            "build_command": shlex.join(BUILD),
            "machine": info,
            "loadavg_start": machine.load_average(),
        },
        "servers": {},
        "scenarios": {},
    }
    # Stale charts from an earlier run must not end up linked next to this run's figures.
    shutil.rmtree(args.results / "charts", ignore_errors=True)
    workdir = Path(tempfile.mkdtemp(prefix="chorus-bench-"))
    log(f"work directory {workdir}")
    try:
        prepared = {}
        for key in args.servers:
            prepared[key] = prepare(KINDS[key], REPO, workdir / "npm")
            results["servers"][key] = prepared[key].to_json()
            state = prepared[key].error or prepared[key].version
            log(f"{key}: {state}")
        ctx = Context(REPO, REPO / "target/release/chorus-loadtest", args.results, workdir, args.quick,
                      prepared, args.redis_url if redis_reachable(args.redis_url) else None)
        for key in args.scenarios:
            scn = SCENARIOS[key]
            results.setdefault("settings", {})[key] = scn.steps(ctx)
            by_server = results["scenarios"].setdefault(key, {})
            for server in args.servers:
                reason = scn.skip_reason(server)
                if reason is None and prepared[server].error:
                    reason = f"could not be installed: {prepared[server].error}"
                if reason:
                    by_server[server] = {"skipped": reason}
                    continue
                t0 = time.monotonic()
                by_server[server] = scn.runner(ctx, scn, server)
                by_server[server]["elapsed_s"] = round(time.monotonic() - t0, 1)
                save(results, args.results)
    except KeyboardInterrupt:
        results["meta"]["incomplete"] = "interrupted; the figures below are what finished before that"
        log("interrupted: writing what finished")
    finally:
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["finished"] = time.strftime("%Y-%m-%d %H:%M UTC")
    results["meta"]["elapsed_min"] = round((time.time() - started) / 60, 1)
    results["meta"]["loadavg_end"] = machine.load_average()
    save(results, args.results)
    return results


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C does: servers stopped, partial results written.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.report_only:
        path = args.results / "results.json"
        results = json.loads(path.read_text(encoding="utf-8"))
    else:
        results = run(args)
    report(results, args)
    return 1 if results["meta"].get("incomplete") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
