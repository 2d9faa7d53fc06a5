"""Search keys: names and identifier prefixes folded the way agents type them."""

from __future__ import annotations

from services.timeline.search_keys import identifier_prefixes, name_key, with_search_key


def test_name_keys_fold_width_case_kana_and_spaces() -> None:
    assert name_key("ＴＡＮＡＫＡ　Ｙｕｉ") == name_key("tanaka yui") == "tanakayui"
    assert name_key("ﾀﾅｶ ﾀﾛｳ") == name_key("タナカ タロウ") == name_key("たなか たろう")
    assert name_key("田中 太郎").startswith(name_key("田中太"))
    assert name_key("Straße") == name_key("STRASSE")
    assert "+819012" in identifier_prefixes("090-12", country_code=81)
    assert "+819012" in identifier_prefixes("０９０１２", country_code=81)
    assert "hanako@ex" in identifier_prefixes("Hanako@Ex", country_code=81)
    assert "CRM-77" in identifier_prefixes("CRM-77", country_code=81)  # opaque ids keep case


def test_the_search_key_follows_the_display_name() -> None:
    assert with_search_key({"display_name": "Sato Hanako"})["search_name"] == "satohanako"
    assert "search_name" not in with_search_key({"display_name": "", "search_name": "old"})
