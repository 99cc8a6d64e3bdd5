"""Where a process's CPU went, from a `perf record -g` profile: kernel time by the system call
that led to it (sends, receives and epoll, fsync, futex wake-ups and waits, file writes), user
time by crate. Samples, not seconds: compare servers by their totals in runs of equal length.

    python3 loadtest/bench/perf_breakdown.py perf.data [perf.data ...]
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

# Kernel frames that name what the process asked of the kernel, first match wins (innermost
# frames come first in a sample, so the most specific names are checked first).
KERNEL_GROUPS = [
    ("fsync", ("__x64_sys_fdatasync", "__x64_sys_fsync", "do_fsync")),
    ("futex (thread wake-ups)", ("do_futex", "futex_wake", "futex_wait")),
    ("send", ("tcp_sendmsg", "__x64_sys_sendto", "sock_write_iter")),
    ("receive and epoll", ("tcp_recvmsg", "__x64_sys_recvfrom", "ep_poll", "do_epoll_wait", "sock_read_iter")),
    ("file write", ("ext4_file_write_iter", "ksys_write", "ksys_pwrite64")),
    ("file open and close", ("do_sys_openat2", "__x64_sys_close", "do_filp_open")),
]
# User-space frames that a kernel sample returns to, when no kernel frame says more.
SYSCALL_SITES = [
    ("send", ("__send", "send", "sendto", "writev")),
    ("receive and epoll", ("recv", "recvfrom", "epoll_wait", "read")),
    ("futex (thread wake-ups)", ("syscall",)),
    ("fsync", ("fdatasync", "fsync")),
]
RUST_PATH = re.compile(r"^[<&]*(?:mut |dyn )?([A-Za-z_][A-Za-z0-9_]*)::")


def classify(frames: list[tuple[str, str]]) -> str:
    """One sample's frames (symbol, dso), innermost first → a group name."""
    if not frames:
        return "unknown"
    if "kernel" in frames[0][1]:
        names = [sym for sym, dso in frames if "kernel" in dso]
        for group, keys in KERNEL_GROUPS:
            if any(key in name for name in names for key in keys):
                return "kernel: " + group
        site = next((sym for sym, dso in frames if "kernel" not in dso), "")
        for group, keys in SYSCALL_SITES:
            if site.split("@")[0].lstrip("_").removeprefix("GI___libc_") in keys or site in keys:
                return "kernel: " + group
        return "kernel: other (scheduling, interrupts)"
    sym, dso = frames[0]
    if "libc" in dso:
        return "user: libc " + ("malloc/free" if re.search(r"malloc|free|_int_|consolidate|unlink_chunk", sym)
                                else "other")
    match = RUST_PATH.match(sym)
    return "user: " + (match.group(1) if match else "other")


def samples(path: str):
    """(thread name, frames) of every sample in a perf.data file."""
    text = subprocess.run(["perf", "script", "-i", path, "-F", "comm,ip,sym,dso"],
                          capture_output=True, text=True, check=True).stdout
    for block in text.split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
        if not lines:
            continue
        frames = []
        for line in lines[1:]:
            m = re.match(r"(?:[0-9a-f]+\s+)?(.*?)\s+\((.*)\)$", line)
            if m:
                frames.append((re.sub(r"::h[0-9a-f]{16}", "", m.group(1)).split("+0x")[0], m.group(2)))
        yield lines[0].split()[0], frames


def breakdown(path: str) -> tuple[int, Counter]:
    groups: Counter = Counter()
    total = 0
    for thread, frames in samples(path):
        total += 1
        # tokio's workers and blocking threads share one name; other threads are named.
        where = "" if thread.startswith("tokio-rt") else f" [{thread} thread]"
        groups[classify(frames) + where] += 1
    return total, groups


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    for path in paths:
        total, groups = breakdown(path)
        print(f"{path}: {total} samples")
        for group, n in groups.most_common():
            if n * 200 < total:
                break
            print(f"  {n:7d}  {100 * n / total:5.1f} %  {group}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
