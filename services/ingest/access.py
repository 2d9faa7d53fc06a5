"""Which tenants an authenticated adapter may submit for (its channel is checked on admission)."""

from __future__ import annotations

from tsunagu.grpc_callers import Caller
from tsunagu.v1 import interaction_pb2


class ForeignTenant(Exception):
    """The event is for a tenant its adapter's credential does not cover."""


def claim_tenant(caller: Caller, interaction: interaction_pb2.Interaction) -> None:
    """Check the event's tenant against the caller's credential, filling it in when implied.

    An adapter credential for exactly one tenant may leave `tenant` empty: the credential
    says which it is. With several tenants an empty one stays empty, and the contract check
    refuses it as a missing field.

    Raises:
        ForeignTenant: The event names a tenant the credential does not cover.
    """
    if not interaction.tenant:
        if (only := caller.only_tenant) is not None:
            interaction.tenant = only
        return
    if not caller.acts_for(interaction.tenant):
        # Truncated: the tenant is not validated yet, and the message is logged.
        tenant = interaction.tenant[:64]
        raise ForeignTenant(f"{caller.name} does not submit for tenant {tenant!r}")
