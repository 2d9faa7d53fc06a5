"""Caller credentials: what a server configuration may say, how callers are found, tenants."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.ingest.access import ForeignTenant, claim_tenant
from services.ingest.settings import IngestSettings
from tests import builders
from tsunagu.grpc_callers import (
    CREDENTIALS,
    Caller,
    CallerCredential,
    CallerRegistry,
    bearer_token,
    issue_credential,
    token_digest,
)
from tsunagu.local.__main__ import main
from tsunagu.local.grpc_callers import TOKENS_FILE, LocalCallers

DIGEST = token_digest("x")


@pytest.mark.parametrize(
    ("shape", "complaint"),
    [
        ({"kind": "adapter", "tenants": ["*"], "channel": "chat"}, "every tenant"),
        ({"kind": "adapter", "tenants": ["acme"]}, "names its channel"),
        ({"kind": "service", "tenants": ["*"], "channel": "chat"}, "has no channel"),
        ({"kind": "service", "tenants": ["*"], "token_sha256": ""}, "needs token_sha256"),
        ({"kind": "service", "tenants": ["*"], "token_sha256": "not-hex"}, "pattern"),
        ({"kind": "service", "tenants": []}, "at least 1"),
    ],
)
def test_a_credential_that_grants_too_much_or_proves_nothing_is_refused(
    shape: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        CallerCredential.model_validate({"name": "x", "token_sha256": DIGEST, **shape})


def test_callers_are_found_by_token_digest_or_certificate_identity_only() -> None:
    chat, token = issue_credential("acme-chat", kind="adapter", tenants=["acme"], channel="chat")
    certified = CallerCredential(
        name="gw",
        kind="service",
        tenants=["*"],
        certificate_identity="spiffe://tsunagu/service/gateway",
    )
    registry = CallerRegistry([chat, certified])

    assert token not in CREDENTIALS.dump_json([chat]).decode()  # servers hold digests
    assert registry.by_token(token) == Caller("acme-chat", "adapter", frozenset({"acme"}), "chat")
    assert registry.by_token(token + "x") is None
    assert registry.by_token(chat.token_sha256) is None  # the digest is no token
    found = registry.by_certificate(["spiffe://other", "spiffe://tsunagu/service/gateway"])
    assert found is not None
    assert found.acts_for("anyone")
    assert registry.by_certificate(["gw"]) is None


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer abc ", "abc"), ("Basic abc", None), ("Bearer ", None)],
)
def test_only_bearer_authorization_carries_a_token(header: str, token: str | None) -> None:
    assert bearer_token(header) == token


def test_a_single_tenant_adapter_fills_in_a_missing_tenant_and_refuses_others() -> None:
    one = Caller("a", "adapter", frozenset({"acme"}), "chat")
    two = Caller("b", "adapter", frozenset({"acme", "shop"}), "chat")
    event = builders.chat("")
    claim_tenant(one, event)
    assert event.tenant == "acme"

    unnamed = builders.chat("")
    claim_tenant(two, unnamed)  # which one is not for us to guess: the contract refuses it
    assert unnamed.tenant == ""
    claim_tenant(two, builders.chat("shop"))
    with pytest.raises(ForeignTenant):
        claim_tenant(one, builders.chat("shop"))


def test_ingest_reads_its_callers_from_a_mounted_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_file, _ = issue_credential("f", kind="adapter", tenants=["acme"], channel="chat")
    from_env, _ = issue_credential("e", kind="adapter", tenants=["shop"], channel="chat")
    path = tmp_path / "callers.json"
    path.write_bytes(CREDENTIALS.dump_json([from_file]))
    monkeypatch.setenv("TSUNAGU_INGEST_CALLERS", CREDENTIALS.dump_json([from_env]).decode())
    monkeypatch.setenv("TSUNAGU_INGEST_CALLERS_FILE", str(path))
    settings = IngestSettings(channel="chat")
    assert [c.name for c in settings.caller_credentials()] == ["e", "f"]


@pytest.mark.parametrize(
    "tls",
    [
        {"tls_cert_file": "c.pem"},
        {"tls_client_ca_file": "ca.pem"},
        {"tls_cert_file": "c", "tls_key_file": "k", "tls_require_client_cert": True},
    ],
)
def test_incomplete_tls_settings_fail_at_start(tls: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        IngestSettings.model_validate({"channel": "chat", **tls})


def test_local_tokens_survive_a_restart_and_stay_private(tmp_path: Path) -> None:
    first = LocalCallers.load_or_create(tmp_path, channels=("chat",), tenants=("demo",))
    again = LocalCallers.load_or_create(tmp_path, channels=("chat", "sms"), tenants=("demo",))

    assert again.adapter("chat") == first.adapter("chat")
    assert again.gateway == first.gateway
    assert again.adapter("sms") not in {first.adapter("chat"), first.gateway, first.tools}
    assert stat.S_IMODE((tmp_path / TOKENS_FILE).stat().st_mode) == 0o600
    env = again.server_env("TSUNAGU_INGEST_")["TSUNAGU_INGEST_CALLERS"]
    assert again.adapter("chat") not in env
    registry = CallerRegistry(CREDENTIALS.validate_json(env))
    assert registry.by_token(again.adapter("sms")) == Caller(
        "adapter-sms", "adapter", frozenset({"demo"}), "sms"
    )
    tools = registry.by_token(again.tools)
    assert tools == Caller("tools", "service", frozenset({"demo"}))


def test_adapter_token_command_prints_a_token_and_the_credential_with_its_digest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["adapter-token", "--tenant", "acme", "--channel", "voice"])
    out = capsys.readouterr().out
    token = out.splitlines()[0].rsplit(" ", 1)[1]
    [credential] = json.loads(out.split("\n", 2)[2])
    assert credential["token_sha256"] == token_digest(token)
    assert credential["kind"] == "adapter"
    assert (credential["tenants"], credential["channel"]) == (["acme"], "voice")
