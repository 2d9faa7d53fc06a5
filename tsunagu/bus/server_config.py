"""nats-server's `authorization` and `tls` blocks, and the local run's passwords, kept once made."""

from __future__ import annotations

import json
import os
import secrets
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tsunagu.bus.connection import NatsLogin
from tsunagu.bus.permissions import OPERATOR_USER, NatsUser, service_users

_PRIVATE = 0o600


def all_users() -> tuple[NatsUser, ...]:
    """The operator and every service user."""
    return (OPERATOR_USER, *service_users())


def password_variable(user: str) -> str:
    """The environment variable nats-server reads `user`'s password from (Kubernetes)."""
    return "NATS_PASSWORD_" + user.upper().replace("-", "_")


def authorization(users: tuple[NatsUser, ...], passwords: Mapping[str, str] | None = None) -> str:
    """The `authorization` block of nats-server's configuration (whose syntax accepts JSON).

    Without `passwords`, each password is the server's environment variable
    `password_variable(user)`, filled from a Secret. Subjects are quoted, so a `$` in them is
    never read as a variable. No `no_auth_user`: a connection without credentials is refused.
    """
    entries = []
    for user in users:
        password = (
            json.dumps(passwords[user.name]) if passwords else "$" + password_variable(user.name)
        )
        permissions = textwrap.indent(json.dumps(user.permissions(), indent=2), "      ").lstrip()
        entries.append(
            f"    {{\n      user: {json.dumps(user.name)}\n      password: {password}\n"
            f"      permissions: {permissions}\n    }}"
        )
    return "authorization {\n  users: [\n" + ",\n".join(entries) + "\n  ]\n}\n"


@dataclass(frozen=True, slots=True)
class ServerTls:
    """TLS for client connections: every client must speak TLS, from its first byte.

    Attributes:
        cert_file: The server's certificate (chain), PEM.
        key_file: Its private key, PEM.
        ca_file: A CA to verify client certificates with; then clients must present one
            (passwords still say who they are).
    """

    cert_file: str
    key_file: str
    ca_file: str | None = None

    def block(self) -> str:
        """The `tls` block of nats-server's configuration.

        `handshake_first`: the server starts TLS before it sends anything, so a client never
        reads an unprotected INFO that could tell it to continue in the clear (downgrade), and
        a plaintext client gets no answer at all.
        """
        lines = [
            f"  cert_file: {json.dumps(self.cert_file)}",
            f"  key_file: {json.dumps(self.key_file)}",
            '  min_version: "1.2"',
            "  handshake_first: true",
            "  timeout: 5",
        ]
        if self.ca_file is not None:
            lines += [f"  ca_file: {json.dumps(self.ca_file)}", "  verify: true"]
        return "tls {\n" + "\n".join(lines) + "\n}\n"


def _write_private(path: Path, text: str) -> None:
    # Created 0600 from the start: the secret is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    path.chmod(_PRIVATE)


class LocalNatsUsers:
    """Passwords of the local run's NATS users under `directory`, generated once and kept.

    `passwords.json` holds them and `nats.conf` is the server's authorization block, both
    0600; a user added to the table later gets a password on the next run.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "nats.conf"
        self._passwords_path = directory / "passwords.json"
        known: dict[str, str] = {}
        if self._passwords_path.exists():
            known = json.loads(self._passwords_path.read_text(encoding="utf-8"))
        users = all_users()
        self._passwords = {u.name: known.get(u.name) or secrets.token_urlsafe(32) for u in users}
        if self._passwords != known:
            _write_private(self._passwords_path, json.dumps(self._passwords, indent=2) + "\n")
        _write_private(self.config_path, authorization(users, self._passwords))

    def login(self, user: str) -> NatsLogin:
        """The credentials of one user (KeyError for an unknown one)."""
        return NatsLogin(user, self._passwords[user])


if __name__ == "__main__":
    # The block deploy/k8s/base/nats.yaml carries (a manifest test keeps the two equal).
    print(authorization(all_users()), end="")
