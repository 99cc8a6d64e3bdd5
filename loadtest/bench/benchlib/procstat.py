"""Samples server processes' CPU time and resident memory from /proc while a step runs.

The generator reports the server's CPU over its measured window; this sampler adds the whole
step (connect, warm-up, drain), the peak RSS and a time series for the resource charts.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Linux exports CPU times in USER_HZ ticks; sysconf gives the real value where it differs.
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Often enough to catch the RSS peak of a join burst, rarely enough to cost nothing.
SAMPLE_EVERY_S = 0.25
# Shortest interval a CPU rate is computed over (the last sample of a step may come early).
MIN_RATE_INTERVAL_S = 0.2


def parse_cpu_seconds(stat: str) -> float | None:
    """utime + stime, in seconds, from the text of /proc/PID/stat.

    The command name (field 2) may contain spaces and parentheses, so fields are counted from
    the last ``)``.
    """
    end = stat.rfind(")")
    if end < 0:
        return None
    fields = stat[end + 1 :].split()
    # After the name, field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    if len(fields) < 13:
        return None
    try:
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except ValueError:
        return None


def parse_status_kib(status: str, key: str) -> int | None:
    """A ``kB`` field (``VmRSS``, ``VmHWM``) of /proc/PID/status text."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            parts = value.split()
            if parts and parts[0].isdigit():
                return int(parts[0])
    return None


def read_sample(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, RSS KiB) of a live process, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    cpu = parse_cpu_seconds(stat)
    rss = parse_status_kib(status, "VmRSS")
    if cpu is None or rss is None:
        return None
    return cpu, rss


@dataclass
class Series:
    """One process's samples: seconds since the sampler started, CPU seconds, RSS KiB."""

    pid: int
    points: list[tuple[float, float, int]] = field(default_factory=list)

    def summary(self) -> dict:
        """CPU used and memory over the sampled span."""
        if not self.points:
            return {"pid": self.pid, "samples": 0}
        t0, cpu0, rss0 = self.points[0]
        t1, cpu1, rss1 = self.points[-1]
        wall = t1 - t0
        cpu = cpu1 - cpu0
        return {
            "pid": self.pid,
            "samples": len(self.points),
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "cpu_percent_mean": round(100.0 * cpu / wall, 1) if wall > 0 else None,
            "rss_kib_first": rss0,
            "rss_kib_last": rss1,
            "rss_kib_peak": max(p[2] for p in self.points),
        }

    def rates(self) -> list[tuple[float, float, float]]:
        """(seconds, CPU percent of one core since the previous sample, RSS MiB) per sample."""
        out = []
        last = None
        for point in self.points:
            # CPU time moves in 10 ms ticks: over a very short interval the rate is noise.
            if last is None or point[0] - last[0] >= MIN_RATE_INTERVAL_S:
                if last is not None:
                    (ta, ca, _), (tb, cb, rb) = last, point
                    out.append((tb, 100.0 * (cb - ca) / (tb - ta), rb / 1024.0))
                last = point
        return out


class Sampler:
    """Samples some pids on a background thread between ``start()`` and ``stop()``."""

    def __init__(self, pids: list[int], every_s: float = SAMPLE_EVERY_S) -> None:
        self.series = [Series(pid) for pid in pids]
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = 0.0

    def __enter__(self) -> Sampler:
        self._t0 = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        # A last sample, so the span covers the whole step.
        self._sample()

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self._sample()

    def _sample(self) -> None:
        now = time.monotonic() - self._t0
        for series in self.series:
            sample = read_sample(series.pid)
            if sample is not None:
                series.points.append((round(now, 3), sample[0], sample[1]))

    def to_json(self) -> list[dict]:
        """Summaries plus the raw points, for results.json and the charts."""
        return [
            {**s.summary(), "points": [list(p) for p in s.points]} for s in self.series
        ]
