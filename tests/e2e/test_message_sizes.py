"""GraphQL pages through a timeline of the largest events (issue 9, finding 8), whole stack."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.agent_desk import TENANT, eventually, execute, http_session, submit
from tests.integration.test_message_sizes import largest_form
from tsunagu.local.stack import LocalStack

TIMELINE = """
    query Timeline($value: String!, $after: String) {
      customerByIdentifier(kind: EMAIL, value: $value) {
        interactionCount
        timeline(first: 20, after: $after) {
          edges { node { eventId } }
          pageInfo { hasNextPage endCursor }
        }
      }
    }
    """


async def test_the_default_timeline_page_of_the_largest_events_loads_and_pages(
    stack: LocalStack,
) -> None:
    address = f"sizes.{uuid.uuid4().hex[:8]}@example.jp"
    forms = [largest_form(TENANT, minutes_ago=20 - i) for i in range(20)]
    for form in forms:
        form.identifiers[0].value = address
        await submit(stack, "web", form)

    def stored(result: dict[str, Any]) -> bool:
        customer = result["customerByIdentifier"]
        return customer is not None and customer["interactionCount"] == len(forms)

    seen: list[str] = []
    async with http_session(stack) as session:
        page = await eventually(session, TIMELINE, stored, value=address, after=None)
        while True:
            timeline = page["customerByIdentifier"]["timeline"]
            assert timeline["edges"], "a page with more to come is never empty"
            seen += [e["node"]["eventId"] for e in timeline["edges"]]
            if not timeline["pageInfo"]["hasNextPage"]:
                break
            after = timeline["pageInfo"]["endCursor"]
            page = await execute(session, TIMELINE, value=address, after=after)
    assert seen == [f.event_id for f in reversed(forms)], "each event once, newest first"
