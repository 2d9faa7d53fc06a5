"""Who may do what on NATS: one user per service, each allowed only the subjects it needs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tsunagu.bus.streams import TIMELINE_OUTCOMES_STREAM
from tsunagu.bus.subjects import (
    CHANNEL_TOKENS,
    DEAD_LETTER_STREAM,
    DEAD_LETTER_SUBJECTS,
    IDENTITY_STREAM,
    IDENTITY_SUBJECTS,
    INTERACTIONS_STREAM,
    TIMELINE_UPDATED_PREFIX,
    TIMELINE_UPDATED_STREAM,
)

AGENT_DESK = "agent_desk"
# Channels an ingestion service runs for: every channel but the agent desk, which is the
# gateway's alone (an agent action from an adapter would be a forged supervisor).
INGEST_CHANNELS = tuple(t for t in CHANNEL_TOKENS.values() if t != AGENT_DESK)

OPERATOR = "operator"
PROVISION = "provision"
TIMELINE = "timeline"
GATEWAY = "gateway"
INSIGHTS = "insights"
# Where the insights service says a tenant's customers at risk changed (the gateway listens).
AT_RISK_PREFIX = "insights.at_risk"


def at_risk_subject(tenant: str) -> str:
    """`insights.at_risk.<tenant>`: a tenant's customers at risk changed (core NATS)."""
    return f"{AT_RISK_PREFIX}.{tenant}"


# Denied to every service even where an allow pattern would match: losing a stream, its
# messages or the timeline's consumer position is an operator's decision, never a service's.
_STREAM_LOSSES = (
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    "$JS.API.STREAM.MSG.DELETE.>",
)
SERVICE_DENY = (*_STREAM_LOSSES, "$JS.API.CONSUMER.DELETE.>")
# The gateway deletes its own short-lived catch-up consumers on the notice capture; deny wins
# over allow in nats-server, so its deny list names every other stream instead.
_GATEWAY_DENY = (
    *_STREAM_LOSSES,
    *(
        f"$JS.API.CONSUMER.DELETE.{stream}.>"
        for stream in (INTERACTIONS_STREAM, DEAD_LETTER_STREAM, IDENTITY_STREAM)
    ),
)
# The JetStream check every service makes at start: do its streams exist?
_STREAM_INFO = "$JS.API.STREAM.INFO.*"


def ingest_user(channel: str) -> str:
    """The NATS user of the ingestion service for `channel`."""
    return f"ingest-{channel}"


def inbox_prefix(user: str) -> str:
    """Where a user's replies arrive; each user may subscribe only to its own inbox."""
    return f"_INBOX.{user}"


@dataclass(frozen=True, slots=True)
class NatsUser:
    """A NATS user and the subjects it may publish and subscribe to (`deny` wins)."""

    name: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    deny_publish: tuple[str, ...] = SERVICE_DENY
    deny_subscribe: tuple[str, ...] = ()

    def permissions(self) -> dict[str, object]:
        """The `permissions` block of this user in nats-server's configuration."""
        return {
            "publish": {"allow": list(self.publish), "deny": list(self.deny_publish)},
            "subscribe": {"allow": list(self.subscribe), "deny": list(self.deny_subscribe)},
        }


def _service(
    name: str,
    *,
    publish: Iterable[str],
    subscribe: Iterable[str] = (),
    deny_publish: tuple[str, ...] = SERVICE_DENY,
) -> NatsUser:
    return NatsUser(
        name,
        publish=(_STREAM_INFO, *publish),
        subscribe=(f"{inbox_prefix(name)}.>", *subscribe),
        deny_publish=deny_publish,
    )


def _timeline() -> NatsUser:
    consumer = f"$JS.API.CONSUMER.%s.{INTERACTIONS_STREAM}.>"
    return _service(
        TIMELINE,
        publish=(
            # Its durable pull consumer on the interactions stream: create, inspect, fetch, ack.
            consumer % "CREATE",
            consumer % "DURABLE.CREATE",
            consumer % "INFO",
            consumer % "MSG.NEXT",
            f"$JS.ACK.{INTERACTIONS_STREAM}.>",
            DEAD_LETTER_SUBJECTS,
            IDENTITY_SUBJECTS,
            f"{TIMELINE_UPDATED_PREFIX}.>",
        ),
    )


def _gateway() -> NatsUser:
    consumer = f"$JS.API.CONSUMER.%s.{TIMELINE_UPDATED_STREAM}"
    return _service(
        GATEWAY,
        publish=(
            f"interactions.*.{AGENT_DESK}",
            # Catching up after a reconnect: an ephemeral pull consumer on the notice capture,
            # created (the filter subject is part of the subject), read, and deleted.
            f"{consumer % 'CREATE'}.>",
            f"{consumer % 'INFO'}.*",
            f"{consumer % 'MSG.NEXT'}.*",
            f"{consumer % 'DELETE'}.*",
        ),
        subscribe=(f"{TIMELINE_UPDATED_PREFIX}.>", f"{AT_RISK_PREFIX}.>"),
        deny_publish=_GATEWAY_DENY,
    )


def _insights() -> NatsUser:
    consumer = f"$JS.API.CONSUMER.%s.{TIMELINE_OUTCOMES_STREAM}"
    return _service(
        INSIGHTS,
        publish=(
            # Its durable pull consumer on the outcomes mirror (and, to rebuild, an ephemeral
            # one over the whole mirror): create, inspect, fetch, ack. Nothing else to read.
            f"{consumer % 'CREATE'}.>",
            f"{consumer % 'DURABLE.CREATE'}.>",
            f"{consumer % 'INFO'}.*",
            f"{consumer % 'MSG.NEXT'}.*",
            f"$JS.ACK.{TIMELINE_OUTCOMES_STREAM}.>",
            f"{AT_RISK_PREFIX}.>",
        ),
    )


def service_users() -> tuple[NatsUser, ...]:
    """Every service's user; the operator (full access, for people and tools) is not one."""
    return (
        _service(
            PROVISION,
            # The one step that creates and updates streams; it never deletes or purges.
            publish=("$JS.API.STREAM.CREATE.*", "$JS.API.STREAM.UPDATE.*"),
        ),
        _timeline(),
        _gateway(),
        _insights(),
        *(
            _service(ingest_user(channel), publish=(f"interactions.*.{channel}",))
            for channel in INGEST_CHANNELS
        ),
    )


OPERATOR_USER = NatsUser(OPERATOR, publish=(">",), subscribe=(">",), deny_publish=())
