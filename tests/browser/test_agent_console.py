"""An agent in Chromium: sign in, screen-pop the demo customer, watch live, act on the case."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Locator, Page, expect

from tests import builders
from tests.browser.conftest import screenshot, sign_in
from tests.e2e.agent_desk import eventually, http_session, submit, unique_phone
from tsunagu.local.demo import PHONE, TENANT
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import interaction_pb2 as pb


def live_chat(text: str, *, phone: str = PHONE, name: str = "Sato Hanako") -> pb.Interaction:
    """A customer's chat message from her signed-in session: the shop vouches for the number."""
    interaction = builders.chat(TENANT, text=text, phone=phone, name=name, visitor=f"v-{phone}")
    for identifier in interaction.identifiers:
        identifier.verified = True
    return interaction


async def screen_pop(page: Page, query: str) -> None:
    await page.get_by_role("searchbox", name="Search customers").fill(query)
    await page.get_by_role("searchbox", name="Search customers").press("Enter")
    await expect(page.get_by_role("heading", name="Sato Hanako")).to_be_visible()


async def _act(page: Page, action: str, **fields: str) -> Locator:
    """Choose ``action``, fill its form by label, submit, expect STORED or ACCEPTED; the answer."""
    await page.get_by_role("group", name="Actions").get_by_role("button", name=action).click()
    form = page.get_by_role("form", name=action)
    for label, value in fields.items():
        control = form.get_by_label(label, exact=True)
        if await control.evaluate("e => e.tagName") == "SELECT":
            await control.select_option(value)
        else:
            await control.fill(value)
    await form.get_by_role("button", name=action).click()
    answer = form.get_by_role("status")
    await expect(answer).to_have_text(re.compile(r"^(STORED|ACCEPTED) "))
    return answer


async def test_agent_screen_pops_watches_live_and_works_the_case(
    page: Page, console_stack: LocalStack
) -> None:
    await sign_in(page, console_stack, "Agent")
    await expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
    await screen_pop(page, PHONE)

    timeline = page.get_by_role("list", name="Timeline")
    for channel in ("CHAT", "VOICE", "EMAIL"):
        await expect(timeline.locator(f".entry.ch-{channel}").first).to_be_visible()
    await expect(timeline).to_contain_text("Cancel my subscription")
    await screenshot(page, "agent-desk")

    # A chat message arrives over gRPC while she is on screen: it shows without a reload.
    text = f"Live from the chat widget {uuid.uuid4().hex[:8]}"
    await submit(console_stack, "chat", live_chat(text))
    await expect(timeline.locator(".entry").first).to_contain_text(text)

    await _act(
        page,
        "Hand off",
        Summary="Delivery was late; she wants to cancel (surplus stock)",
        **{"To channel": "VOICE", "Open questions (one a line)": "Offer to skip a month?"},
    )
    await expect(page.get_by_label("Last agent's note")).to_contain_text("Delivery was late")
    answer = await _act(page, "Escalate", Level="2", Reason="Second late delivery")
    await expect(answer.locator(".case-status")).to_have_text("ESCALATED")
    case_id = await answer.locator(".tag").inner_text()
    await expect(page.locator(".case")).to_contain_text(case_id)
    await expect(page.locator(".case")).to_contain_text("Escalation level 2")
    answer = await _act(page, "Resolve", **{"Resolution note": "Skipped a month; she stays"})
    await expect(answer).to_contain_text(case_id)
    await expect(answer.locator(".case-status")).to_have_text("RESOLVED")
    # The resolved case is no longer the open one, and the timeline shows the resolution.
    await expect(page.locator(".case")).not_to_contain_text(case_id)
    await expect(timeline.locator(".entry").first).to_contain_text("RESOLUTION")
    await screenshot(page, "agent-desk-resolved")


_COUNT = "query($p: String!) { customerByIdentifier(kind: PHONE, value: $p) { interactionCount } }"


async def test_timeline_pages_by_cursor_on_scroll_and_filters_by_channel(
    page: Page, console_stack: LocalStack
) -> None:
    _, phone = unique_phone("080-77")
    for i in range(25):
        await submit(console_stack, "chat", live_chat(f"message {i:02d}", phone=phone, name="Mori"))
    async with http_session(console_stack) as session:
        await eventually(
            session,
            _COUNT,
            lambda r: (r["customerByIdentifier"] or {}).get("interactionCount") == 25,
            p=phone,
        )
    await sign_in(page, console_stack, "Agent")
    # Finding people by name is not an agent's: the console says so instead of failing.
    await page.get_by_role("searchbox", name="Search customers").fill("Mori")
    await page.get_by_role("button", name="Find").click()
    await expect(
        page.get_by_role("status").filter(has_text="by phone or e-mail only")
    ).to_be_visible()
    await page.get_by_role("searchbox", name="Search customers").fill(phone)
    await page.get_by_role("button", name="Find").click()
    timeline = page.get_by_role("list", name="Timeline")
    # A page is 20 entries; the rest comes by cursor when the end scrolls into view.
    await expect(timeline.locator(".entry")).to_have_count(20)
    await (
        page.get_by_text("Beginning of the history.")
        .or_(page.get_by_role("button", name="Load more"))
        .scroll_into_view_if_needed()
    )
    await expect(timeline.locator(".entry")).to_have_count(25)
    await expect(page.get_by_text("Beginning of the history.")).to_be_visible()

    await page.get_by_role("combobox", name="Channel", exact=True).select_option("VOICE")
    await expect(timeline.locator(".entry")).to_have_count(0)
    await page.get_by_role("combobox", name="Channel", exact=True).select_option("CHAT")
    await expect(timeline.locator(".entry")).to_have_count(20)
