"""The whole system as local processes: NATS, the store, ingest, timeline, insights, gateway."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tsunagu.bus.permissions import GATEWAY, INSIGHTS, PROVISION, TIMELINE, ingest_user
from tsunagu.bus.provision import DONE_LINE as PROVISIONED_LINE
from tsunagu.bus.server_config import LocalNatsUsers
from tsunagu.lifecycle import Lifecycle
from tsunagu.local.action_keys import LocalActionKeys
from tsunagu.local.credentials import CREDENTIALS_FILE, write_section
from tsunagu.local.demo import TENANT as DEMO_TENANT
from tsunagu.local.grpc_callers import LocalCallers
from tsunagu.local.issuer import ROLES, JwksServer, LocalIssuer
from tsunagu.local.processes import (
    LineSink,
    ManagedProcess,
    MongoWireStore,
    NatsServer,
)
from tsunagu.local.restarts import Backoff, keep_running
from tsunagu.local.signin import SIGNIN_PATH, LocalSignIn

CHANNELS = ("chat", "voice", "email", "sms", "social", "web")
# Under the data folder: the local key provider's file (docs/privacy.md).
KEY_FILE = "keys.json"


@dataclass(frozen=True, slots=True)
class StackPorts:
    """Ports of the local stack; 0 picks a free one."""

    gateway: int = 8000
    timeline: int = 50060
    insights: int = 50070
    ingest: dict[str, int] = field(
        default_factory=lambda: {c: 50051 + i for i, c in enumerate(CHANNELS)}
    )
    nats: int = 14222
    store: int = 27117
    issuer: int = 0

    @classmethod
    def free(cls) -> StackPorts:
        return cls(
            gateway=0, timeline=0, insights=0, ingest=dict.fromkeys(CHANNELS, 0), nats=0, store=0
        )

    def owners(self, channels: Sequence[str] = CHANNELS) -> dict[str, int]:
        """Each process's port, by the process's name (as `tsunagu.local.ports` names them)."""
        return {
            "nats": self.nats,
            "store": self.store,
            "timeline": self.timeline,
            **{f"ingest-{c}": self.ingest.get(c, 0) for c in channels},
            "insights": self.insights,
            "issuer": self.issuer,
            "gateway": self.gateway,
        }


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


async def _stop_together(processes: Sequence[ManagedProcess]) -> None:
    await asyncio.gather(*(p.stop() for p in processes))


class LocalStack(Lifecycle):
    """Starts every process of Tsunagu, each one detected ready before the next depends on it.

    Order: nats-server and the store → stream provisioning (run to completion) → the timeline
    and the ingestion services, together → the gateway. Stopping goes the other way, each
    tier's processes together: the gateway, then the services (they drain), then NATS and
    the store. A failed or cancelled start stops whatever had started.

    `mongodb_uri` points the timeline at an existing MongoDB instead of the embedded store.
    With `restarts`, a process that exits on its own is started again (same port, same
    credentials) after a back-off, and the stack keeps running meanwhile.
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
        adapter_tenants: tuple[str, ...] = (DEMO_TENANT,),
        restarts: Backoff | None = None,
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
        self._restarts = restarts
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._stack = AsyncExitStack()
        self.processes: dict[str, ManagedProcess] = {}
        # NATS users and passwords, generated on the first run and kept (0600) in data_dir.
        self.nats_users = LocalNatsUsers(data_dir / "nats-users")
        self.nats_url = ""
        self._nats_address = ""
        self.mongodb_uri = ""
        self.timeline_address = ""
        self.insights_address = ""
        self.ingest_addresses: dict[str, str] = {}
        self.graphql_url = ""
        self.issuer = LocalIssuer.load_or_create(data_dir)
        # The console's sign-in page picks a role of the demo tenant (docs/console.md).
        self.signin = LocalSignIn(self.issuer, tenant=DEMO_TENANT)
        self.signin_url = ""
        # gRPC bearer tokens (adapters of `adapter_tenants`, the gateway, tools), kept across runs.
        self.grpc_callers = LocalCallers.load_or_create(
            data_dir, channels=channels, tenants=adapter_tenants
        )
        self.action_keys = LocalActionKeys.load_or_create(data_dir)
        self.credentials_file = data_dir / CREDENTIALS_FILE
        # The tenants' key-encryption keys (tsunagu.crypto.LocalKeyFile, made on first use,
        # 0600): ingestion seals events with them, the timeline the customers' data keys.
        self.key_file = data_dir / KEY_FILE

    def _nats_env(self, prefix: str, user: str) -> dict[str, str]:
        """A service's NATS settings: the server and its own least-privileged user."""
        login = self.nats_users.login(user)
        return {
            f"{prefix}NATS_URL": self._nats_address,
            f"{prefix}NATS_USER": login.user,
            f"{prefix}NATS_PASSWORD": login.password,
        }

    def _service(
        self, name: str, module: str, env: dict[str, str], *, ready: str, port: int, port_env: str
    ) -> ManagedProcess:
        """A service process; `ready` matches its ready line, address first, then `port`."""
        process = ManagedProcess(
            name,
            [sys.executable, "-m", module],
            ready_pattern=ready,
            env={**self._env, **env, "OTEL_SERVICE_NAME": f"tsunagu-{name}"},
            sink=self._sink,
            port=port,
            # Port 0 becomes the one it bound at its first start: a restart binds it again.
            port_variable=port_env,
        )
        self.processes[name] = process
        return process

    async def _start_together(self, processes: Sequence[ManagedProcess]) -> None:
        """Start processes concurrently; the first failure stops them all and is raised."""
        # Registered first: a sibling's failure cancels the others mid-start, and whatever
        # they had started must still be stopped.
        self._stack.push_async_callback(_stop_together, processes)
        try:
            async with asyncio.TaskGroup() as group:
                for process in processes:
                    group.create_task(process.start())
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None

    async def open(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        for name in self.processes:
            self._supervise(name)

    def _supervise(self, name: str) -> None:
        if self._restarts is not None:
            self._watchers[name] = asyncio.create_task(
                keep_running(self.processes[name], self._restarts, self._sink),
                name=f"{name}-restarts",
            )

    async def _unsupervise(self, name: str) -> None:
        watcher = self._watchers.pop(name, None)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    @asynccontextmanager
    async def held_down(self, name: str) -> AsyncIterator[None]:
        """Stop one process and keep it down, unrestarted, until the block ends (fault injection).

        Then it starts again on the same port with the same data and is supervised as before.
        """
        await self._unsupervise(name)
        process = self.processes[name]
        await process.stop()
        try:
            yield
        finally:
            await process.start()
            self._supervise(name)

    async def _start(self) -> None:
        # Port 0: the servers pick a free one themselves.
        nats = NatsServer(
            self.data_dir / "nats",
            port=self.ports.nats or None,
            sink=self._sink,
            users=self.nats_users,
        )
        self.processes["nats"] = nats
        store = None
        if self._mongodb_uri is None:
            store = MongoWireStore(
                self.data_dir / "store", port=self.ports.store or None, sink=self._sink
            )
            self.processes["store"] = store
        await self._start_together([nats, *([store] if store is not None else [])])
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
                    **self._nats_env("TSUNAGU_TIMELINE_", TIMELINE),
                    "TSUNAGU_TIMELINE_MONGODB_URI": self.mongodb_uri,
                    "TSUNAGU_TIMELINE_MONGODB_DATABASE": self.database,
                    **self.grpc_callers.server_env("TSUNAGU_TIMELINE_"),
                    **self.action_keys.timeline_env(),
                    "TSUNAGU_KEY_FILE": str(self.key_file),
                },
                ready=r"timeline ready on (\S+:(?P<port>\d+))",
                port=self.ports.timeline,
                port_env="TSUNAGU_TIMELINE_PORT",
            )
        ]
        for channel in self.channels:
            backends.append(
                self._service(
                    f"ingest-{channel}",
                    "services.ingest",
                    {
                        "TSUNAGU_INGEST_CHANNEL": channel,
                        **self._nats_env("TSUNAGU_INGEST_", ingest_user(channel)),
                        **self.grpc_callers.server_env("TSUNAGU_INGEST_"),
                        "TSUNAGU_KEY_FILE": str(self.key_file),
                    },
                    ready=rf"ingest-{channel} ready on (\S+:(?P<port>\d+))",
                    port=self.ports.ingest.get(channel, 0),
                    port_env="TSUNAGU_INGEST_PORT",
                )
            )
        await self._start_together(backends)
        self.timeline_address = _bound(backends[0])
        self.ingest_addresses = {c: _bound(self.processes[f"ingest-{c}"]) for c in self.channels}
        write_section(
            self.data_dir, "adapters", self.grpc_callers.adapters_section(self.ingest_addresses)
        )
        # Insights follows the timeline's outcomes and reads back from its API; the gateway
        # is told its address, so it starts once insights is ready.
        insights = self._service(
            "insights",
            "services.insights",
            {
                **self._nats_env("TSUNAGU_INSIGHTS_", INSIGHTS),
                "TSUNAGU_INSIGHTS_MONGODB_URI": self.mongodb_uri,
                "TSUNAGU_INSIGHTS_MONGODB_DATABASE": f"{self.database}_insights",
                "TSUNAGU_INSIGHTS_TIMELINE_ADDRESS": self.timeline_address,
                "TSUNAGU_INSIGHTS_TIMELINE_TOKEN": self.grpc_callers.insights,
                **self.grpc_callers.server_env("TSUNAGU_INSIGHTS_"),
            },
            ready=r"insights ready on (\S+:(?P<port>\d+))",
            port=self.ports.insights,
            port_env="TSUNAGU_INSIGHTS_PORT",
        )
        await self._start_together([insights])
        self.insights_address = _bound(insights)
        jwks_url = await self._start_issuer()
        gateway = self._service(
            "gateway",
            "gateway",
            {
                "TSUNAGU_GATEWAY_TIMELINE_ADDRESS": self.timeline_address,
                "TSUNAGU_GATEWAY_TIMELINE_TOKEN": self.grpc_callers.gateway,
                "TSUNAGU_GATEWAY_INSIGHTS_ADDRESS": self.insights_address,
                "TSUNAGU_GATEWAY_INSIGHTS_TOKEN": self.grpc_callers.gateway,
                **self._nats_env("TSUNAGU_GATEWAY_", GATEWAY),
                # The local issuer is an IdP like any other: same validation path as production.
                "TSUNAGU_GATEWAY_AUTH_MODE": "jwt",
                "TSUNAGU_GATEWAY_JWT_ISSUER": self.issuer.issuer,
                "TSUNAGU_GATEWAY_JWT_AUDIENCE": self.issuer.audience,
                "TSUNAGU_GATEWAY_JWT_JWKS_URL": jwks_url,
                "TSUNAGU_GATEWAY_CONSOLE_LOCAL_SIGNIN_URL": self.signin_url,
                **self.action_keys.gateway_env(),
            },
            ready=r"gateway listening on (\S+:(?P<port>\d+)\S*)",
            port=self.ports.gateway,
            port_env="TSUNAGU_GATEWAY_PORT",
        )
        await self._start_together([gateway])
        self.graphql_url = _bound(gateway)
        self.signin.allow_gateway(self.graphql_url)
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
        jwks = JwksServer(
            lambda: [self.issuer.jwk()], port=self.ports.issuer, routes=self.signin.routes()
        )
        await self._stack.enter_async_context(jwks)
        self.signin_url = f"{jwks.base_url}{SIGNIN_PATH}"
        return jwks.url

    async def close(self) -> None:
        # No restarts once stopping begins.
        for name in list(self._watchers):
            await self._unsupervise(name)
        # Exit stack order stops services first (they drain), then nats and the store.
        await self._stack.aclose()
