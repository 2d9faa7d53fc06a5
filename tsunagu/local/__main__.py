"""`python -m tsunagu.local run`: the whole system on this machine, with demo data."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

from tsunagu.local.demo import (
    SCREEN_POP_QUERY,
    TENANT,
    find_demo_customer,
    graphiql_headers,
    mutation_example,
    submit_demo,
    subscription_example,
)
from tsunagu.local.issuer import DEFAULT_TTL_SECONDS, LocalIssuer
from tsunagu.local.stack import LocalStack, StackPorts
from tsunagu.local.traces import add_command, print_trace, traces_env
from tsunagu.runtime import run, wait_for_stop_signal

log = logging.getLogger("tsunagu.local")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tsunagu.local", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("run", help="start everything, submit the demo, serve until Ctrl-C")
    up.add_argument("--data-dir", type=Path, default=Path(".tsunagu"))
    up.add_argument("--gateway-port", type=int, default=8000)
    up.add_argument("--timeline-port", type=int, default=50060)
    up.add_argument(
        "--ingest-base-port",
        type=int,
        default=50051,
        help="chat, voice, email, sms, social, web on consecutive ports",
    )
    up.add_argument("--nats-port", type=int, default=14222)
    up.add_argument("--store-port", type=int, default=27117)
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
    add_command(sub)  # trace <event_id>
    return parser.parse_args(argv)


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


async def _run(args: argparse.Namespace) -> None:
    channels = ("chat", "voice", "email", "sms", "social", "web")
    ports = StackPorts(
        gateway=args.gateway_port,
        timeline=args.timeline_port,
        ingest={c: args.ingest_base_port + i for i, c in enumerate(channels)},
        nats=args.nats_port,
        store=args.store_port,
    )
    started = time.monotonic()
    print(
        "starting Tsunagu: nats-server, store, streams, timeline, 6 ingestion services, gateway",
        flush=True,
    )
    async with LocalStack(
        args.data_dir,
        ports=ports,
        mongodb_uri=args.mongodb_uri,
        extra_env=traces_env(args.data_dir),  # each process keeps its spans for `trace`
    ) as stack:
        print(f"all services ready in {time.monotonic() - started:.1f}s", flush=True)
        if not args.no_demo:
            results = await submit_demo(stack.ingest_addresses)
            accepted = sum(r.status == r.STATUS_ACCEPTED for r in results)
            print(
                f"demo: {len(results)} interactions submitted "
                f"({accepted} accepted, {len(results) - accepted} already stored)",
                flush=True,
            )
        ingest = ", ".join(f"{c}={a}" for c, a in stack.ingest_addresses.items())
        customer_id = None
        if not args.no_demo:
            customer_id = await find_demo_customer(stack.timeline_address)
        print(
            "\n"
            f"  GraphQL (GraphiQL in the browser): {stack.graphql_url}\n"
            + graphiql_headers(stack.credentials_file)
            + "\n"
            f"  ingestion gRPC: {ingest}\n"
            f"  timeline gRPC:  {stack.timeline_address}\n"
            "\n  Paste this query into GraphiQL to see the demo customer's whole history:\n\n"
            + _indented(SCREEN_POP_QUERY)
            + _live_examples(customer_id or "<id from the query above>")
            + "\n\n  Ctrl-C stops everything.\n",
            flush=True,
        )
        exited = asyncio.ensure_future(stack.wait_any_exit())
        await wait_for_stop_signal(exited)
        if exited.done():
            print(f"{exited.result()} exited unexpectedly; stopping everything", file=sys.stderr)
        exited.cancel()
        print("stopping...", flush=True)
    print("stopped", flush=True)


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
    if args.command == "trace":
        print_trace(args)
        return
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(lambda: _run(args))


if __name__ == "__main__":
    main()
