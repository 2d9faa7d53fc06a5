"""`python -m services.timeline.deadletters list|replay`: inspect and replay dead letters.

A message lands in the dead-letter stream when the timeline could not record it (the error is
in its headers). Once the cause is fixed (a bug deployed, a missing customer created, ...),
`replay` publishes each one back to its original subject and removes it from the dead-letter
stream after the interactions stream has stored it. The timeline records by event id, so a
replay never duplicates anything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import SecretStr

from tsunagu.bus import headers
from tsunagu.bus.connection import NatsTls, connect, nats_login
from tsunagu.bus.subjects import DEAD_LETTER_STREAM, INTERACTIONS_STREAM
from tsunagu.contracts import is_tenant_name

PASSWORD_VARIABLE = "TSUNAGU_NATS_PASSWORD"  # noqa: S105 - a variable name, not a password
TLS_CA_VARIABLE = "TSUNAGU_NATS_TLS_CA_FILE"  # the services' setting of the same name
# The signed actor travels too: a replayed agent action is verified like the original.
_CARRIED_HEADERS = {
    headers.SCHEMA,
    headers.SIGNED_ACTOR,
    "traceparent",
    "tracestate",
    headers.SEALED_KEY,
}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    sequence: int
    subject: str
    original_subject: str
    error: str
    deliveries: str
    data: bytes
    headers: dict[str, str]


async def dead_letters(
    js: JetStreamContext, *, tenant: str | None = None, limit: int | None = None
) -> AsyncIterator[DeadLetter]:
    """Dead letters in stream order, optionally of one tenant."""
    info = await js.stream_info(DEAD_LETTER_STREAM)
    prefix = f"dlq.interactions.{tenant}." if tenant else "dlq.interactions."
    found = 0
    # A stream that never held a message reports first_seq 0, which no message can have.
    for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
        if limit is not None and found >= limit:
            return
        try:
            msg = await js.get_msg(DEAD_LETTER_STREAM, seq)
        except NotFoundError:
            continue  # deleted (replayed) or expired
        subject = msg.subject or ""
        if not subject.startswith(prefix):
            continue
        found += 1
        hdrs = dict(msg.headers or {})
        yield DeadLetter(
            sequence=seq,
            subject=subject,
            original_subject=subject.removeprefix("dlq."),
            error=hdrs.get(headers.DEAD_LETTER_ERROR, ""),
            deliveries=hdrs.get(headers.DEAD_LETTER_DELIVERIES, ""),
            data=msg.data or b"",
            headers=hdrs,
        )


async def replay(js: JetStreamContext, letter: DeadLetter) -> None:
    """Publish a dead letter back to its subject, then delete it from the dead-letter stream."""
    # Keep the trace and schema; the dead-letter bookkeeping stays behind.
    kept = {k: v for k, v in letter.headers.items() if k in _CARRIED_HEADERS}
    # A fresh message id: the original one may still be inside the duplicate window, where
    # the stream would drop the copy. The timeline de-duplicates by event id regardless.
    tenant = letter.original_subject.split(".")[1]
    kept[headers.MSG_ID] = headers.message_id(
        tenant, f"replay-{DEAD_LETTER_STREAM}-{letter.sequence}"
    )
    await js.publish(letter.original_subject, letter.data, stream=INTERACTIONS_STREAM, headers=kept)
    await js.delete_msg(DEAD_LETTER_STREAM, letter.sequence)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.timeline.deadletters")
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("--nats-url", default="nats://127.0.0.1:14222")
    # Reading and deleting dead letters is the operator's: no service user may. The password
    # comes from the environment, never the command line (shell history, `ps`).
    parser.add_argument(
        "--nats-user", default="", help=f"NATS user; its password in ${PASSWORD_VARIABLE}"
    )
    parser.add_argument(
        "--nats-tls-ca",
        type=Path,
        default=os.environ.get(TLS_CA_VARIABLE) or None,
        help=f"the CA of a NATS that requires TLS (default: ${TLS_CA_VARIABLE})",
    )
    parser.add_argument("--tenant", help="only this tenant's dead letters")
    parser.add_argument("--limit", type=int, help="at most this many")
    args = parser.parse_args(argv)
    if args.tenant is not None and not is_tenant_name(args.tenant):
        parser.error("--tenant: lower-case letters, digits, '-' or '_'")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit: at least 1")
    return args


async def _main(args: argparse.Namespace) -> int:
    password = SecretStr(os.environ.get(PASSWORD_VARIABLE, ""))
    nc = await connect(
        args.nats_url,
        name="tsunagu-deadletters",
        login=nats_login(args.nats_user, password),
        tls=NatsTls(ca_file=args.nats_tls_ca) if args.nats_tls_ca else None,
    )
    try:
        js = nc.jetstream()
        count = 0
        async for letter in dead_letters(js, tenant=args.tenant, limit=args.limit):
            count += 1
            if args.command == "replay":
                await replay(js, letter)
                print(f"replayed #{letter.sequence} to {letter.original_subject}")
            else:
                print(
                    f"#{letter.sequence} {letter.original_subject} "
                    f"(deliveries {letter.deliveries or '?'}): {letter.error}"
                )
        verb = "replayed" if args.command == "replay" else "dead letters"
        print(f"{count} {verb}")
        return 0
    finally:
        await nc.drain()


def main(argv: list[str] | None = None) -> None:
    args = _parse(sys.argv[1:] if argv is None else argv)
    raise SystemExit(asyncio.run(_main(args)))


if __name__ == "__main__":
    main()
