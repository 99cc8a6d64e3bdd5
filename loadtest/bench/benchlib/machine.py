"""What a run ran on: the machine and the versions of everything measured."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model(cpuinfo: str) -> str:
    """The first ``model name`` of /proc/cpuinfo text, or ``unknown``."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return "unknown"


def mem_total_kib(meminfo: str) -> int | None:
    """``MemTotal`` of /proc/meminfo text, in KiB."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
    return None


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other work shares this machine)."""
    fields = _read("/proc/loadavg").split()
    try:
        return [float(f) for f in fields[:3]]
    except ValueError:
        return []


def command_output(argv: list[str], cwd: Path | None = None) -> str:
    """First line of a command's stdout, or ``unavailable`` if it cannot run."""
    try:
        out = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = out.stdout.strip() or out.stderr.strip()
    return text.splitlines()[0] if text else "unavailable"


def describe(repo: Path) -> dict:
    """Machine and toolchain facts recorded with every run."""
    commit = command_output(["git", "rev-parse", "--short", "HEAD"], repo)
    limits = _nofile_limits()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(_read("/proc/cpuinfo")),
        "mem_total_kib": mem_total_kib(_read("/proc/meminfo")),
        "kernel": platform.release(),
        "os": command_output(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "nofile_limit": limits,
        "git_commit": commit,
        "git_dirty": _git_dirty(repo),
        "rustc": command_output(["rustc", "--version"]),
        "node": command_output(["node", "--version"]),
        "npm": command_output(["npm", "--version"]),
        "redis_server": command_output(["redis-server", "--version"]),
        "python": platform.python_version(),
    }


def _git_dirty(repo: Path) -> bool | None:
    """Whether tracked source files differ from HEAD; the bench's own output does not count."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
             ":(exclude)BENCHMARKS.md", ":(exclude)loadtest/bench/results*"],
            cwd=repo, capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def _nofile_limits() -> list[int] | None:
    try:
        import resource

        return list(resource.getrlimit(resource.RLIMIT_NOFILE))
    except (ImportError, OSError, ValueError):
        return None


def raise_nofile_limit() -> tuple[int, int] | None:
    """Raises this process's open-file soft limit to the hard limit; children inherit it.

    Scenario C holds 19,900 sockets in the server and as many in the generator.
    """
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return None
