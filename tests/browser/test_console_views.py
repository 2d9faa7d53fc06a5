"""The other views in Chromium: the supervisor's floor, GraphiQL offline, Japanese, refusals."""

from __future__ import annotations

import hashlib
from base64 import urlsafe_b64encode

from playwright.async_api import BrowserContext, Page, Route, expect

from tests.browser.conftest import console_url, screenshot, sign_in
from tsunagu.local.demo import PHONE
from tsunagu.local.stack import LocalStack

_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


async def test_supervisor_sees_the_floor_figures_and_opens_a_case(
    page: Page, console_stack: LocalStack
) -> None:
    await sign_in(page, console_stack, "Supervisor")
    # A supervisor may also find customers by name, full-width as typed on a Japanese IME.
    await page.get_by_role("searchbox", name="Search customers").fill("Ｓａｔｏ Ｈａｎａｋｏ")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Sato Hanako")).to_be_visible()
    await page.get_by_role("navigation", name="Panels").get_by_role("button", name="Floor").click()

    chart = page.get_by_role("group", name="Cases by status")
    await expect(chart.locator('.figure[data-status="OPEN"]')).not_to_have_text("0")
    await screenshot(page, "supervisor-floor")
    await chart.get_by_role("button", name="OPEN:").click()
    cases = page.get_by_role("table", name="Cases")
    await expect(cases.locator(".case-status").first).to_have_text("OPEN")
    await cases.get_by_role("button", name="Open").first.click()
    # The case's customer opens on the desk, with the merge history a supervisor may read.
    await expect(page.get_by_role("heading", name="Merge history")).to_be_visible()


async def test_graphiql_runs_offline_from_local_assets_with_the_console_token(
    page: Page, context: BrowserContext, console_stack: LocalStack
) -> None:
    outside: list[str] = []
    gateway = console_stack.graphql_url.split("/graphql", 1)[0]

    # Anything not from the gateway or the local issuer would be a CDN: refuse it, remember it.
    async def only_local(route: Route) -> None:
        if route.request.url.startswith((gateway, "data:", console_stack.signin_url)):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_local)
    await sign_in(page, console_stack, "Agent")
    await expect(page.get_by_role("searchbox", name="Search customers")).to_be_visible()
    # GraphiQL in the same tab starts with the signed-in person's token.
    await page.goto(console_stack.graphql_url)
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    await expect(editor).to_be_visible()
    query = f'{{ customerByIdentifier(kind: PHONE, value: "{PHONE}") {{ displayName }} }}'
    await editor.evaluate("(e, q) => e.CodeMirror.setValue(q)", query)
    await page.get_by_role("button", name="Execute query").click()
    await expect(page.locator(".graphiql-response")).to_contain_text("Sato Hanako")
    assert outside == []


async def test_console_speaks_japanese_and_pkce_challenge_is_s256(
    page: Page, console_stack: LocalStack
) -> None:
    await page.goto(console_url(console_stack))
    await page.get_by_role("combobox", name="Language").select_option("ja")
    await expect(page.get_by_role("heading", name="サインイン")).to_be_visible()
    await page.get_by_role("button", name="オペレーター").click()
    await page.get_by_role("searchbox", name="顧客を検索").fill(PHONE)
    await page.keyboard.press("Enter")
    await expect(
        page.get_by_role("list", name="タイムライン").locator(".entry").first
    ).to_be_visible()
    await screenshot(page, "agent-desk-ja")

    # RFC 7636: a 43-character base64url verifier, and its challenge BASE64URL(SHA256(verifier)).
    verifier, challenge = await page.evaluate(
        "() => import('/console/assets/auth.js')"
        ".then(async m => { const v = m.codeVerifier(); return [v, await m.codeChallenge(v)]; })"
    )
    assert len(verifier) == 43
    assert set(verifier) <= set(_BASE64URL)
    expected = urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == expected.decode()


async def test_a_refused_token_shows_sign_in_again_without_console_errors(
    page: Page, console_stack: LocalStack
) -> None:
    # An expired token in the tab: the console drops it and asks to sign in.
    await page.goto(console_url(console_stack))
    expired = console_stack.issuer.mint(tenant="demo", roles=["agent"], ttl_seconds=-120)
    await page.evaluate("t => sessionStorage.setItem('tsunagu.token', t)", expired)
    await page.reload()
    await expect(page.get_by_role("group", name="Sign in as")).to_be_visible()


async def test_privacy_officer_sees_what_is_held_and_no_actions(
    page: Page, console_stack: LocalStack
) -> None:
    await sign_in(page, console_stack, "Privacy officer")
    panels = page.get_by_role("navigation", name="Panels")
    await expect(panels.get_by_role("button")).to_have_text(["Privacy"])
    await page.get_by_role("searchbox", name="Search customers").fill(PHONE)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Merge history")).to_be_visible()
    await expect(page.get_by_role("list", name="Timeline").locator(".entry").first).to_be_visible()
    # A privacy officer reads; acting on customers and watching live are not theirs.
    await expect(page.get_by_role("heading", name="Actions")).to_have_count(0)
    await expect(page.get_by_role("button", name="Split")).to_have_count(0)
