"""`python -m tsunagu.local run`: the whole system on this machine, with demo data."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tsunagu.grpc_callers import CREDENTIALS, issue_credential
from tsunagu.lifecycle import CannotStart
from tsunagu.local import demo_contacts
from tsunagu.local.demo import (
    SCREEN_POP_QUERY,
    TENANT,
    adapter_usage,
    find_demo_customer,
    graphiql_headers,
    mutation_example,
    submit_demo,
    subscription_example,
)
from tsunagu.local.issuer import DEFAULT_TTL_SECONDS, LocalIssuer
from tsunagu.local.ports import check_ports
from tsunagu.local.processes import ProcessFailedError
from tsunagu.local.restarts import Backoff
from tsunagu.local.signin import console_url
from tsunagu.local.stack import CHANNELS, LocalStack, StackPorts
from tsunagu.local.traces import add_command, print_trace, traces_env
from tsunagu.runtime import EXIT_CRASHED, run

log = logging.getLogger("tsunagu.local")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tsunagu.local", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "run",
        help="start everything, submit the demo, serve until Ctrl-C",
        description="Start everything, submit the demo, serve until Ctrl-C; a process that "
        "exits is restarted with back-off. A port of 0 means a free one.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = StackPorts()
    up.add_argument("--data-dir", type=Path, default=Path(".tsunagu"), help="local data")
    up.add_argument(
        "--gateway-port", type=int, default=defaults.gateway, help="GraphQL (HTTP, WebSocket)"
    )
    up.add_argument("--timeline-port", type=int, default=defaults.timeline, help="timeline gRPC")
    up.add_argument("--insights-port", type=int, default=defaults.insights, help="insights gRPC")
    up.add_argument(
        "--ingest-base-port",
        type=int,
        default=defaults.ingest[CHANNELS[0]],
        help=f"ingestion gRPC: {', '.join(CHANNELS)} on consecutive ports",
    )
    up.add_argument("--nats-port", type=int, default=defaults.nats, help="nats-server clients")
    up.add_argument("--store-port", type=int, default=defaults.store, help="the embedded store")
    up.add_argument(
        "--issuer-port", type=int, default=defaults.issuer, help="the local issuer's JWKS"
    )
    up.add_argument(
        "--mongodb-uri", default=None, help="use this MongoDB instead of the embedded store"
    )
    up.add_argument("--no-demo", action="store_true", help="do not submit the demo scenario")
    mint = sub.add_parser("token", help="mint a GraphQL bearer token from the local issuer")
    mint.add_argument("--data-dir", type=Path, default=Path(".tsunagu"))
    mint.add_argument("--tenant", default=TENANT)
    mint.add_argument("--roles", default="agent", help="comma-separated, e.g. agent,supervisor")
    mint.add_argument("--subject", default=None, help="the sub claim (default: from the roles)")
    mint.add_argument("--name", default=None, help="the display name on the timeline")
    mint.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="lifetime in seconds")
    adapter = sub.add_parser(
        "adapter-token",
        help="issue a gRPC adapter token: prints the token and the credential servers need",
    )
    adapter.add_argument("--tenant", required=True, help="comma-separated for several")
    adapter.add_argument("--channel", required=True, choices=CHANNELS)
    adapter.add_argument("--name", default=None, help="the caller's name (default: tenant-channel)")
    add_command(sub)  # trace <event_id>
    return parser.parse_args(argv)


def _adapter_token(args: argparse.Namespace) -> None:
    tenants = [tenant.strip() for tenant in args.tenant.split(",") if tenant.strip()]
    name = args.name or f"{'-'.join(tenants)}-{args.channel}"
    credential, token = issue_credential(
        name, kind="adapter", tenants=tenants, channel=args.channel
    )
    # The token goes to the adapter only; servers get the credential, with its digest.
    print(f"token (give it to the adapter, keep it secret): {token}")
    print("credential (add it to the callers list of the ingest and timeline servers):")
    print(CREDENTIALS.dump_json([credential], indent=2).decode())


def _token(args: argparse.Namespace) -> None:
    roles = [role.strip() for role in args.roles.split(",") if role.strip()]
    issuer = LocalIssuer.load_or_create(args.data_dir)
    print(
        issuer.mint(
            tenant=args.tenant,
            roles=roles,
            subject=args.subject,
            name=args.name,
            ttl_seconds=args.ttl,
        )
    )


def _metrics_lines(stack: LocalStack) -> str:
    """Each process's Prometheus endpoint, in start order (`curl` them while this runs)."""
    urls = stack.metrics.urls
    named = [(name, urls[name]) for name in stack.processes if name in urls]
    return "  metrics:\n" + "".join(f"    {name:<14} {url}\n" for name, url in named)


