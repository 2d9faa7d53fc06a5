"""The whole system as local processes: nats-server, the store, six ingestors, timeline, gateway."""

from __future__ import annotations

import asyncio
import re
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from tsunagu.bus.permissions import GATEWAY, PROVISION, TIMELINE, ingest_user
from tsunagu.bus.provision import DONE_LINE as PROVISIONED_LINE
from tsunagu.bus.server_config import LocalNatsUsers
from tsunagu.lifecycle import Lifecycle
from tsunagu.local.credentials import CREDENTIALS_FILE, write_section
from tsunagu.local.demo import TENANT as DEMO_TENANT
from tsunagu.local.issuer import ROLES, JwksServer, LocalIssuer
from tsunagu.local.processes import (
    LineSink,
    ManagedProcess,
    MongoWireStore,
    NatsServer,
)

CHANNELS = ("chat", "voice", "email", "sms", "social", "web")


@dataclass(frozen=True, slots=True)
class StackPorts:
    """Ports of the local stack; 0 picks a free one."""

    gateway: int = 8000
    timeline: int = 50060
    ingest: dict[str, int] = field(
        default_factory=lambda: {c: 50051 + i for i, c in enumerate(CHANNELS)}
    )
    nats: int = 14222
    store: int = 27117

    @classmethod
    def free(cls) -> StackPorts:
        return cls(gateway=0, timeline=0, ingest=dict.fromkeys(CHANNELS, 0), nats=0, store=0)


class MetricsUrls:
    """Passes every output line on, keeping the `/metrics` URL each process printed at start."""

    _LINE = re.compile(r"^metrics on (http://\S+)$")

    def __init__(self, sink: LineSink | None) -> None:
        self.urls: dict[str, str] = {}
        self._sink = sink

    def __call__(self, name: str, line: str) -> None:
        if (match := self._LINE.match(line)) is not None:
            self.urls[name] = match[1]
        if self._sink is None:
            print(f"[{name}] {line}", flush=True)  # ManagedProcess's default
        else:
            self._sink(name, line)


def _bound(process: ManagedProcess) -> str:
    """The address a ready service printed on its ready line."""
    assert process.ready_match is not None
    return process.ready_match[1]


