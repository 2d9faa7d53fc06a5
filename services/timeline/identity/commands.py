"""Agent identity actions from the stream: merge by hand, split, dismiss a suggestion.

They travel as `AgentActionDetail` events on the one write path, so a replay of the stream
repeats them in order, and each is recorded on the timeline of the customer it leaves behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from services.timeline.errors import PermanentError
from services.timeline.identity.documents import SuggestionDoc
from services.timeline.identity.resolver import MANUAL_RULE, Actor, IdentityResolver
from services.timeline.identity.split import MergeSplitter
from services.timeline.identity.suggestions import MergeSuggestions
from tsunagu.v1 import interaction_pb2

IDENTITY_ACTIONS = frozenset({"merge_customers", "split_merge", "dismiss_merge_suggestion"})
MAX_MERGE_CUSTOMERS = 20


@dataclass(frozen=True, slots=True)
class IdentityOutcome:
    """Where the action's event goes on the timeline, and whose ids changed."""

    customer_id: str
    merged_ids: list[str] = field(default_factory=list)
    restored_ids: list[str] = field(default_factory=list)


def _actor(interaction: interaction_pb2.Interaction) -> Actor:
    actor = interaction.actor
    kind = interaction_pb2.ActorType.Name(actor.type).removeprefix("ACTOR_TYPE_").lower()
    return Actor(kind, actor.id, actor.display_name)


@dataclass(frozen=True, slots=True)
class IdentityCommands:
    """Applies identity actions; each is idempotent, so a redelivery changes nothing."""

    resolver: IdentityResolver
    splitter: MergeSplitter
    suggestions: MergeSuggestions

    async def apply(
        self, interaction: interaction_pb2.Interaction, at: datetime
    ) -> IdentityOutcome:
        action = interaction.agent_action
        which = action.WhichOneof("action")
        if which == "merge_customers":
            return await self._merge(interaction)
        if which == "split_merge":
            return await self._split(interaction, at)
        if which == "dismiss_merge_suggestion":
            return await self._dismiss(interaction)
        raise PermanentError(f"not an identity action: {which}")

    async def _merge(self, interaction: interaction_pb2.Interaction) -> IdentityOutcome:
        tenant, command = interaction.tenant, interaction.agent_action.merge_customers
        ids = list(dict.fromkeys(i for i in command.customer_ids if i))
        if not 2 <= len(ids) <= MAX_MERGE_CUSTOMERS:
            raise PermanentError(f"merge_customers: between 2 and {MAX_MERGE_CUSTOMERS} ids")
        target, live = await self.resolver.survivors(tenant, set(ids))
        missing = sorted(set(ids) - set(target))
        if missing:
            raise PermanentError(f"merge_customers: unknown customers {missing}")
        if command.suggestion_id:
            await self._settle(interaction, command.suggestion_id, "accepted")
        if len(live) == 1:  # merged already (by this event's first delivery, or before)
            return IdentityOutcome(next(iter(live)))
        survivor, merged = await self.resolver.merge(
            tenant,
            list(live.values()),
            event_id=interaction.event_id,
            owners={},
            rule=MANUAL_RULE,
            actor=_actor(interaction),
            reason=command.reason,
        )
        return IdentityOutcome(survivor, merged_ids=merged)

    async def _split(
        self, interaction: interaction_pb2.Interaction, at: datetime
    ) -> IdentityOutcome:
        tenant, command = interaction.tenant, interaction.agent_action.split_merge
        if not command.merge_id:
            raise PermanentError("split_merge: merge_id is required")
        entry = await self.splitter.split(
            tenant, command.merge_id, actor=_actor(interaction), reason=command.reason, at=at
        )
        survivor_id: str = entry["survivor_id"]
        target = await self.resolver.survivor_ids(tenant, {survivor_id})
        survivor = target.get(survivor_id, survivor_id)
        return IdentityOutcome(survivor, restored_ids=list(entry["merged_ids"]))

    async def _dismiss(self, interaction: interaction_pb2.Interaction) -> IdentityOutcome:
        command = interaction.agent_action.dismiss_merge_suggestion
        doc = await self._settle(interaction, command.suggestion_id, "dismissed")
        target = await self.resolver.survivor_ids(interaction.tenant, set(doc["customer_ids"]))
        if not target:
            raise PermanentError("dismiss_merge_suggestion: its customers no longer exist")
        return IdentityOutcome(target[sorted(target)[0]])

    async def _settle(
        self,
        interaction: interaction_pb2.Interaction,
        suggestion: str,
        status: Literal["accepted", "dismissed"],
    ) -> SuggestionDoc:
        if not suggestion:
            raise PermanentError("suggestion_id is required")
        try:
            return await self.suggestions.settle(
                interaction.tenant,
                suggestion,
                status=status,
                event_id=interaction.event_id,
                actor=_actor(interaction).document(),
            )
        except LookupError as exc:
            raise PermanentError(str(exc)) from exc
