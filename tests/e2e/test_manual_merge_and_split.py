"""An agent merges two customers by hand, reads the ledger, and splits them again."""

from __future__ import annotations

from tests import builders
from tests.e2e import agent_desk
from tests.e2e.agent_desk import TENANT, execute, found, http_session, submit, unique_phone
from tests.scrape import scrape, scrape_until
from tsunagu.local.stack import LocalStack

BY_IDENTIFIER = """
query ($kind: IdentifierKind!, $value: String!) {
  customerByIdentifier(kind: $kind, value: $value) { id mergedIds }
}
"""

HISTORY = """
query ($id: ID!) {
  customer(id: $id) {
    id
    mergeHistory {
      id survivorId mergedIds rule status reason splitReason
      actor { type id } splitBy { id }
    }
  }
}
"""


async def test_manual_merge_shows_in_the_ledger_and_a_split_undoes_it(stack: LocalStack) -> None:
    metrics = stack.metrics.urls["timeline"]
    before = await scrape(metrics)
    suffix, phone = unique_phone("080-55")
    address = f"kana.{suffix}@example.jp"
    await submit(stack, "chat", builders.chat(TENANT, visitor=f"v-m-{suffix}", email=address))
    sms = builders.chat(TENANT, visitor=f"v-n-{suffix}", phone=phone)
    await submit(stack, "chat", sms)

    # Merging and splitting customers is a supervisor's decision.
    async with http_session(stack, roles=("agent", "supervisor")) as agent:
        by_email = await found(agent, BY_IDENTIFIER, kind="EMAIL", value=address)
        by_phone = await found(agent, BY_IDENTIFIER, kind="PHONE", value=phone)
        first = by_email["customerByIdentifier"]["id"]
        second = by_phone["customerByIdentifier"]["id"]
        assert first != second

        merged = await execute(
            agent,
            """mutation ($ids: [ID!]!) { mergeCustomers(customerIds: $ids,
                reason: "Same person, confirmed on the phone") {
                  status customer { id mergedIds } } }""",
            ids=[first, second],
        )
        payload = merged["mergeCustomers"]
        assert payload["status"] == "STORED"
        survivor = payload["customer"]["id"]
        assert {survivor, *payload["customer"]["mergedIds"]} == {first, second}

        ledger = (await execute(agent, HISTORY, id=survivor))["customer"]["mergeHistory"]
        [record] = [r for r in ledger if r["rule"] == "manual"]
        assert record["status"] == "done"
        assert record["reason"] == "Same person, confirmed on the phone"
        assert record["actor"] == {"type": "AGENT", "id": agent_desk.AGENT_ID}
        assert {record["survivorId"], *record["mergedIds"]} == {first, second}

        split = await execute(
            agent,
            """mutation ($c: ID!, $m: ID!) { splitMerge(customerId: $c, mergeId: $m,
                reason: "Two people after all") { status } }""",
            c=survivor,
            m=record["id"],
        )
        assert split["splitMerge"]["status"] == "STORED"
        apart_email = await execute(agent, BY_IDENTIFIER, kind="EMAIL", value=address)
        apart_phone = await execute(agent, BY_IDENTIFIER, kind="PHONE", value=phone)
        ledger = (await execute(agent, HISTORY, id=survivor))["customer"]["mergeHistory"]

    assert apart_email["customerByIdentifier"]["id"] != apart_phone["customerByIdentifier"]["id"]
    [after] = [r for r in ledger if r["id"] == record["id"]]
    assert after["status"] == "split"
    assert after["splitReason"] == "Two people after all"
    assert after["splitBy"] == {"id": agent_desk.AGENT_ID}

    # An operator sees both on /metrics.
    merges, splits = "tsunagu_timeline_merges_total", "tsunagu_timeline_splits_total"
    after = await scrape_until(
        metrics,
        lambda s: s.value(merges) > before.value(merges) and s.value(splits) > before.value(splits),
    )
    assert after.value(merges) - before.value(merges) == 1
    assert after.value(splits) - before.value(splits) == 1
