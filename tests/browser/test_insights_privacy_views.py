"""The supervisor's insights and the privacy officer's tools in Chromium, on the shared stack."""

from __future__ import annotations

import asyncio
import json
import uuid

from playwright.async_api import Download, Page, expect

from tests.browser.conftest import DEMO_STORIES, screenshot, sign_in
from tests.e2e.agent_desk import execute, http_session
from tsunagu.local.demo_contacts import Action, Story, mutation_document, stories
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import interaction_pb2 as pb

FIND = "query Find($value: String!) { customerByIdentifier(kind: EMAIL, value: $value) { id } }"


PROMOTE = """mutation Promote($caseId: ID!) {
  promoteResolution(caseId: $caseId, title: "Ginkgo walrus refund steps") { id }
}"""


def _by_email() -> list[Story]:
    return [s for s in stories(DEMO_STORIES) if s.identifier.kind == pb.IDENTIFIER_KIND_EMAIL]


async def _downloaded(download: Download) -> str:
    """The text of a file the page saved (read off the event loop)."""
    saved = await download.path()
    return await asyncio.to_thread(saved.read_text, encoding="utf-8")


async def _request_cancellation(stack: LocalStack, story: Story) -> None:
    """An agent records the story's customer asking to cancel: a new reason to be at risk."""
    action = Action("requestCancellation", {"reason": "HEALTH", "eventId": str(uuid.uuid4())})
    async with http_session(stack) as session:
        found = await execute(session, FIND, value=story.identifier.value)
        customer_id = found["customerByIdentifier"]["id"]
        done = await execute(
            session, mutation_document(action), customerId=customer_id, **action.variables
        )
    assert done["requestCancellation"]["status"] in {"STORED", "ACCEPTED"}


async def test_supervisor_sees_figures_topics_and_at_risk_and_follows_a_figure(
    page: Page, console_stack: LocalStack
) -> None:
    await sign_in(page, console_stack, "Supervisor")
    await page.get_by_role("navigation", name="Panels").get_by_role("button", name="Floor").click()

    # Figures drawn from the generated contacts: a bar with a value in each chart.
    resolution = page.get_by_role("group", name="Resolution time")
    bars = resolution.locator("button.bar:not([disabled])")
    await expect(bars.first).to_be_visible()
    csat = page.get_by_role("group", name="CSAT (1-5)")
    await expect(csat.locator("button.bar:not([disabled])").first).to_be_visible()
    reasons = page.get_by_role("group", name="Cancellation reasons")
    await expect(reasons.get_by_role("button").first).to_be_visible()
    # Topics with their trend and masked examples; the customers at risk with their reasons.
    topics = page.get_by_role("table", name="Voice of the customer: topics")
    await expect(topics.locator("tr.topic").nth(1)).to_be_visible()
    await expect(topics.locator(".examples li").first).not_to_be_empty()
    # A topic's case count lists its cases; pressed again, the list closes.
    topic_cases = page.get_by_role("region", name="Voice of the customer: topics").get_by_role(
        "table", name="Cases behind the figure"
    )
    first_topic = topics.locator("tr.topic").first.get_by_role("button")
    await first_topic.click()
    await expect(topic_cases.locator("tr").first).to_be_visible()
    await first_topic.click()
    await expect(topic_cases).to_have_count(0)
    at_risk = page.get_by_role("table", name="Customers at risk")
    await expect(at_risk.locator(".reasons li").first).to_be_visible()
    # Live: a customer newly asking to cancel joins the list without a reload.
    calm = next(
        s for s in _by_email() if all(a.mutation != "requestCancellation" for a in s.actions)
    )
    joined = at_risk.locator("tr.at-risk", has_text=calm.customer).filter(
        has_text="Open cancellation request"
    )
    await expect(joined).to_have_count(0)
    await _request_cancellation(console_stack, calm)
    await expect(joined).to_have_count(1)
    # The screenshot starts at the insights (the floor's case lists come first).
    await page.get_by_role("heading", name="Service metrics").evaluate("h => h.scrollIntoView()")
    await screenshot(page, "supervisor-insights")

    # Grouped by agent, then a figure followed to its cases, and their CSV downloaded.
    await page.get_by_role("combobox", name="Group by").select_option("AGENT")
    await expect(bars.first).to_contain_text("·")
    await bars.first.focus()
    await page.keyboard.press("Enter")  # keyboard, like any button
    cases = page.get_by_role("table", name="Cases behind the figure")
    await expect(cases.locator("tr").first).to_be_visible()
    async with page.expect_download() as downloading:
        await page.get_by_role("button", name="Download CSV").click()
    csv = await _downloaded(await downloading.value)
    assert csv.splitlines()[0].startswith("case_id,customer_id")
    assert len(csv.splitlines()) >= 2
    # A case behind the figure opens its customer on the desk.
    # A supervisor promotes that resolved case's resolution to a knowledge article (API).
    resolved = await cases.locator(".tag").first.inner_text()
    async with http_session(console_stack, roles=["supervisor"]) as session:
        await execute(session, PROMOTE, caseId=resolved)
    await cases.get_by_role("button", name="Open").first.click()
    await expect(page.get_by_role("heading", name="Merge history")).to_be_visible()
    # On the desk, the knowledge search finds it.
    await page.get_by_role("searchbox", name="Search knowledge articles").fill("Ginkgo walrus")
    await page.get_by_role("searchbox", name="Search knowledge articles").press("Enter")
    articles = page.get_by_role("search", name="Knowledge articles").locator(".articles li")
    await expect(articles.first).to_contain_text("Ginkgo walrus refund steps")


