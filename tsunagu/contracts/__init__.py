"""The write-path contract: what an interaction must be to travel on the bus and be stored."""

from __future__ import annotations

from tsunagu.contracts.channels import channel_label
from tsunagu.contracts.errors import ContractViolation, Reason
from tsunagu.contracts.ids import canonical_event_id, check_tenant, is_tenant_name
from tsunagu.contracts.interaction import check_interaction
from tsunagu.contracts.limits import BUS_LIMITS, Limits

__all__ = [
    "BUS_LIMITS",
    "ContractViolation",
    "Limits",
    "Reason",
    "canonical_event_id",
    "channel_label",
    "check_interaction",
    "check_tenant",
    "is_tenant_name",
]