def _ports(args: argparse.Namespace) -> StackPorts:
    base = args.ingest_base_port
    return StackPorts(
        gateway=args.gateway_port,
        timeline=args.timeline_port,
        insights=args.insights_port,
        # Port 0 asks for free ports, for every channel.
        ingest={c: base + i if base else 0 for i, c in enumerate(CHANNELS)},
        nats=args.nats_port,
        store=args.store_port,
        issuer=args.issuer_port,
    )


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGTERM and SIGINT cancel this task, during start-up too: what started is then stopped.

    A second signal while stopping is refused: interrupting the stop would leave children.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:
        if task.cancelling():
            print("already stopping; it ends once every process has", flush=True)
            return
        print("stopping...", flush=True)
        task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _run(args: argparse.Namespace) -> None:
    ports = _ports(args)
    owners = ports.owners()
    if args.mongodb_uri is not None:
        del owners["store"]
    check_ports(owners)  # before anything starts: nothing to stop, one line to print
    try:
        with _stopped_by_signals():
            await _serve(args, ports)
    except asyncio.CancelledError:
        # Our own signal handler cancelled us; everything has been stopped.
        task = asyncio.current_task()
        assert task is not None
        task.uncancel()
    print("stopped", flush=True)


async def _serve(args: argparse.Namespace, ports: StackPorts) -> None:
    started = time.monotonic()
    print(
        "starting Tsunagu: nats-server, store, streams, timeline, 6 ingestion services, gateway",
        flush=True,
    )
    async with LocalStack(
        args.data_dir,
        ports=ports,
        mongodb_uri=args.mongodb_uri,
        restarts=Backoff(),
        extra_env=traces_env(args.data_dir),  # each process keeps its spans for `trace`
    ) as stack:
        print(f"all services ready in {time.monotonic() - started:.1f}s", flush=True)
        if not args.no_demo:
            tokens = {c: stack.grpc_callers.adapter(c) for c in stack.channels}
            results = await submit_demo(stack.ingest_addresses, tokens)
            accepted = sum(r.status == r.STATUS_ACCEPTED for r in results)
            print(
                f"demo: {len(results)} interactions submitted "
                f"({accepted} accepted, {len(results) - accepted} already stored)",
                flush=True,
            )
            summary = await demo_contacts.populate(
                ingest_addresses=stack.ingest_addresses,
                tokens=tokens,
                timeline_address=stack.timeline_address,
                timeline_token=stack.grpc_callers.tools,
                graphql_url=stack.graphql_url,
                bearer=lambda agent: (
                    "Bearer "
                    + stack.issuer.mint(
                        tenant=TENANT, roles=["agent"], subject=agent.id, name=agent.name
                    )
                ),
            )
            print(summary, flush=True)
        ingest = ", ".join(f"{c}={a}" for c, a in stack.ingest_addresses.items())
        customer_id = None
        if not args.no_demo:
            customer_id = await find_demo_customer(
                stack.timeline_address, token=stack.grpc_callers.tools
            )
        print(
            "\n"
            f"  Agent console (sign in as a demo role): {console_url(stack.graphql_url)}\n"
            f"  GraphQL (GraphiQL in the browser): {stack.graphql_url}\n"
            + graphiql_headers(stack.credentials_file)
            + "\n"
            f"  ingestion gRPC: {ingest}\n"
            f"  timeline gRPC:  {stack.timeline_address}\n\n"
            + adapter_usage(stack.credentials_file)
            + _metrics_lines(stack)
            + "\n  Paste this query into GraphiQL to see the demo customer's whole history:\n\n"
            + _indented(SCREEN_POP_QUERY)
            + _live_examples(customer_id or "<id from the query above>")
            + "\n\n  A process that exits is restarted. Ctrl-C stops everything.\n",
            flush=True,
        )
        await asyncio.Event().wait()  # serve until a signal cancels this


def _indented(document: str) -> str:
    return "\n".join("    " + line for line in document.splitlines())


def _live_examples(customer_id: str) -> str:
    return (
        "\n\n  In a second GraphiQL tab, watch her timeline live (graphql-transport-ws):\n\n"
        + _indented(subscription_example(customer_id))
        + "\n\n  ...then act as the chat agent and hand her off to the phone; the first tab"
        "\n  shows the handoff the moment the timeline stores it:\n\n"
        + _indented(mutation_example(customer_id))
    )


def main(argv: list[str] | None = None) -> None:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.command == "token":
        _token(args)
        return
    if args.command == "adapter-token":
        _adapter_token(args)
        return
    if args.command == "trace":
        print_trace(args)
        return
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(lambda: _run(args))
    except (CannotStart, ProcessFailedError) as failed:
        # The message says it all (a port clash is one line); a traceback would bury it.
        print(failed, file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CRASHED) from None


if __name__ == "__main__":
    main()
