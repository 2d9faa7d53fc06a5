"""The codecs each slice's store seals its personal fields with, built over one key provider."""

from __future__ import annotations

from dataclasses import dataclass

from services.timeline.erasure.cases import SealedCases
from services.timeline.erasure.codec import RawSealer
from services.timeline.erasure.customers import SealedCustomers
from services.timeline.erasure.fields import FieldSealer
from services.timeline.erasure.identities import SealedIdentifiers, SealedIdentityRecords
from services.timeline.erasure.keys import CustomerKeys
from services.timeline.erasure.store import ErasureStore
from tsunagu.crypto import KeyProvider


@dataclass(frozen=True, slots=True)
class SealingCodecs:
    keys: CustomerKeys
    log: RawSealer
    profiles: SealedCustomers
    identities: SealedIdentityRecords
    cases: SealedCases


def sealing_codecs(store: ErasureStore, provider: KeyProvider) -> SealingCodecs:
    """One codec per slice store, all over the same customers' data keys."""
    keys = CustomerKeys(store, provider)
    fields = FieldSealer(keys, provider)
    return SealingCodecs(
        keys=keys,
        log=RawSealer(keys, SealedIdentifiers(fields, collection="interactions")),
        profiles=SealedCustomers(fields),
        identities=SealedIdentityRecords(fields),
        cases=SealedCases(fields),
    )
