"""The local supervisor's pure decisions: back-off delays, its log lines, port clashes."""

from __future__ import annotations

import socket

import pytest

from tsunagu.local.ports import (
    PortGivenTwiceError,
    PortInUseError,
    bind_failed,
    check_ports,
)
from tsunagu.local.restarts import Backoff, restart_notice


def test_backoff_doubles_from_half_a_second_up_to_its_cap() -> None:
    backoff = Backoff()

    assert [backoff.delay(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_restart_notice_names_the_exit_code_the_wait_and_the_restart() -> None:
    assert restart_notice(-9, 1.0, 2, 2) == ("exited with code -9; restarting in 1.0 s (restart 2)")


def test_restart_notice_says_when_a_process_keeps_failing() -> None:
    assert restart_notice(1, 2.0, 7, 3).endswith(
        "(restart 7); it failed 3 times in a row, backing off up to the cap"
    )


@pytest.mark.parametrize(
    "line",
    [
        # nats-server, uvicorn (the gateway), the gRPC services, nx-27017
        "[FTL] Error listening on port: 127.0.0.1:14222, "
        '"listen tcp 127.0.0.1:14222: bind: address already in use"',
        "[Errno 98] error while attempting to bind on address ('127.0.0.1', 8000): "
        "address already in use",
        "OSError: cannot bind gRPC server to 127.0.0.1:50060",
    ],
)
def test_bind_failures_are_recognised_in_a_childs_output(line: str) -> None:
    assert bind_failed(["starting", line])
    assert not bind_failed(["starting", "Listening on 127.0.0.1:50060"])


def test_a_taken_port_is_refused_naming_its_process_and_option(taken_port: int) -> None:
    with pytest.raises(PortInUseError) as refused:
        check_ports({"nats": 0, "ingest-voice": taken_port, "gateway": 0})

    assert str(refused.value) == (
        f"port {taken_port} (ingest-voice) is already in use on 127.0.0.1; "
        "choose another with --ingest-base-port"
    )


def test_a_port_given_to_two_processes_is_refused() -> None:
    with pytest.raises(PortGivenTwiceError, match="port 50051 is given to both ingest-chat and"):
        check_ports({"ingest-chat": 50051, "timeline": 50051})


def test_free_ports_pass() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]

    check_ports({"gateway": free, "nats": 0, "store": 0})
