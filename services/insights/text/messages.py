"""Which timeline entries are customers' messages, and their text, for topics and similarity."""

from __future__ import annotations

from tsunagu.v1 import interaction_pb2 as pb

# What a customer says: messages, mails, forms, and a call's transcript once it has ended
# (earlier call events carry no words). Agent actions, tags and merges are not voices.
_SPOKEN = frozenset({pb.KIND_MESSAGE, pb.KIND_EMAIL, pb.KIND_FORM_SUBMISSION, pb.KIND_CALL_ENDED})


def customer_text(interaction: pb.Interaction) -> str | None:
    """The words of an inbound customer message, on any channel; `None` for anything else.

    The ingestion services put every channel's text in `content.text` (a mail's plain body,
    a call's transcript, a form's fields); a mail's subject is prepended, as it often names
    the problem ("Cancel my subscription").

    Args:
        interaction: A timeline entry as the timeline publishes it.

    Returns:
        The text, or `None` for outbound or internal entries, agents' and bots' words, agent
        actions and entries without text.
    """
    if (
        interaction.direction != pb.DIRECTION_INBOUND
        or interaction.kind not in _SPOKEN
        or interaction.actor.type not in {pb.ACTOR_TYPE_CUSTOMER, pb.ACTOR_TYPE_UNSPECIFIED}
        or interaction.WhichOneof("detail") == "agent_action"
    ):
        return None
    text = interaction.content.text.strip()
    subject = interaction.content.subject.strip()
    if subject and not text.startswith(subject):
        text = f"{subject}\n{text}".strip()
    return text or None
