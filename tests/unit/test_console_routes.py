"""The console's routes: its page, assets and config, each with a strict Content-Security-Policy."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from starlette.applications import Starlette

from gateway.console.routes import console_routes
from gateway.settings import GatewaySettings

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL = GatewaySettings(console_local_signin_url="http://127.0.0.1:4555/console/signin")


def _client(settings: GatewaySettings) -> httpx.AsyncClient:
    app = Starlette(routes=console_routes(settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_the_page_and_its_scripts_come_with_a_self_only_policy() -> None:
    async with _client(LOCAL) as client:
        page = await client.get("/console")
        script = await client.get("/console/assets/main.js")
    assert page.status_code == 200
    assert '<script type="module" src="/console/assets/main.js">' in page.text
    for response in (page, script):
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "style-src 'self';" in policy
        assert "unsafe" not in policy
        # The local issuer's sign-in is the one other origin the browser may call.
        assert "connect-src 'self' http://127.0.0.1:4555;" in policy
        assert response.headers["x-content-type-options"] == "nosniff"


def test_no_console_file_has_an_inline_script_or_a_remote_url() -> None:
    static = REPO_ROOT / "gateway" / "console" / "static"
    for page in static.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "<script>" not in text, page
        assert "http://" not in text, page
        assert "https://" not in text, page
    for script in static.glob("*.js"):
        assert "https://" not in script.read_text(encoding="utf-8"), script


async def test_config_names_the_sign_in_ways_and_no_secret() -> None:
    oidc = GatewaySettings(
        oidc_authorization_endpoint="https://idp.example/authorize",
        oidc_token_endpoint="https://idp.example/token",
        oidc_client_id="console",
        timeline_token="secret-token",
    )
    async with _client(oidc) as client:
        response = await client.get("/console/config.json")
    config = response.json()
    assert config["localSignInUrl"] is None
    assert config["oidc"] == {
        "authorizationEndpoint": "https://idp.example/authorize",
        "tokenEndpoint": "https://idp.example/token",
        "clientId": "console",
        "scope": "openid profile",
    }
    assert "secret" not in response.text
    assert "https://idp.example" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path",
    [
        "/console/assets/../routes.py",
        "/console/assets/%2e%2e/routes.py",
        "/console/assets/vendor/../../__init__.py",
        "/console/assets/nothing-here.js",
        "/console/assets/" + "a" * 5000,
    ],
)
async def test_hostile_asset_paths_reach_no_file_outside_the_static_folder(path: str) -> None:
    async with _client(LOCAL) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert "import" not in response.text


async def test_the_console_can_be_turned_off() -> None:
    async with _client(GatewaySettings(console=False)) as client:
        assert (await client.get("/console")).status_code == 404


def _assets_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "console_assets", REPO_ROOT / "scripts" / "console_assets.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up by name while the module runs.
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_vendored_assets_match_their_pinned_packages() -> None:
    assert _assets_script().problems() == []


def test_an_edited_vendored_file_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = _assets_script()
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    for file in script.VENDOR.iterdir():
        (vendor / file.name).write_bytes(file.read_bytes())
    (vendor / "htm-preact.module.js").write_text("export const html = () => 'edited';")
    (vendor / "extra.js").write_text("fetch('https://cdn.example/x.js')")
    monkeypatch.setattr(script, "VENDOR", vendor)
    monkeypatch.setattr(script, "MANIFEST", vendor / "MANIFEST.json")
    assert script.problems() == [
        "extra.js: not from a pinned package",
        "htm-preact.module.js: missing or edited (run make console-assets)",
    ]