async def test_privacy_officer_reads_the_audit_exports_and_erases_a_customer(
    page: Page, console_stack: LocalStack
) -> None:
    # A generated customer found by e-mail, the last story: no other test reads it.
    story = _by_email()[-1]
    await sign_in(page, console_stack, "Privacy officer")
    await page.get_by_role("searchbox", name="Search customers").fill(story.identifier.value)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=story.customer)).to_be_visible()

    # Reading the customer was recorded: the trail shows it, with who read.
    trail = page.get_by_role("table", name="Audit trail of this customer")
    await expect(trail.locator(".operation", has_text="read_profile").first).to_be_visible()

    # Export: a reason, then the JSON and the CSV as downloads.
    await page.get_by_label("Reason for the export").fill("SAR-2026-17")
    await page.get_by_role("button", name="Export", exact=True).click()
    await expect(page.get_by_role("status").filter(has_text="Exported")).to_be_visible()
    async with page.expect_download() as downloading:
        await page.get_by_role("button", name="Download JSON").click()
    document = json.loads(await _downloaded(await downloading.value))
    assert document["format"] == "tsunagu.customer-export/1"
    assert document["interactions"]

    # Erase: a typed reason, then an explicit confirmation; the certificate is shown.
    await page.get_by_label("Reason for the erasure").fill("APPI art. 35 request 2026-41")
    await page.get_by_role("button", name="Erase…").click()
    dialog = page.get_by_role("alertdialog")
    await expect(dialog).to_contain_text("cannot be undone")
    await dialog.get_by_role("button", name="Yes, erase").click()
    certificate = page.locator(".certificate")
    await expect(certificate.locator(".certificate-id")).not_to_be_empty()
    await expect(certificate).to_contain_text("APPI art. 35 request 2026-41")
    # Read again, the customer is the mask: no name, the timeline's words erased.
    await expect(page.get_by_role("heading", name=story.customer)).to_have_count(0)
    timeline = page.get_by_role("list", name="Timeline")
    await expect(timeline.locator(".entry").first).to_contain_text("[erased]")
    # The export reached the trail too; the tenant's chain verifies intact.
    await expect(trail.locator(".operation", has_text="export").first).to_be_visible()
    await page.get_by_role("button", name="Verify the chain").click()
    await expect(page.get_by_role("status").filter(has_text="Chain intact")).to_be_visible()
    trail_title = page.get_by_role("heading", name="Audit trail of this customer")
    await trail_title.evaluate("h => h.scrollIntoView()")
    await screenshot(page, "privacy-officer")


async def test_analyst_sees_figures_without_customers_or_the_at_risk_list(
    page: Page, console_stack: LocalStack
) -> None:
    # Analysts read figures and topics; customers and the at-risk list are not theirs, and the
    # console asks for none of it (a refused field would show an error).
    await sign_in(page, console_stack, "Analyst")
    resolution = page.get_by_role("group", name="Resolution time")
    await resolution.locator("button.bar:not([disabled])").first.click()
    cases = page.get_by_role("table", name="Cases behind the figure")
    await expect(cases.locator("tr").first).to_be_visible()
    await expect(cases.get_by_role("button", name="Open")).to_have_count(0)
    await expect(page.get_by_role("table", name="Voice of the customer: topics")).to_be_visible()
    await expect(page.get_by_role("heading", name="Customers at risk")).to_have_count(0)
    await expect(page.get_by_role("alert")).to_have_count(0)