class LocalStack(Lifecycle):
    """Starts every process of Tsunagu, each one detected ready before the next depends on it.

    Order: nats-server and the store → stream provisioning (run to completion) → the timeline
    and the ingestion services, together → the gateway.

    `mongodb_uri` points the timeline at an existing MongoDB instead of the embedded store.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        ports: StackPorts | None = None,
        channels: tuple[str, ...] = CHANNELS,
        tenant_database: str = "tsunagu",
        mongodb_uri: str | None = None,
        sink: LineSink | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.ports = ports or StackPorts()
        self.channels = channels
        self.database = tenant_database
        self._mongodb_uri = mongodb_uri
        # Every process's output passes here: the metrics URLs are read off it.
        self.metrics = MetricsUrls(sink)
        self._sink: LineSink = self.metrics
        self._env = extra_env or {}
        self._stack = AsyncExitStack()
        self.processes: dict[str, ManagedProcess] = {}
        # NATS users and passwords, generated on the first run and kept (0600) in data_dir.
        self.nats_users = LocalNatsUsers(data_dir / "nats-users")
        self.nats_url = ""
        self._nats_address = ""
        self.mongodb_uri = ""
        self.timeline_address = ""
        self.ingest_addresses: dict[str, str] = {}
        self.graphql_url = ""
        self.issuer = LocalIssuer.load_or_create(data_dir)
        self.credentials_file = data_dir / CREDENTIALS_FILE

    def _nats_env(self, prefix: str, user: str) -> dict[str, str]:
        """A service's NATS settings: the server and its own least-privileged user."""
        login = self.nats_users.login(user)
        return {
            f"{prefix}NATS_URL": self._nats_address,
            f"{prefix}NATS_USER": login.user,
            f"{prefix}NATS_PASSWORD": login.password,
        }

    def _service(self, name: str, module: str, env: dict[str, str], ready: str) -> ManagedProcess:
        process = ManagedProcess(
            name,
            [sys.executable, "-m", module],
            ready_pattern=ready,
            env={**self._env, **env, "OTEL_SERVICE_NAME": f"tsunagu-{name}"},
            sink=self._sink,
        )
        self.processes[name] = process
        return process

    async def _enter(self, process: ManagedProcess) -> None:
        await self._stack.enter_async_context(process)

    async def open(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _start(self) -> None:
        # Port 0: the servers pick a free one themselves.
        nats = NatsServer(
            self.data_dir / "nats",
            port=self.ports.nats or None,
            sink=self._sink,
            users=self.nats_users,
        )
        self.processes["nats"] = nats
        starting = [self._enter(nats)]
        store = None
        if self._mongodb_uri is None:
            store = MongoWireStore(
                self.data_dir / "store", port=self.ports.store or None, sink=self._sink
            )
            self.processes["store"] = store
            starting.append(self._enter(store))
        await asyncio.gather(*starting)
        self.mongodb_uri = store.uri if store is not None else str(self._mongodb_uri)
        # Tools and the README tour connect as the operator; services as themselves (below).
        self.nats_url = nats.url
        self._nats_address = nats.address
        # The streams have one owner: this step, run before any service needs them.
        await ManagedProcess(
            "provision",
            [sys.executable, "-m", "tsunagu.bus.provision"],
            ready_pattern=re.escape(PROVISIONED_LINE),
            env={**self._env, **self._nats_env("TSUNAGU_STREAMS_", PROVISION)},
            sink=self._sink,
        ).complete()

        # Each service reports the address it bound (port 0: one the OS chose) on its ready
        # line. The gateway is told the timeline's, so it starts once the timeline is ready.
        backends = [
            self._service(
                "timeline",
                "services.timeline",
                {
                    "TSUNAGU_TIMELINE_PORT": str(self.ports.timeline),
                    **self._nats_env("TSUNAGU_TIMELINE_", TIMELINE),
                    "TSUNAGU_TIMELINE_MONGODB_URI": self.mongodb_uri,
                    "TSUNAGU_TIMELINE_MONGODB_DATABASE": self.database,
                },
                r"timeline ready on (\S+)",
            )
        ]
        for channel in self.channels:
            backends.append(
                self._service(
                    f"ingest-{channel}",
                    "services.ingest",
                    {
                        "TSUNAGU_INGEST_CHANNEL": channel,
                        "TSUNAGU_INGEST_PORT": str(self.ports.ingest.get(channel, 0)),
                        **self._nats_env("TSUNAGU_INGEST_", ingest_user(channel)),
                    },
                    rf"ingest-{channel} ready on (\S+)",
                )
            )
        await asyncio.gather(*(self._enter(p) for p in backends))
        self.timeline_address = _bound(backends[0])
        self.ingest_addresses = {c: _bound(self.processes[f"ingest-{c}"]) for c in self.channels}
        jwks_url = await self._start_issuer()
        gateway = self._service(
            "gateway",
            "gateway",
            {
                "TSUNAGU_GATEWAY_PORT": str(self.ports.gateway),
                "TSUNAGU_GATEWAY_TIMELINE_ADDRESS": self.timeline_address,
                **self._nats_env("TSUNAGU_GATEWAY_", GATEWAY),
                # The local issuer is an IdP like any other: same validation path as production.
                "TSUNAGU_GATEWAY_AUTH_MODE": "jwt",
                "TSUNAGU_GATEWAY_JWT_ISSUER": self.issuer.issuer,
                "TSUNAGU_GATEWAY_JWT_AUDIENCE": self.issuer.audience,
                "TSUNAGU_GATEWAY_JWT_JWKS_URL": jwks_url,
            },
            r"gateway listening on (\S+)",
        )
        await self._enter(gateway)
        self.graphql_url = _bound(gateway)
        self.credentials_file = write_section(
            self.data_dir,
            "graphql",
            {
                role: f"Bearer {self.issuer.mint(tenant=DEMO_TENANT, roles=[role])}"
                for role in ROLES
            },
        )

    async def _start_issuer(self) -> str:
        """Serve the local issuer's JWKS (its key is kept in the data folder across runs)."""
        jwks = JwksServer(lambda: [self.issuer.jwk()])
        await self._stack.enter_async_context(jwks)
        return jwks.url

    async def wait_any_exit(self) -> str:
        """Return the name of the first process that exits on its own."""
        waits = {asyncio.ensure_future(p.wait()): name for name, p in self.processes.items()}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        return waits[next(iter(done))]

    async def close(self) -> None:
        # Exit stack order stops services first (they drain), then nats and the store.
        await self._stack.aclose()
