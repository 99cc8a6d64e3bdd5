"""Runs ``chorus-loadtest`` subcommands and reads their ``--json`` reports."""

from __future__ import annotations

import json
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

# Exit codes of chorus-loadtest that still come with a full report.
REPORTED_CODES = {0: "ok", 2: "verify failed", 3: "some connection failed or dropped"}


def load_scenario(path: Path) -> dict:
    """A scenario file (``loadtest/scenarios/*.toml``) as a dict with ``step`` tables."""
    with path.open("rb") as f:
        return tomllib.load(f)


def flag_argv(values: dict) -> list[str]:
    """``{"rooms": 100, "verify": True}`` → ``["--rooms", "100", "--verify"]``.

    The same mapping as ``chorus-loadtest scenario`` (``loadtest/src/scenario.rs``), so a step
    run from here means what the scenario file means.
    """
    argv: list[str] = []
    for key, value in values.items():
        flag = "--" + key.replace("_", "-")
        for item in value if isinstance(value, list) else [value]:
            if item is True:
                argv.append(flag)
            elif item is False or item is None:
                continue
            else:
                argv += [flag, str(item)]
    return argv


@dataclass
class Outcome:
    """What one generator invocation produced."""

    argv: list[str]
    exit_code: int | None
    report: dict | None
    error: str | None

    def to_json(self) -> dict:
        return {
            "argv": self.argv,
            "exit_code": self.exit_code,
            "report": self.report,
            "error": self.error,
        }


def run(binary: Path, argv: list[str], timeout_s: float) -> Outcome:
    """Runs ``chorus-loadtest ARGV --json`` and parses the report from stdout."""
    full = [str(binary), *argv, "--json"]
    try:
        out = subprocess.run(
            full, capture_output=True, text=True, timeout=timeout_s, check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Outcome(full, None, None, f"timed out after {timeout_s:.0f}s")
    except OSError as err:
        return Outcome(full, None, None, str(err))
    report = None
    error = None
    try:
        parsed = json.loads(out.stdout) if out.stdout.strip() else None
        report = parsed if isinstance(parsed, dict) else None
    except json.JSONDecodeError as err:
        error = f"unparseable report: {err}"
    if out.returncode not in REPORTED_CODES or report is None:
        tail = " | ".join(out.stderr.strip().splitlines()[-5:])
        error = error or f"exit {out.returncode}: {tail or 'no report'}"
    return Outcome(full, out.returncode, report, error)
