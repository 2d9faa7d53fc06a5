"""Telling supervisors' screens that a tenant's customers at risk changed (core NATS)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from nats.aio.client import Client
from nats.errors import Error as NatsError

from tsunagu.bus.permissions import at_risk_subject
from tsunagu.v1 import insights_pb2

log = logging.getLogger(__name__)


class AtRiskAnnouncer:
    """Publishes `AtRiskChanged`; a lost announcement costs a refresh, never a figure."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc

    async def __call__(self, tenant: str, customer_ids: Sequence[str]) -> None:
        change = insights_pb2.AtRiskChanged(tenant=tenant, customer_ids=customer_ids)
        try:
            await self._nc.publish(at_risk_subject(tenant), change.SerializeToString())
        except (NatsError, OSError) as error:
            log.warning("could not announce an at-risk change: %s", type(error).__name__)
