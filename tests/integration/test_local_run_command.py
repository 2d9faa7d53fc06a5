"""`python -m tsunagu.local run` as a person runs it: options, a port clash, signals, kill -9."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

FREE_PORTS = [
    *("--gateway-port", "0", "--timeline-port", "0", "--ingest-base-port", "0"),
    *("--insights-port", "0"),
    *("--nats-port", "0", "--store-port", "0"),
]


async def _command(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tsunagu.local", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )


async def _finished(*args: str) -> tuple[int, str, str]:
    process = await _command(*args)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


DEFAULTS = {
    "--data-dir": ".tsunagu",
    "--gateway-port": 8000,
    "--timeline-port": 50060,
    "--insights-port": 50070,
    "--ingest-base-port": 50051,
    "--nats-port": 14222,
    "--store-port": 27117,
    "--issuer-port": 0,
    "--mongodb-uri": None,
    "--no-demo": False,
}


async def test_help_lists_every_option_with_its_default() -> None:
    code, out, _ = await _finished("run", "--help")

    # Option name → the "(default: ...)" that ends its help (argparse wraps long ones).
    shown = {
        block.split()[0]: re.findall(r"\(default: [^)]*\)$", " ".join(block.split()))
        for block in re.split(r"\n  (?=-)", out)
        if block.startswith("--")
    }
    assert code == 0
    assert shown == {option: [f"(default: {value})"] for option, value in DEFAULTS.items()}


async def test_a_taken_port_is_one_line_naming_the_option_before_anything_starts(
    tmp_path: Path, taken_port: int
) -> None:
    code, out, err = await _finished(
        "run", "--data-dir", str(tmp_path), *FREE_PORTS, "--gateway-port", str(taken_port)
    )

    assert code != 0
    assert err.splitlines() == [
        f"port {taken_port} (gateway) is already in use on 127.0.0.1; "
        "choose another with --gateway-port"
    ]
    assert out == ""  # not even NATS's banner: nothing was started


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def _gone(pids: list[int], ports: list[int]) -> None:
    """Wait, with a generous deadline, until none of `pids` runs and nothing listens on `ports`."""
    deadline = time.monotonic() + 60
    while any(map(_alive, pids)) or any(map(_listening, ports)):
        assert time.monotonic() < deadline, (
            f"left running: {[p for p in pids if _alive(p)]}, "
            f"listening: {[p for p in ports if _listening(p)]}"
        )
        await asyncio.sleep(0.1)


@asynccontextmanager
async def _starting(data_dir: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, list[int]]]:
    """The run command, once NATS and the store listen and the services are being started.

    Yields the supervisor and the ports NATS and the store listen on; whatever it left
    running is killed afterwards, so a failing test leaves nothing either.
    """
    supervisor = await _command("run", "--data-dir", str(data_dir), "--no-demo", *FREE_PORTS)
    assert supervisor.stdout is not None
    ports: list[int] = []
    children: list[int] = []
    try:
        async with asyncio.timeout(60):
            while b"streams provisioned" not in (line := await supervisor.stdout.readline()):
                assert line, "the run command ended during start-up"
                text = line.decode()
                if match := re.search(r"^\[(?:nats|store)\] .*Listening.* \S+:(\d+)", text):
                    ports.append(int(match[1]))
        children = _children(supervisor.pid)
        yield supervisor, ports
    finally:
        for pid in [*children, *_children(supervisor.pid), supervisor.pid]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        await supervisor.wait()


async def test_sigterm_during_start_up_stops_every_child_and_exits_cleanly(
    tmp_path: Path,
) -> None:
    async with _starting(tmp_path) as (supervisor, ports):
        children = _children(supervisor.pid)
        supervisor.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(supervisor.communicate(), 60)

        assert len(ports) == 2
        assert children
        assert supervisor.returncode == 0
        assert out.decode().splitlines()[-1] == "stopped"
        await _gone(children, ports)


async def test_children_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    async with _starting(tmp_path) as (supervisor, ports):
        children = _children(supervisor.pid)
        supervisor.kill()
        await supervisor.wait()

        assert len(ports) == 2
        assert children
        await _gone(children, ports)
