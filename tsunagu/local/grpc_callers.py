"""The local run's gRPC callers: an adapter token per ingest channel, the gateway's, the tools'."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tsunagu.grpc_callers import CREDENTIALS, CallerCredential, CallerKind, token_digest

TOKENS_FILE = "grpc-tokens.json"
GATEWAY = "gateway"
INSIGHTS = "insights"
# The demo loader and the benchmarks: they read the timeline to wait for what they submitted.
TOOLS = "tools"


def adapter_name(channel: str) -> str:
    return f"adapter-{channel}"


def _load_tokens(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def _save_tokens(path: Path, tokens: Mapping[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    # Bearer tokens: owner-readable only, replaced atomically.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(dict(tokens), file, indent=2, sort_keys=True)
    temporary.replace(path)


@dataclass(frozen=True, slots=True)
class LocalCallers:
    """Tokens kept in the data folder across runs, and the credentials the servers get.

    Every server gets every credential, as in Kubernetes (one Secret): each admits only its
    kind and channel, so an adapter's token at the timeline is PERMISSION_DENIED.
    """

    tokens: Mapping[str, str]
    credentials: Sequence[CallerCredential]
    tenants: Sequence[str]

    @classmethod
    def load_or_create(
        cls, data_dir: Path, *, channels: Sequence[str], tenants: Sequence[str]
    ) -> LocalCallers:
        """The tokens of an earlier run, plus new ones for any caller it did not have.

        Args:
            data_dir: The local data folder; the tokens live in `TOKENS_FILE` there.
            channels: One adapter per ingest channel.
            tenants: The tenants the adapters (and the tools) submit and read for.
        """
        path = data_dir / TOKENS_FILE
        tokens = _load_tokens(path)
        shapes: list[tuple[str, CallerKind, list[str], str]] = [
            *((adapter_name(c), "adapter", list(tenants), c) for c in channels),
            (GATEWAY, "service", ["*"], ""),
            (TOOLS, "service", list(tenants), ""),
            # The insights service reads entries back from the timeline as itself.
            (INSIGHTS, "service", ["*"], ""),
        ]
        credentials = []
        for name, kind, scope, channel in shapes:
            token = tokens.setdefault(name, secrets.token_urlsafe(32))
            credentials.append(
                CallerCredential(
                    name=name,
                    kind=kind,
                    tenants=scope,
                    channel=channel,
                    token_sha256=token_digest(token),
                )
            )
        _save_tokens(path, tokens)
        return cls(tokens, credentials, tuple(tenants))

    def adapter(self, channel: str) -> str:
        """The bearer token of the adapter for `channel`."""
        return self.tokens[adapter_name(channel)]

    @property
    def gateway(self) -> str:
        return self.tokens[GATEWAY]

    @property
    def tools(self) -> str:
        return self.tokens[TOOLS]

    @property
    def insights(self) -> str:
        return self.tokens[INSIGHTS]

    def server_env(self, prefix: str) -> dict[str, str]:
        """A gRPC server's callers setting (digests only), e.g. for `TSUNAGU_INGEST_`."""
        return {f"{prefix}CALLERS": CREDENTIALS.dump_json(list(self.credentials)).decode()}

    def adapters_section(self, addresses: Mapping[str, str]) -> dict[str, object]:
        """The credentials file's "adapters" section: per channel, where and how to submit."""
        return {
            channel: {
                "address": address,
                "tenants": list(self.tenants),
                "token": self.adapter(channel),
                "metadata": {"authorization": f"Bearer {self.adapter(channel)}"},
            }
            for channel, address in addresses.items()
        }
