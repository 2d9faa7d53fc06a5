"""The console's live timeline survives the gateway going away: it reconnects and resubscribes.

Runs last among the browser tests: it restarts the shared stack's gateway (same port).
"""

from __future__ import annotations

import asyncio
import uuid

from playwright.async_api import BrowserContext, expect

from tests.browser.conftest import ConsoleErrors, sign_in
from tests.browser.test_agent_console import live_chat, screen_pop
from tests.e2e.agent_desk import submit
from tsunagu.local.demo import PHONE
from tsunagu.local.stack import LocalStack

# What Chromium logs, by itself, while the gateway is down: the refused connections.
_WHILE_DOWN = ("WebSocket connection to", "Failed to load resource")


async def test_live_timeline_resubscribes_after_the_gateway_restarts(
    context: BrowserContext, console_stack: LocalStack
) -> None:
    page = await context.new_page()
    errors = ConsoleErrors(page)
    await sign_in(page, console_stack, "Agent")
    await screen_pop(page, PHONE)
    badge = page.get_by_role("status").filter(has_text="Live")
    await expect(badge).to_be_visible()

    async with console_stack.held_down("gateway"):
        await expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_be_visible()
    await expect(badge).to_be_visible()

    # No protocol message says "subscribed" again: send until the first one shows live.
    newest = page.get_by_role("list", name="Timeline").locator(".entry").first
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        text = f"After the restart {uuid.uuid4().hex[:8]}"
        await submit(console_stack, "chat", live_chat(text))
        try:
            await expect(newest).to_contain_text(text, timeout=3_000)
            break
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
    assert [e for e in errors.errors if not e.startswith(_WHILE_DOWN)] == []
