"""Envelopes, data keys and blind indexes fail closed and survive a KEK rotation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tsunagu.crypto import (
    Binding,
    DecryptionFailed,
    LocalKeyFile,
    UnknownKey,
    blind_index,
    new_data_key,
    open_sealed,
    rewrap,
    seal,
    unwrap_data_key,
)
from tsunagu.crypto.envelope import key_id_of

KEY = os.urandom(32)
BINDING = Binding(tenant="acme", collection="interactions", field="raw", owner="cus_1")


def test_an_envelope_opens_with_its_key_and_binding() -> None:
    sealed = seal(KEY, "dek/cus_1/a", "私の電話は壊れています".encode(), BINDING)

    assert open_sealed(KEY, sealed, BINDING).decode() == "私の電話は壊れています"
    assert key_id_of(sealed) == "dek/cus_1/a"
    assert "電話".encode() not in sealed


def test_the_same_plaintext_seals_to_different_bytes() -> None:
    assert seal(KEY, "k", b"same", BINDING) != seal(KEY, "k", b"same", BINDING)


@pytest.mark.parametrize("position", [0, 1, 5, 20, -1])
def test_a_tampered_envelope_fails_closed(position: int) -> None:
    sealed = bytearray(seal(KEY, "dek/cus_1/a", b"call me on +81 90 1234 5678", BINDING))
    sealed[position] ^= 0x01

    with pytest.raises(DecryptionFailed):
        open_sealed(KEY, bytes(sealed), BINDING)


@pytest.mark.parametrize(
    "other",
    [
        Binding(tenant="other", collection="interactions", field="raw", owner="cus_1"),
        Binding(tenant="acme", collection="customers", field="raw", owner="cus_1"),
        Binding(tenant="acme", collection="interactions", field="text", owner="cus_1"),
        Binding(tenant="acme", collection="interactions", field="raw", owner="cus_2"),
    ],
)
def test_wrong_associated_data_fails_closed(other: Binding) -> None:
    sealed = seal(KEY, "k", b"secret", BINDING)

    with pytest.raises(DecryptionFailed):
        open_sealed(KEY, sealed, other)


def test_a_wrong_key_fails_closed() -> None:
    sealed = seal(KEY, "k", b"secret", BINDING)

    with pytest.raises(DecryptionFailed):
        open_sealed(os.urandom(32), sealed, BINDING)


@pytest.mark.parametrize(
    "junk", [b"", b"\x01", b"\x02abc", b"\x01\x05abc", b"\x01\x00" + b"x" * 40]
)
def test_malformed_envelopes_fail_closed(junk: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        open_sealed(KEY, junk, BINDING)


def test_a_binding_part_cannot_forge_another_binding() -> None:
    with pytest.raises(ValueError, match="separator"):
        Binding(tenant="a\x1fb", collection="c", field="f").associated_data()


def test_processes_sharing_a_key_file_derive_the_same_keys(tmp_path: Path) -> None:
    first, second = LocalKeyFile(tmp_path / "keys.json"), LocalKeyFile(tmp_path / "keys.json")
    dek = new_data_key(first, tenant="acme", owner="cus_1")

    assert unwrap_data_key(second, tenant="acme", key_id=dek.key_id, wrapped=dek.wrapped) == dek
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600


def test_a_data_key_does_not_unwrap_for_another_tenant_or_id(tmp_path: Path) -> None:
    provider = LocalKeyFile(tmp_path / "keys.json")
    dek = new_data_key(provider, tenant="acme", owner="cus_1")

    with pytest.raises(UnknownKey):
        unwrap_data_key(provider, tenant="other", key_id=dek.key_id, wrapped=dek.wrapped)
    with pytest.raises(DecryptionFailed):
        unwrap_data_key(provider, tenant="acme", key_id="dek/cus_2/x", wrapped=dek.wrapped)


def test_another_key_file_cannot_unwrap(tmp_path: Path) -> None:
    dek = new_data_key(LocalKeyFile(tmp_path / "a.json"), tenant="acme", owner="cus_1")

    with pytest.raises(DecryptionFailed):
        unwrap_data_key(
            LocalKeyFile(tmp_path / "b.json"), tenant="acme", key_id=dek.key_id, wrapped=dek.wrapped
        )


def test_rotation_keeps_old_keys_readable_and_rewrap_moves_them(tmp_path: Path) -> None:
    provider = LocalKeyFile(tmp_path / "keys.json")
    old = new_data_key(provider, tenant="acme", owner="cus_1")
    sealed = seal(old.key, old.key_id, b"before rotation", BINDING)

    assert provider.rotate("acme") == "local/acme/2"
    assert provider.kek_id("other") == "local/other/1"
    moved = rewrap(provider, tenant="acme", key_id=old.key_id, wrapped=old.wrapped)

    assert key_id_of(old.wrapped) == "local/acme/1"
    assert key_id_of(moved) == "local/acme/2"
    again = unwrap_data_key(provider, tenant="acme", key_id=old.key_id, wrapped=moved)
    assert open_sealed(again.key, sealed, BINDING) == b"before rotation"
    other_process = LocalKeyFile(tmp_path / "keys.json")
    assert other_process.kek_id("acme") == "local/acme/2"


def test_blind_indexes_are_keyed_per_tenant_and_kind(tmp_path: Path) -> None:
    provider = LocalKeyFile(tmp_path / "keys.json")
    acme, other = provider.index_key("acme"), provider.index_key("other")
    phone = "+819012345678"

    assert blind_index(acme, kind="phone", value=phone) == blind_index(
        acme, kind="phone", value=phone
    )
    assert blind_index(acme, kind="phone", value=phone) != blind_index(
        other, kind="phone", value=phone
    )
    assert blind_index(acme, kind="phone", value=phone) != blind_index(
        acme, kind="email", value=phone
    )
    assert phone not in blind_index(acme, kind="phone", value=phone)


def test_an_existing_key_file_is_only_read(tmp_path: Path) -> None:
    """In a cluster the file is a read-only Secret mount: no lock or temporary file beside it."""
    made = LocalKeyFile(tmp_path / "keys" / "keys.json")
    dek = new_data_key(made, tenant="acme", owner="cus_1")
    (tmp_path / "keys" / "keys.lock").unlink()

    mounted = LocalKeyFile(tmp_path / "keys" / "keys.json")

    assert unwrap_data_key(mounted, tenant="acme", key_id=dek.key_id, wrapped=dek.wrapped)
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["keys.json"]
