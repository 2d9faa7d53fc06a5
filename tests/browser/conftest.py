"""One local stack with the demo customer, and one Chromium, for every browser test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gql.transport.exceptions import TransportQueryError
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    async_playwright,
    expect,
)

from tests.e2e.agent_desk import execute, http_session
from tests.e2e.conftest import StackLog
from tsunagu.local import demo_contacts
from tsunagu.local.demo import PHONE, TENANT, find_demo_customer, submit_demo
from tsunagu.local.stack import LocalStack, StackPorts

CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium, quiet: no sandbox (root in CI), no GPU, nothing fetched in the background.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
# Generous waits: two shared cores run the stack, Chromium and the tests at once.
_WAIT_MS = 30_000
# Generated customers beside the demo one (as `make run` adds 220): enough for figures, topics
# and customers at risk on the supervisor's floor, few enough to keep the session short.
DEMO_STORIES = 100
expect.set_options(timeout=_WAIT_MS)
# Where the tests leave screenshots of the main views (gitignored).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"


@pytest.fixture(scope="session")
async def console_stack(session_dir: Path) -> AsyncIterator[LocalStack]:
    """The whole system, with the demo customer stored (as `make run` leaves it)."""
    async with LocalStack(
        session_dir / "browser",
        ports=StackPorts.free(),
        tenant_database="browser",
        mongodb_uri=os.environ.get("MONGODB_URI"),
        sink=StackLog(),
    ) as stack:
        tokens = {c: stack.grpc_callers.adapter(c) for c in stack.channels}
        await submit_demo(stack.ingest_addresses, tokens)
        found = await find_demo_customer(
            stack.timeline_address, token=stack.grpc_callers.tools, within_seconds=60
        )
        assert found is not None, f"the demo customer ({PHONE}) was never stored"
        await demo_contacts.populate(
            ingest_addresses=stack.ingest_addresses,
            tokens=tokens,
            timeline_address=stack.timeline_address,
            timeline_token=stack.grpc_callers.tools,
            graphql_url=stack.graphql_url,
            bearer=lambda agent: (
                "Bearer "
                + stack.issuer.mint(
                    tenant=TENANT, roles=["agent"], subject=agent.id, name=agent.name
                )
            ),
            count=DEMO_STORIES,
        )
        await _insights_ready(stack)
        yield stack


# What the supervisor's floor shows first: asked until every part answers with something.
_INSIGHTS = """query Ready($since: DateTime!, $until: DateTime!) {
  serviceMetrics(since: $since, until: $until, period: WEEK) { rows { contacts } }
  vocTopics(since: $since, until: $until) { topics { messages } }
  customersAtRisk(first: 1) { customerId }
}"""


async def _insights_ready(stack: LocalStack, *, seconds: float = 180) -> None:
    """Wait until insights has figures, topics and customers at risk from the demo data.

    The topics are built in the background once enough messages arrived, and on two shared
    cores a first metric query may outlast the gateway's deadline while that runs.
    """
    until = datetime.now(UTC)
    since = until - timedelta(days=91)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    last: object = None
    async with http_session(stack, roles=["supervisor"]) as session:
        while loop.time() < deadline:
            try:
                last = await execute(
                    session, _INSIGHTS, since=since.isoformat(), until=until.isoformat()
                )
            except TransportQueryError as error:
                last = error
            else:
                if isinstance(last, dict) and all(
                    last[k] if k == "customersAtRisk" else next(iter(last[k].values()))
                    for k in ("serviceMetrics", "vocTopics", "customersAtRisk")
                ):
                    return
            await asyncio.sleep(1)
    pytest.fail(f"insights never answered with figures, topics and customers at risk: {last}")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():  # noqa: ASYNC240 - one stat at session start
        pytest.fail(f"{CHROMIUM} is missing: make deps installs Debian's chromium")
    async with async_playwright() as playwright:
        # launch() gives Chromium a fresh temporary profile: nothing left from another run.
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


class ConsoleErrors:
    """Every console error and uncaught exception of a page; a test fails on any."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", self._uncaught)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _uncaught(self, error: Error) -> None:
        self.errors.append(str(error))


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser context (its own storage), English, at 1280x800."""
    context = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(_WAIT_MS)
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    page = await context.new_page()
    errors = ConsoleErrors(page)
    yield page
    assert errors.errors == [], f"console errors: {errors.errors}"


def console_url(stack: LocalStack) -> str:
    return stack.graphql_url.split("/graphql", 1)[0] + "/console"


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


async def sign_in(page: Page, stack: LocalStack, role: str) -> None:
    await page.goto(console_url(stack))
    await page.get_by_role("group", name="Sign in as").get_by_role("button", name=role).click()
