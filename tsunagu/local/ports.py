"""Port clashes of the local stack: found before anything starts, or recognised in output."""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Iterable, Mapping

from tsunagu.lifecycle import CannotStart

HOST = "127.0.0.1"

# What a child prints when its port is taken: nats-server and uvicorn quote the OS error,
# the gRPC services say they cannot bind, nx-27017 the Python OSError.
_BIND_FAILED = re.compile(r"address already in use|cannot bind|Errno 98", re.IGNORECASE)

# The `python -m tsunagu.local run` option that sets each process's port.
_OPTIONS = {
    "gateway": "--gateway-port",
    "timeline": "--timeline-port",
    "insights": "--insights-port",
    "nats": "--nats-port",
    "store": "--store-port",
    "issuer": "--issuer-port",
}


def option_for(owner: str) -> str:
    """The command-line option that chooses `owner`'s port."""
    return "--ingest-base-port" if owner.startswith("ingest-") else _OPTIONS[owner]


class PortInUseError(CannotStart):
    """A port of the stack is taken; the message says which and how to choose another."""

    def __init__(self, port: int, owner: str) -> None:
        self.port = port
        self.owner = owner
        super().__init__(
            f"port {port} ({owner}) is already in use on {HOST}; "
            f"choose another with {option_for(owner)}"
        )


class PortGivenTwiceError(CannotStart):
    """Two processes of the stack were given the same port."""


def bind_failed(output: Iterable[str]) -> bool:
    """Whether a child's output says it could not bind its port."""
    return any(_BIND_FAILED.search(line) for line in output)


def _in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers themselves bind: a port held only by TIME_WAIT connections is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def check_ports(ports: Mapping[str, int]) -> None:
    """Refuse a port given twice or already taken, before any process starts.

    Args:
        ports: Owner (``gateway``, ``ingest-chat``, ...) to port; 0 means a free one and is
            not checked.

    Raises:
        PortGivenTwiceError: Two owners share a port.
        PortInUseError: Something already listens on a port.
    """
    owners: dict[int, str] = {}
    for owner, port in ports.items():
        if not port:
            continue
        if port in owners:
            raise PortGivenTwiceError(
                f"port {port} is given to both {owners[port]} and {owner}; "
                f"choose another with {option_for(owner)}"
            )
        owners[port] = owner
    for port, owner in owners.items():
        if _in_use(port):
            raise PortInUseError(port, owner)
