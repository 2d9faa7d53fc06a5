"""The local run's NATS users: generated once, kept across runs, readable by the owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from tsunagu.bus.permissions import OPERATOR, TIMELINE, service_users
from tsunagu.bus.server_config import LocalNatsUsers


def test_passwords_are_generated_once_and_kept_across_runs(tmp_path: Path) -> None:
    first = LocalNatsUsers(tmp_path / "nats-users")
    again = LocalNatsUsers(tmp_path / "nats-users")
    assert again.login(TIMELINE) == first.login(TIMELINE)
    passwords = {first.login(u.name).password for u in service_users()}
    assert len(passwords) == len(service_users()), "every user has a password of its own"
    assert all(len(p) >= 32 for p in passwords)


def test_secrets_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    users = LocalNatsUsers(tmp_path / "nats-users")
    for path in (users.config_path, tmp_path / "nats-users" / "passwords.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_server_config_names_every_user_and_no_anonymous_user(tmp_path: Path) -> None:
    users = LocalNatsUsers(tmp_path / "nats-users")
    config = users.config_path.read_text(encoding="utf-8")
    for name in [OPERATOR, *(u.name for u in service_users())]:
        assert f'user: "{name}"' in config
        assert users.login(name).password in config
    assert "no_auth_user" not in config
