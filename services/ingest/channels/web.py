"""Web form normalisation: field names, a readable text, contact identifiers."""

from __future__ import annotations

from services.ingest.channels.common import add_identifier, phone_key
from services.ingest.errors import InvalidInteraction
from tsunagu.identifiers import IdentifierFormatError, normalize_email
from tsunagu.v1 import interaction_pb2

MAX_FIELDS = 100

_EMAIL_FIELDS = frozenset({"email", "e-mail", "mail"})
_PHONE_FIELDS = frozenset({"phone", "tel", "telephone"})


def normalize(interaction: interaction_pb2.Interaction, *, region: str) -> None:
    """Normalise a form submission in place.

    Field names are trimmed and must not be empty; at most 100 fields. The content text
    becomes `name: value` lines when empty. A field named email/e-mail/mail or
    phone/tel/telephone (any case) adds an identifier when its value normalises; a value that
    does not is kept on the form but identifies nobody (forms are typed by hand).

    Args:
        interaction: The pipeline's copy of the interaction (mutated).
        region: Tenant's default phone region for national-format numbers.

    Raises:
        InvalidInteraction: Too many fields, or a field without a name.
    """
    form = interaction.web_form
    if len(form.fields) > MAX_FIELDS:
        raise InvalidInteraction("web_form.fields", f"at most {MAX_FIELDS} fields")
    lines: list[str] = []
    for index, form_field in enumerate(form.fields):
        form_field.name = form_field.name.strip()
        if not form_field.name:
            raise InvalidInteraction(f"web_form.fields[{index}].name", "field name is required")
        _add_contact_identifier(interaction, form_field, region=region)
        if form_field.value.strip():
            lines.append(f"{form_field.name}: {form_field.value.strip()}")
    form.form_id = form.form_id.strip()
    if not interaction.content.text:
        interaction.content.text = "\n".join(lines)


def _add_contact_identifier(
    interaction: interaction_pb2.Interaction,
    form_field: interaction_pb2.FormField,
    *,
    region: str,
) -> None:
    name = form_field.name.lower()
    if name in _EMAIL_FIELDS:
        try:
            address = normalize_email(form_field.value)
        except IdentifierFormatError:
            return
        add_identifier(interaction, interaction_pb2.IDENTIFIER_KIND_EMAIL, address)
    elif name in _PHONE_FIELDS:
        key = phone_key(form_field.value, region=region)
        if key is not None:
            add_identifier(interaction, interaction_pb2.IDENTIFIER_KIND_PHONE, key[0])
