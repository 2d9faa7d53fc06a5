"""Per-tenant identity rules (pure logic): sub-address folding, blocklist, soft-signal keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.timeline.identity.policy import (
    IdentityPolicy,
    IdentityRules,
    fold_subaddress,
    parse_blocklist_entry,
)
from services.timeline.profiles.signals import address_key, name_key
from services.timeline.settings import TimelineSettings
from tsunagu.identifiers import normalize_identifier
from tsunagu.v1 import interaction_pb2 as pb

local_parts = st.from_regex(r"[a-z0-9._+-]{1,20}", fullmatch=True)
domains = st.from_regex(r"[a-z0-9-]{1,10}\.(jp|com|co\.jp)", fullmatch=True)


@given(local=local_parts, domain=domains)
def test_folding_a_sub_address_is_idempotent_and_keeps_the_domain(local: str, domain: str) -> None:
    folded = fold_subaddress(f"{local}@{domain}")
    assert fold_subaddress(folded) == folded
    assert folded.endswith(f"@{domain}")
    assert "+" not in folded.rpartition("@")[0] or local.startswith("+")


def email_key(policy: IdentityPolicy, raw: str) -> tuple[str, str]:
    ident = normalize_identifier(
        pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=raw), default_region=policy.region
    )
    return policy.key(ident)


def test_tags_fold_only_where_the_tenant_turns_it_on() -> None:
    off = IdentityPolicy.from_rules(IdentityRules(), region="JP")
    on = IdentityPolicy.from_rules(IdentityRules(fold_email_subaddress=True), region="JP")
    assert email_key(off, "Taro+Shop@Example.jp") == ("email", "taro+shop@example.jp")
    assert email_key(on, "Taro+Shop@Example.jp") == ("email", "taro@example.jp")


def test_blocklist_entries_are_normalised_like_the_identifiers_they_block() -> None:
    policy = IdentityPolicy.from_rules(
        IdentityRules(blocklist=["email: Info@Shop.example ", "phone:03-1234-5678"]), region="JP"
    )
    assert policy.blocklisted(("email", "info@shop.example"))
    assert policy.blocklisted(("phone", "+81312345678"))
    assert policy.blocklisted(("email", "noreply@anything.example"))  # default local parts
    assert not policy.blocklisted(("email", "info@other.example"))


@pytest.mark.parametrize("entry", ["fax:123", "email", "phone:not a number", "email:no-at-sign"])
def test_a_bad_blocklist_entry_fails_start_up_naming_it(entry: str) -> None:
    with pytest.raises(ValueError, match="blocklist entry"):
        parse_blocklist_entry(entry, region="JP")
    with pytest.raises(ValidationError, match="blocklist entry"):
        TimelineSettings(tenant_identity={"shop": {"blocklist": [entry]}})


def test_tenant_rules_replace_the_default_and_keep_the_tenant_region() -> None:
    settings = TimelineSettings(
        tenant_regions={"us-shop": "US"},
        tenant_identity={"us-shop": {"max_customers_per_identifier": 5}},
    )
    assert settings.identity_for("us-shop").max_customers_per_identifier == 5
    assert settings.identity_for("us-shop").region == "US"
    assert settings.identity_for("other").max_customers_per_identifier == 3


def test_the_strongest_identifier_is_the_crm_id_then_login_then_email() -> None:
    policy = IdentityPolicy(region="JP")
    keys = [("chat_visitor", "v"), ("phone", "+8190"), ("email", "a@b.jp"), ("chat_login", "u")]
    assert policy.strongest(keys) == ("chat_login", "u")
    assert policy.strongest([*keys, ("external_crm_id", "C-1")]) == ("external_crm_id", "C-1")
    assert policy.strongest([]) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [("佐藤 花子", "佐藤花子"), ("Sato Hanako", "sato  HANAKO"), ("ｻﾄｳ ﾊﾅｺ", "サトウハナコ")],
)
def test_names_written_differently_have_one_key(a: str, b: str) -> None:
    assert name_key(a) == name_key(b) != ""


@pytest.mark.parametrize("name", ["", " ", "A", "Guest", "お客様", "  ゲスト "])
def test_empty_or_generic_names_are_no_signal(name: str) -> None:
    assert name_key(name) == ""


def test_addresses_fold_width_and_spacing_and_short_ones_are_no_signal() -> None:
    assert address_key("東京都千代田区１－２－３") == address_key("東京都 千代田区 1-2-3")
    assert address_key("Tokyo") == ""


@given(st.text(max_size=40))
def test_name_key_is_idempotent_on_any_text(text: str) -> None:
    key = name_key(text)
    assert key == "" or name_key(key) == key
