"""The servers under test: how each is installed, started on 127.0.0.1 and stopped.

Every server listens on a free loopback port. Chorus and the bare relay bind port 0 and print
``{"fields":{"message":"listening","addr":…}}``; the Node servers take ``PORT`` from the
environment and print nothing parseable, so the port is chosen here (bind port 0, close) and
the server counts as up once it accepts a TCP connection.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# How long a server may take to print its address and accept connections.
START_TIMEOUT_S = 30.0
# Chorus flushes snapshots on SIGTERM (a 20 MB document in scenario D); give it time.
STOP_TIMEOUT_S = 30.0
NPM_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ServerKind:
    """One kind of server the bench can run."""

    key: str
    label: str
    role: str
    # "chorus", "relay" or "node".
    family: str
    # For Node servers: the npm package spec and the script to run inside node_modules.
    npm_spec: str = ""
    entry: str = ""
    # npm `overrides` to try when a plain install fails (see `install_node`).
    fallback_overrides: dict = field(default_factory=dict)
    # Extra command-line flags (a configuration variant of the same binary).
    args: tuple[str, ...] = ()
    # For another build of Chorus: the environment variable naming its binary.
    binary_env: str | None = None
    # The protocol the generator speaks to it (`chorus-loadtest --protocol`), and the path of
    # its endpoint: y-websocket appends the document name to it, Hocuspocus uses it as is.
    protocol: str = "y-websocket"
    path: str = "/ws"
    # For Node servers started by a script of this repository (relative to the repository
    # root): copied next to the installed package, and run instead of ``entry``.
    script: str = ""


KINDS: dict[str, ServerKind] = {
    k.key: k
    for k in [
        ServerKind("chorus", "Chorus", "under test", "chorus"),
        # The default `--fsync always` fsyncs the update log before an update is relayed; this
        # variant shows what that costs (a power cut may then lose up to 1 s of updates).
        ServerKind("chorus-fsync-1s", "Chorus --fsync 1s", "under test (variant)", "chorus",
                   args=("--fsync", "1s")),
        # Not run by default: no snapshots and no update log on disk at all, which isolates what
        # storage costs on the update path.
        ServerKind("chorus-memory", "Chorus --store memory", "under test (variant)", "chorus",
                   args=("--store", "memory")),
        ServerKind(
            "ws-0.1.1",
            "@y/websocket-server 0.1.1",
            "reference",
            "node",
            npm_spec="@y/websocket-server@0.1.1",
            entry="node_modules/@y/websocket-server/src/server.js",
        ),
        ServerKind(
            "ws-0.1.5",
            "@y/websocket-server 0.1.5",
            "reference",
            "node",
            npm_spec="@y/websocket-server@0.1.5",
            entry="node_modules/@y/websocket-server/src/server.js",
            # 0.1.5 asks for @y/protocols ^1.0.6-1, which npm resolves to 1.0.6-rc.1; that one
            # imports the peer `@y/y`, of which npm has only prereleases, so `@y/y@*` does not
            # resolve (ETARGET). 1.0.6-1 is inside the declared range and imports `yjs`, the
            # Yjs that 0.1.5 itself uses.
            fallback_overrides={"@y/protocols": "1.0.6-1"},
        ),
        ServerKind(
            "yws-2.1.0",
            "y-websocket 2.1.0 bin/server.cjs",
            "reference",
            "node",
            npm_spec="y-websocket@2.1.0",
            entry="node_modules/y-websocket/bin/server.cjs",
        ),
        # The same binary, driven by `@hocuspocus/provider`'s protocol on its /hocuspocus
        # route: its sync statuses (acks) are durable under --fsync, and measured.
        ServerKind("chorus-hocuspocus", "Chorus /hocuspocus", "under test (Hocuspocus protocol)",
                   "chorus", protocol="hocuspocus", path="/hocuspocus"),
        ServerKind(
            "hocuspocus-4",
            "@hocuspocus/server 4.x",
            "reference (Hocuspocus protocol)",
            "node",
            npm_spec="@hocuspocus/server@4",
            script="loadtest/bench/servers/hocuspocus-server.mjs",
            protocol="hocuspocus",
            path="",
        ),
        ServerKind("bare-relay", "bare relay (yardstick)", "yardstick", "relay"),
        # Not run by default: another build of Chorus (the binary at $CHORUS_BASELINE_BIN, e.g.
        # the last release) beside this one, for before/after figures from one run.
        ServerKind("chorus-baseline", "Chorus (baseline build)", "baseline", "chorus",
                   binary_env="CHORUS_BASELINE_BIN"),
    ]
}

DEFAULT_SERVERS = ["chorus", "chorus-fsync-1s", "ws-0.1.1", "ws-0.1.5", "bare-relay"]


@dataclass
class Prepared:
    """A server ready to start, or the reason it cannot be."""

    kind: ServerKind
    argv: list[str] = field(default_factory=list)
    cwd: Path | None = None
    version: str = ""
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict:
        return {
            "key": self.kind.key,
            "label": self.kind.label,
            "role": self.kind.role,
            "version": self.version,
            "notes": self.notes,
            "error": self.error,
        }


def prepare(kind: ServerKind, repo: Path, workdir: Path) -> Prepared:
    """Finds the binary or installs the npm package into a fresh directory under ``workdir``."""
    if kind.family == "chorus" and kind.binary_env:
        configured = os.environ.get(kind.binary_env)
        if not configured:
            return Prepared(kind, error=f"set {kind.binary_env} to the chorus binary to compare")
        binary = Path(configured)
        version = _first_line([str(binary), "--version"])
        return Prepared(kind, [str(binary)], version=version, error=_missing(binary))
    if kind.family == "chorus":
        binary = repo / "target/release/chorus"
        version = _first_line([str(binary), "--version"])
        return Prepared(kind, [str(binary)], version=version, error=_missing(binary))
    if kind.family == "relay":
        binary = repo / "target/release/bare-relay"
        return Prepared(
            kind,
            [str(binary)],
            version="loadtest/src/bin/bare-relay.rs (this repository)",
            error=_missing(binary),
        )
    return install_node(kind, workdir / kind.key, repo)


def _missing(binary: Path) -> str | None:
    if binary.is_file():
        return None
    return f"{binary} is missing: build with cargo build --release -p chorus-cli -p chorus-loadtest"


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = out.stdout.strip().splitlines()
    return lines[0] if lines else "unknown"


def install_node(kind: ServerKind, directory: Path, repo: Path) -> Prepared:
    """``npm install`` of the package into its own directory; falls back to its overrides. A
    kind with a ``script`` gets a copy of it in that directory (so it resolves the package
    from there), which is what runs."""
    prepared = Prepared(kind)
    attempts = [{}]
    if kind.fallback_overrides:
        attempts.append(kind.fallback_overrides)
    for overrides in attempts:
        if directory.exists():
            subprocess.run(["rm", "-rf", str(directory)], check=False)
        directory.mkdir(parents=True)
        manifest = {"name": f"bench-{kind.key}", "version": "0.0.0", "private": True}
        if overrides:
            manifest["overrides"] = overrides
        (directory / "package.json").write_text(json.dumps(manifest), encoding="utf-8")
        argv = ["npm", "install", "--no-audit", "--no-fund", "--save-exact", kind.npm_spec]
        shown = " ".join(argv) + (f"  (package.json overrides {json.dumps(overrides)})" if overrides else "")
        try:
            out = subprocess.run(
                argv, cwd=directory, capture_output=True, text=True,
                timeout=NPM_TIMEOUT_S, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            prepared.notes.append(f"`{shown}` failed: {err}")
            continue
        if out.returncode != 0:
            reason = _npm_error(out.stderr)
            prepared.notes.append(f"`{shown}` failed: {reason}")
            continue
        if kind.script:
            source = repo / kind.script
            entry = directory / source.name
            try:
                shutil.copyfile(source, entry)
            except OSError as err:
                prepared.notes.append(f"could not copy {kind.script}: {err}")
                continue
        else:
            entry = directory / kind.entry
        if not entry.is_file():
            prepared.notes.append(f"`{shown}` installed but {entry.name} is missing")
            continue
        prepared.argv = ["node", str(entry)]
        prepared.cwd = directory
        prepared.version = _resolved_versions(directory)
        if overrides:
            prepared.notes.append(f"installed with `{shown}`")
        prepared.error = None
        return prepared
    prepared.error = "; ".join(prepared.notes) or "npm install failed"
    return prepared


def _npm_error(stderr: str) -> str:
    lines = [line.removeprefix("npm error ").strip() for line in stderr.splitlines()]
    wanted = [line for line in lines if line and not line.startswith("A complete log")]
    return " ".join(wanted[:3]) or "unknown npm error"


def _resolved_versions(directory: Path) -> str:
    """``pkg@version`` of the packages that matter, as npm resolved them."""
    try:
        out = subprocess.run(
            ["npm", "ls", "--all", "--json"], cwd=directory, capture_output=True,
            text=True, timeout=60, check=False,
        )
        tree = json.loads(out.stdout or "{}")
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return "unknown"
    found: dict[str, str] = {}

    def walk(deps: dict) -> None:
        for name, info in deps.items():
            if name in ("@y/websocket-server", "y-websocket", "yjs", "@y/y", "y-protocols",
                        "@y/protocols", "ws", "lib0", "@hocuspocus/server",
                        "@hocuspocus/common", "crossws") and "version" in info:
                found.setdefault(name, info["version"])
            walk(info.get("dependencies", {}))

    walk(tree.get("dependencies", {}))
    return ", ".join(f"{name}@{version}" for name, version in sorted(found.items()))


def free_port() -> int:
    """A loopback port nothing listens on right now (for servers that cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def listening_port(log_line: str) -> int | None:
    """The port of a ``{"fields":{"message":"listening","addr":"IP:PORT"}}`` log line."""
    try:
        record = json.loads(log_line)
    except json.JSONDecodeError:
        return None
    fields = record.get("fields") if isinstance(record, dict) else None
    if not isinstance(fields, dict) or fields.get("message") != "listening":
        return None
    addr = fields.get("addr")
    if not isinstance(addr, str):
        return None
    _, _, port = addr.rpartition(":")
    return int(port) if port.isdigit() else None


class ServerError(RuntimeError):
    """A server did not start."""


class RunningServer:
    """A started server process; stop it with ``stop()``."""

    def __init__(self, prepared: Prepared, workdir: Path, name: str, extra: list[str]) -> None:
        self.kind = prepared.kind
        self.log_path = workdir / f"{name}.log"
        workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        argv = list(prepared.argv)
        port = 0
        if self.kind.family == "chorus":
            data_dir = workdir / f"{name}-data"
            argv += ["serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir),
                     "--log-format", "json", *self.kind.args, *extra]
        elif self.kind.family == "relay":
            argv += ["--listen", "127.0.0.1:0", *extra]
        else:
            port = free_port()
            env.update({"HOST": "127.0.0.1", "PORT": str(port)})
        self.argv = argv
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # Own session: a Ctrl-C at the terminal reaches the bench, which then stops the
        # server cleanly, instead of killing it mid-step.
        self.proc = subprocess.Popen(
            argv, cwd=prepared.cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.pid = self.proc.pid
        try:
            self.port = port or self._wait_for_listening_line()
            self._wait_accepting()
        except ServerError:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.kind.path}"

    def _wait_for_listening_line(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.kind.key} exited with {self.proc.returncode}: {self.log_tail()}")
            for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
                port = listening_port(line)
                if port:
                    return port
            time.sleep(0.05)
        raise ServerError(f"{self.kind.key} printed no listening line in {START_TIMEOUT_S}s")

    def _wait_accepting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.kind.key} exited with {self.proc.returncode}: {self.log_tail()}")
            if accepts(self.port):
                return
            time.sleep(0.05)
        raise ServerError(f"{self.kind.key} did not accept on port {self.port} in {START_TIMEOUT_S}s")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
