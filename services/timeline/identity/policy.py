"""Per-tenant identity rules: matching keys, the blocklist and merge protection.

Identifiers are normalised by `tsunagu.identifiers` (the same everywhere); what a tenant may
decide on top is here: whether `a+tag@x` and `a@x` are one mailbox, which identifiers are
never a person (a shop's main line, `noreply@`), and how many customers one identifier may
join before it is treated as shared, and which identifier kinds may link customers without
the channel having verified them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.timeline.store.documents import IDENTIFIER_TOKENS, IDENTIFIERS_BY_TOKEN
from tsunagu.identifiers import IdentifierFormatError, NormalizedIdentifier, normalize_identifier
from tsunagu.v1 import interaction_pb2

IdentityKey = tuple[str, str]  # (kind token, normalised value)

# Mailboxes that are never a person, whatever the tenant.
DEFAULT_BLOCKED_LOCAL_PARTS = (
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
    "mailer-daemon",
    "postmaster",
)

# When customers may not be merged, the event lands on the customer of its strongest identifier.
KIND_PRIORITY: dict[str, int] = {
    "external_crm_id": 0,
    "chat_login": 1,
    "email": 2,
    "phone": 3,
    "social_handle": 4,
    "chat_visitor": 5,
}

BLOCKLISTED = "blocklisted"
SHARED = "shared"
INVALID = "invalid"


class IdentityRules(BaseModel):
    """Settings of identity resolution for one tenant (or the default for all tenants)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Fold `a+tag@example.jp` to `a@example.jp` before matching (off: tags can be different
    # people at some providers, and folding is irreversible for the match).
    fold_email_subaddress: bool = False
    # Identifiers that never match anybody, as "kind:value" written any way the normaliser
    # accepts: "email:info@shop.example", "phone:03-1234-5678", "social_handle:x:shop".
    blocklist: list[str] = Field(default_factory=list)
    # Local parts (before '@') of addresses that are never a person, at any domain.
    blocked_email_local_parts: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_LOCAL_PARTS)
    )
    # An identifier that has joined this many customers causes no further merge; one that
    # more customers than this present is "shared" and matches nobody.
    max_customers_per_identifier: int = Field(default=3, ge=1, le=1000)
    # Identifier kinds that link customers even when the channel did not verify them (a CRM
    # id a trusted back office sends, say). Default none: anyone can type an email address
    # or a phone number into a web form, and a link through one would hand them a stranger's
    # history (the attacker's phone screen-popping the victim).
    merge_unverified: list[str] = Field(default_factory=list)

    @field_validator("merge_unverified")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = sorted(set(kinds) - set(KIND_PRIORITY))
        if unknown:
            raise ValueError(
                f"unknown identifier kinds {unknown}; one of {', '.join(sorted(KIND_PRIORITY))}"
            )
        return kinds


def fold_subaddress(address: str) -> str:
    """`local+tag@domain` → `local@domain` (a normalised address in, its folded form out)."""
    local, _, domain = address.rpartition("@")
    base = local.split("+", 1)[0]
    return f"{base or local}@{domain}"


def parse_blocklist_entry(entry: str, *, region: str) -> NormalizedIdentifier:
    """Normalise one "kind:value" blocklist entry; raises ValueError naming the problem."""
    kind_token, sep, value = entry.partition(":")
    kind = IDENTIFIERS_BY_TOKEN.get(kind_token.strip().lower())
    if not sep or kind is None or kind == interaction_pb2.IDENTIFIER_KIND_UNSPECIFIED:
        kinds = ", ".join(sorted(KIND_PRIORITY))
        raise ValueError(f"blocklist entry {entry!r}: write it as kind:value, kind one of {kinds}")
    try:
        return normalize_identifier(
            interaction_pb2.Identifier(kind=kind, value=value),  # type: ignore[arg-type]
            default_region=region,
        )
    except IdentifierFormatError as exc:
        raise ValueError(f"blocklist entry {entry!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """The rules of one tenant, ready to apply to normalised identifiers."""

    region: str
    fold_email_subaddress: bool = False
    max_customers_per_identifier: int = 3
    blocked_keys: frozenset[IdentityKey] = field(default_factory=frozenset)
    blocked_local_parts: frozenset[str] = frozenset(DEFAULT_BLOCKED_LOCAL_PARTS)
    merge_unverified: frozenset[str] = frozenset()

    @classmethod
    def from_rules(cls, rules: IdentityRules, *, region: str) -> IdentityPolicy:
        bare = cls(region=region, fold_email_subaddress=rules.fold_email_subaddress)
        blocked = frozenset(
            bare.key(parse_blocklist_entry(entry, region=region)) for entry in rules.blocklist
        )
        return cls(
            region=region,
            fold_email_subaddress=rules.fold_email_subaddress,
            max_customers_per_identifier=rules.max_customers_per_identifier,
            blocked_keys=blocked,
            blocked_local_parts=frozenset(
                part.strip().lower() for part in rules.blocked_email_local_parts
            ),
            merge_unverified=frozenset(rules.merge_unverified),
        )

    def key(self, ident: NormalizedIdentifier) -> IdentityKey:
        """The matching key of a normalised identifier under this tenant's rules."""
        kind = IDENTIFIER_TOKENS[ident.kind]
        value = ident.value
        if kind == "email" and self.fold_email_subaddress:
            value = fold_subaddress(value)
        return kind, value

    def blocklisted(self, key: IdentityKey) -> bool:
        kind, value = key
        if key in self.blocked_keys:
            return True
        return kind == "email" and value.rpartition("@")[0] in self.blocked_local_parts

    def trusted(self, key: IdentityKey, *, verified: Collection[IdentityKey]) -> bool:
        """Whether `key` may link customers: the channel verified it, or its kind is one the
        tenant lets link unverified.
        """
        return key in verified or key[0] in self.merge_unverified

    def strongest(self, keys: Iterable[IdentityKey]) -> IdentityKey | None:
        """The key of the highest-priority kind (ties: the smaller value); None if no keys."""
        return min(keys, key=lambda k: (KIND_PRIORITY.get(k[0], 99), k[1]), default=None)
