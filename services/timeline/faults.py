"""What a failure to record an event means: a dependency down, the event itself, or neither."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum

import nats.errors
import nats.js.errors
from nats.aio.client import Client

from services.timeline.errors import PermanentError
from services.timeline.store.failures import StoreFailure, store_failure
from tsunagu.contracts import ContractViolation, Reason


class Fault(StrEnum):
    """How the consumer treats a failure."""

    # A dependency (store, NATS) is unavailable: hold the message, pause, probe, resume. No
    # delivery attempt is spent and nothing is dead-lettered: the event itself is fine.
    TRANSIENT = "transient"
    # The event can never be recorded as it is: dead-letter it now, with a reason code.
    PERMANENT = "permanent"
    # Anything else (a race lost too often, a bug): redeliver with back-off, and dead-letter
    # it as `deliveries_exhausted` once every delivery failed the same way.
    RETRY = "retry"


_STORE_FAULTS = {
    StoreFailure.UNAVAILABLE: Fault.TRANSIENT,
    StoreFailure.REJECTED: Fault.PERMANENT,
    StoreFailure.OTHER: Fault.RETRY,
}
# NATS is (re)connecting or the JetStream API does not answer yet (it also says 503 when
# the dead-letter stream is full: waiting for an operator beats dropping the event).
# OSError covers refused and reset connections; TimeoutError covers asyncio's and nats'.
_TRANSIENT = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoRespondersError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    OSError,
    TimeoutError,
)


def classify(exc: BaseException) -> Fault:
    """The fault class of `exc`, raised while recording an event or settling its message."""
    if isinstance(exc, PermanentError | ContractViolation):
        return Fault.PERMANENT
    if (failure := store_failure(exc)) is not None:
        return _STORE_FAULTS[failure]
    if isinstance(exc, _TRANSIENT):
        return Fault.TRANSIENT
    return Fault.RETRY


def is_transient(exc: BaseException) -> bool:
    return classify(exc) is Fault.TRANSIENT


def reason_of(exc: BaseException) -> Reason:
    """The dead-letter reason code of a permanent failure."""
    if isinstance(exc, ContractViolation):
        return exc.code
    if isinstance(exc, PermanentError):
        return Reason.REFUSED
    return Reason.STORE_REJECTED


class DependencyProbe:
    """Answers while the store and NATS are reachable; raises a transient error otherwise."""

    def __init__(self, ping_store: Callable[[], Awaitable[object]], bus: Client) -> None:
        self._ping_store = ping_store
        self._bus = bus

    async def __call__(self) -> None:
        if not self._bus.is_connected:
            raise nats.errors.ConnectionReconnectingError
        await self._ping_store()
