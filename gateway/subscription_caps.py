"""Subscription caps: active subscriptions per connection and per principal, with their slots.

Every subscription holds a NATS subscription and a queue in the gateway for as long as it
lives, so a client could tie up memory by opening thousands. A subscription takes a slot of
its connection and of its principal (tenant + subject, over all of the principal's
connections) before it follows anything, and gives both back when it ends: completed by
the client, ended by the server, or its connection gone.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

from graphql import GraphQLSchema

from gateway.auth import Principal
from gateway.errors import ErrorCode, GatewayError


class SubscriptionCaps:
    """The caps, and the slots every principal holds across its connections."""

    def __init__(self, *, per_connection: int, per_principal: int) -> None:
        self.per_connection = per_connection
        self.per_principal = per_principal
        # Only principals holding a slot have an entry: the dict is as large as what is live.
        self._held: dict[tuple[str, str], int] = {}

    def connection(self) -> ConnectionSubscriptions:
        """The slots of one new connection."""
        return ConnectionSubscriptions(self)

    def take(self, principal: Principal) -> None:
        """Count one more subscription of ``principal``.

        Raises:
            GatewayError: ``TOO_MANY_SUBSCRIPTIONS``: the principal is at its cap.
        """
        key = (principal.tenant, principal.subject)
        held = self._held.get(key, 0)
        if held >= self.per_principal:
            raise _too_many(f"{self.per_principal} active subscriptions per user")
        self._held[key] = held + 1

    def give_back(self, principal: Principal) -> None:
        """Count one subscription of ``principal`` less."""
        key = (principal.tenant, principal.subject)
        held = self._held.get(key, 0) - 1
        if held > 0:
            self._held[key] = held
        else:
            self._held.pop(key, None)


class Slot:
    """One active subscription's place; ``release`` may be called any number of times."""

    def __init__(self, give_back: Callable[[Slot], None]) -> None:
        self._give_back = give_back
        self._released = False

    def release(self) -> None:
        """Give the slot back to its connection and principal."""
        if not self._released:
            self._released = True
            self._give_back(self)


class ConnectionSubscriptions:
    """The slots of one connection (one per HTTP request, one per WebSocket)."""

    def __init__(self, caps: SubscriptionCaps) -> None:
        self._caps = caps
        self._slots: dict[Slot, Principal] = {}

    def open(self, principal: Principal) -> Slot:
        """Take a slot for a new subscription of ``principal``.

        Raises:
            GatewayError: ``TOO_MANY_SUBSCRIPTIONS``, naming the cap that was reached;
                nothing was taken.
        """
        if len(self._slots) >= self._caps.per_connection:
            raise _too_many(f"{self._caps.per_connection} active subscriptions per connection")
        self._caps.take(principal)
        slot = Slot(self._give_back)
        self._slots[slot] = principal
        return slot

    def close_all(self) -> None:
        """Give back every slot: the connection is gone, whatever its streams did."""
        for slot in list(self._slots):
            slot.release()

    def _give_back(self, slot: Slot) -> None:
        self._caps.give_back(self._slots.pop(slot))


def _too_many(cap: str) -> GatewayError:
    return GatewayError(
        ErrorCode.TOO_MANY_SUBSCRIPTIONS,
        f"Subscription limit reached: at most {cap}. Complete one to start another.",
    )


class _Held:
    """A subscription's event stream that gives its slot back when it ends or is closed."""

    def __init__(self, stream: AsyncIterator[Any], slot: Slot) -> None:
        self._stream = stream
        self._slot = slot

    def __aiter__(self) -> _Held:
        return self

    async def __anext__(self) -> Any:
        try:
            return await anext(self._stream)
        except BaseException:
            # The end, an error or a cancellation: the subscription is over either way.
            self._slot.release()
            raise

    async def aclose(self) -> None:
        self._slot.release()
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


def cap_subscriptions(schema: GraphQLSchema) -> None:
    """Make every subscription field take a slot before it starts (``TOO_MANY_SUBSCRIPTIONS``).

    A context without ``subscriptions`` (one built in-process by a test) is not capped.

    Args:
        schema: The executable schema, changed in place; wrap before the permission guard
            (``gateway.permissions.enforce``) so that a refused role never takes a slot.
    """
    root = schema.subscription_type
    if root is None:
        return
    for field in root.fields.values():
        if field.subscribe is not None:
            field.subscribe = _capped(field.subscribe)


def _capped(subscribe: Callable[..., Any]) -> Callable[..., Any]:
    async def capped(source: Any, info: Any, **arguments: Any) -> Any:
        connection: ConnectionSubscriptions | None = info.context.subscriptions
        if connection is None:
            return await _stream(subscribe(source, info, **arguments))
        # Raised here, before the stream exists, the refusal reaches the client as the
        # subscription's `error` message, and the connection goes on.
        slot = connection.open(info.context.principal)
        try:
            stream = await _stream(subscribe(source, info, **arguments))
        except BaseException:
            slot.release()
            raise
        return _Held(stream, slot)

    return capped


async def _stream(started: Any) -> Any:
    return await started if inspect.isawaitable(started) else started
