"""Consent per channel x purpose, end to end: a web form grants, a phone call withdraws,
outreach follows the customer's latest word, merges and splits keep each decision honest.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from gql.transport.exceptions import TransportQueryError

from tests import builders
from tests.e2e.agent_desk import (
    TENANT,
    eventually,
    execute,
    found,
    http_session,
    submit,
    unique_phone,
)
from tsunagu.grpc_channels import open_channel
from tsunagu.local import graphql
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc

BY_IDENTIFIER = """
query ($kind: IdentifierKind!, $value: String!) {
  customerByIdentifier(kind: $kind, value: $value) {
    id
    consents { channel purpose granted source changedAt eventId }
  }
}
"""

CONSENTS = """
query ($id: ID!) {
  customer(id: $id) {
    id
    consents { channel purpose granted source eventId }
    timeline(first: 50) {
      edges { node { kind direction text consent { channel purpose granted source evidence } } }
    }
  }
}
"""

RECORD_CONSENT = """
mutation ($id: ID!, $granted: Boolean!, $evidence: String, $purpose: ConsentPurpose!) {
  recordConsent(customerId: $id, channel: SMS, purpose: $purpose, granted: $granted,
                evidence: $evidence) { status eventId }
}
"""

OUTREACH = """
mutation ($id: ID!, $text: String!) {
  recordOutreach(customerId: $id, channel: SMS, purpose: MARKETING, text: $text) {
    status customer { id }
  }
}
"""


def _current(customer: dict[str, Any]) -> dict[tuple[str, str], bool]:
    return {(c["channel"], c["purpose"]): c["granted"] for c in customer["consents"]}


async def _with_consents(session: Any, address: str) -> dict[str, Any]:
    """The customer with this email, once the timeline has recorded a consent of theirs."""
    result = await eventually(
        session,
        BY_IDENTIFIER,
        lambda r: r["customerByIdentifier"] and r["customerByIdentifier"]["consents"],
        kind="EMAIL",
        value=address,
    )
    customer: dict[str, Any] = result["customerByIdentifier"]
    return customer


async def _refused(session: Any, query: str, **variables: Any) -> list[str]:
    with pytest.raises(TransportQueryError) as caught:
        await execute(session, query, **variables)
    assert caught.value.errors is not None
    return [error["extensions"]["code"] for error in caught.value.errors]


async def test_a_web_form_grant_allows_outreach_and_a_phone_withdrawal_stops_it(
    stack: LocalStack,
) -> None:
    suffix, _ = unique_phone("080-66")
    address = f"consent.{suffix}@example.jp"
    await submit(
        stack,
        "web",
        builders.consent_form(TENANT, email=address, evidence="Yes, send me offers by SMS"),
    )

    async with http_session(stack) as agent:
        customer = await _with_consents(agent, address)
        [grant] = customer["consents"]
        assert (grant["channel"], grant["purpose"], grant["granted"], grant["source"]) == (
            "SMS",
            "MARKETING",
            True,
            "WEB_FORM",
        )
        assert _current(customer) == {("SMS", "MARKETING"): True}

        offer = f"Spring offer {suffix}"
        sent = await execute(agent, OUTREACH, id=customer["id"], text=offer)
        assert sent["recordOutreach"]["status"] == "STORED"

        # On the phone the customer says: no more offers by SMS.
        withdrawn = await execute(
            agent,
            RECORD_CONSENT,
            id=customer["id"],
            granted=False,
            purpose="MARKETING",
            evidence="Please stop the SMS offers",
        )
        assert withdrawn["recordConsent"]["status"] == "STORED"
        codes = await _refused(agent, OUTREACH, id=customer["id"], text=f"Second offer {suffix}")
        view = (await execute(agent, CONSENTS, id=customer["id"]))["customer"]

    assert codes == ["CONSENT_REQUIRED"]
    assert _current(view) == {("SMS", "MARKETING"): False}
    [decision] = view["consents"]
    assert decision["source"] == "AGENT_RECORDED"
    assert decision["eventId"] == withdrawn["recordConsent"]["eventId"]
    entries = [edge["node"] for edge in view["timeline"]["edges"]]
    # The history stays on the timeline; the refused outreach was never recorded as sent.
    assert [e["consent"] for e in entries if e["kind"] == "CONSENT_CHANGE"] == [
        {
            "channel": "SMS",
            "purpose": "MARKETING",
            "granted": False,
            "source": "AGENT_RECORDED",
            "evidence": "Please stop the SMS offers",
        },
        {
            "channel": "SMS",
            "purpose": "MARKETING",
            "granted": True,
            "source": "WEB_FORM",
            "evidence": "Yes, send me offers by SMS",
        },
    ]
    assert [(e["kind"], e["direction"], e["text"]) for e in entries if e["kind"] == "OUTREACH"] == [
        ("OUTREACH", "OUTBOUND", offer)
    ]


async def test_a_merge_keeps_the_newest_decision_and_a_split_gives_each_its_own(
    stack: LocalStack,
) -> None:
    suffix, phone = unique_phone("080-67")
    address = f"merge.consent.{suffix}@example.jp"
    await submit(stack, "web", builders.consent_form(TENANT, email=address))
    await submit(stack, "chat", builders.chat(TENANT, visitor=f"v-c-{suffix}", phone=phone))

    async with http_session(stack, roles=("agent", "supervisor")) as supervisor:
        first = (await _with_consents(supervisor, address))["id"]
        second = (await found(supervisor, BY_IDENTIFIER, kind="PHONE", value=phone))[
            "customerByIdentifier"
        ]["id"]
        # The other record of the same person: marketing withdrawn later, surveys granted.
        for purpose, given in (("MARKETING", False), ("SURVEYS", True)):
            await execute(
                supervisor, RECORD_CONSENT, id=second, granted=given, purpose=purpose, evidence=None
            )

        merged = await execute(
            supervisor,
            """mutation ($ids: [ID!]!) { mergeCustomers(customerIds: $ids, reason: "Same person")
                 { status customer { id consents { channel purpose granted }
                                     mergeHistory { id rule } } } }""",
            ids=[first, second],
        )
        survivor = merged["mergeCustomers"]["customer"]
        [record] = [r for r in survivor["mergeHistory"] if r["rule"] == "manual"]
        codes = await _refused(supervisor, OUTREACH, id=survivor["id"], text="Offer")

        split = await execute(
            supervisor,
            """mutation ($c: ID!, $m: ID!) { splitMerge(customerId: $c, mergeId: $m,
                reason: "Two people after all") { status } }""",
            c=survivor["id"],
            m=record["id"],
        )
        assert split["splitMerge"]["status"] == "STORED"
        apart_first = (await execute(supervisor, CONSENTS, id=first))["customer"]
        apart_second = (await execute(supervisor, CONSENTS, id=second))["customer"]
        allowed_again = await execute(supervisor, OUTREACH, id=first, text="Offer")

    assert _current(survivor) == {("SMS", "MARKETING"): False, ("SMS", "SURVEYS"): True}
    assert codes == ["CONSENT_REQUIRED"]
    assert _current(apart_first) == {("SMS", "MARKETING"): True}
    assert _current(apart_second) == {("SMS", "MARKETING"): False, ("SMS", "SURVEYS"): True}
    assert allowed_again["recordOutreach"]["status"] == "STORED"


async def test_hostile_consent_and_outreach_are_refused_and_good_ones_still_land(
    stack: LocalStack,
) -> None:
    suffix, _ = unique_phone("080-68")
    address = f"hostile.consent.{suffix}@example.jp"
    await submit(stack, "chat", builders.chat(TENANT, visitor=f"v-h-{suffix}", email=address))

    # Over ingest: an unknown purpose and oversized evidence never reach the timeline.
    unknown = builders.consent_form(TENANT, email=address)
    unknown.consent.purpose = 99  # type: ignore[assignment]
    huge = builders.consent_form(TENANT, email=address, evidence="x" * 9000)
    async with open_channel(
        stack.ingest_addresses["web"], token=stack.grpc_callers.adapter("web")
    ) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        details = []
        for bad in (unknown, huge):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Submit(ingest_pb2.SubmitRequest(interaction=bad))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            details.append(caught.value.details())
    assert details[0] == "consent.purpose: unknown purpose value 99"
    assert (details[1] or "").startswith("consent.evidence: longer than 8192 bytes")

    async with http_session(stack) as agent:
        customer_id = (await found(agent, BY_IDENTIFIER, kind="EMAIL", value=address))[
            "customerByIdentifier"
        ]["id"]
        with pytest.raises(TransportQueryError):  # not a purpose: the schema refuses it
            await execute(agent, RECORD_CONSENT, id=customer_id, granted=True, purpose="SPAM")
        oversized = await _refused(
            agent,
            RECORD_CONSENT,
            id=customer_id,
            granted=True,
            purpose="MARKETING",
            evidence="x" * 2001,
        )
        bidi = await _refused(
            agent,
            RECORD_CONSENT,
            id=customer_id,
            granted=True,
            purpose="MARKETING",
            evidence="ok\u202e",
        )
        unknown_customer = await _refused(agent, OUTREACH, id="cus_nobody", text="Hi")

    # Another tenant's agent cannot touch this customer (the tenant comes from the token).
    other = stack.issuer.mint(tenant="elsewhere", roles=("agent",), subject="a-9", name="X")
    async with graphql.http_session(stack.graphql_url, authorization=f"Bearer {other}") as foreign:
        other_tenant = await _refused(
            foreign, RECORD_CONSENT, id=customer_id, granted=True, purpose="MARKETING"
        )

    forbidden: dict[str, list[str]] = {}
    for role in ("analyst", "admin", "privacy_officer"):
        async with http_session(stack, roles=(role,)) as caller:
            forbidden[role] = await _refused(caller, OUTREACH, id=customer_id, text="Hi")
    for role in ("analyst", "admin"):
        async with http_session(stack, roles=(role,)) as caller:
            forbidden[f"{role} consent"] = await _refused(
                caller, RECORD_CONSENT, id=customer_id, granted=True, purpose="MARKETING"
            )

    assert oversized == ["BAD_USER_INPUT"]
    assert bidi == ["BAD_USER_INPUT"]
    assert unknown_customer == ["NOT_FOUND"]
    assert other_tenant == ["NOT_FOUND"]
    assert set(map(tuple, forbidden.values())) == {("FORBIDDEN",)}

    # None of it took the customer down: a privacy officer records a real decision.
    async with http_session(stack, roles=("privacy_officer",)) as officer:
        stored = await execute(
            officer, RECORD_CONSENT, id=customer_id, granted=True, purpose="SURVEYS"
        )
        view = (await execute(officer, CONSENTS, id=customer_id))["customer"]
    assert stored["recordConsent"]["status"] == "STORED"
    assert _current(view) == {("SMS", "SURVEYS"): True}
