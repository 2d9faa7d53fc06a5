"""Publishes interactions to JetStream; an outcome exists only once the stream stored it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import propagate, trace

from tsunagu.bus import headers
from tsunagu.bus.actor_signature import ActorSigner, needs_signed_actor
from tsunagu.bus.subjects import INTERACTIONS_STREAM, interaction_subject
from tsunagu.v1 import interaction_pb2

tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class Published:
    """The stream's acknowledgement of one interaction."""

    sequence: int
    duplicate: bool


class PublishError(RuntimeError):
    """The stream did not acknowledge an interaction; it may or may not be stored."""


def _headers(interaction: interaction_pb2.Interaction) -> dict[str, str]:
    carrier = {
        headers.MSG_ID: headers.message_id(interaction.tenant, interaction.event_id),
        headers.SCHEMA: headers.INTERACTION_SCHEMA,
    }
    propagate.inject(carrier)  # W3C traceparent: one trace from the adapter to the timeline
    return carrier


class InteractionPublisher:
    """Publishes interactions with `Nats-Msg-Id = <tenant>/<event_id>`: a retry is a duplicate.

    Given the gateway's ``signer``, it publishes agent actions with a signed actor (the
    timeline executes no agent action without one).
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        ack_timeout: float = 5.0,
        signer: ActorSigner | None = None,
    ) -> None:
        self._js = js
        self._ack_timeout = ack_timeout
        self._signer = signer

    async def publish(
        self, interaction: interaction_pb2.Interaction, *, roles: Sequence[str] = ()
    ) -> Published:
        """Publish one interaction and wait for the stream's PubAck; raises PublishError."""
        outcome = (await self.publish_many([interaction], roles=roles))[0]
        if isinstance(outcome, PublishError):
            raise outcome
        return outcome

    async def publish_many(
        self, interactions: Sequence[interaction_pb2.Interaction], *, roles: Sequence[str] = ()
    ) -> list[Published | PublishError]:
        """Publish pipelined: all messages go out before the first PubAck is awaited.

        ``roles`` are the acting agent's, signed into each agent action's actor. Returns one
        outcome per interaction, in order; a failed item never fails the others.
        """
        with tracer.start_as_current_span(
            "bus.publish_interactions",
            attributes={"messaging.batch.message_count": len(interactions)},
        ):
            futures: list[asyncio.Future[PubAck] | PublishError] = []
            for interaction in interactions:
                data = interaction.SerializeToString()
                carrier = _headers(interaction)
                if self._signer is not None and needs_signed_actor(interaction):
                    # Signed over the exact bytes sent: the timeline verifies what it stores.
                    carrier |= self._signer.sign(
                        interaction, data, roles=roles, issued_at=datetime.now(UTC)
                    )
                try:
                    futures.append(
                        await self._js.publish_async(
                            interaction_subject(interaction.tenant, interaction.channel),
                            data,
                            wait_stall=self._ack_timeout,
                            stream=INTERACTIONS_STREAM,
                            headers=carrier,
                        )
                    )
                except Exception as exc:  # noqa: BLE001 - reported per item, never raised
                    futures.append(PublishError(f"publish failed: {exc!r}"))
            return [await self._outcome(future) for future in futures]

    async def _outcome(
        self, future: asyncio.Future[PubAck] | PublishError
    ) -> Published | PublishError:
        if isinstance(future, PublishError):
            return future
        try:
            ack = await asyncio.wait_for(future, self._ack_timeout)
        except TimeoutError:
            return PublishError("no acknowledgement from the stream in time")
        except Exception as exc:  # noqa: BLE001 - an API error from the stream, per item
            return PublishError(f"stream refused the message: {exc}")
        return Published(sequence=ack.seq, duplicate=bool(ack.duplicate))
