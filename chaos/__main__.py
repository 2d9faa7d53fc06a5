"""`python -m chaos` (`make chaos`): every fault under load, a table of findings, an exit code."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from chaos import faults
from chaos.harness import Options, run_faults
from chaos.outcome import table

_LOG = "chaos-processes.log"


def _parse(argv: list[str]) -> argparse.Namespace:
    default = Options()
    parser = argparse.ArgumentParser(
        prog="python -m chaos",
        description="Kill and restart each process of the local stack under a steady load; "
        "check that every acknowledged event is stored once and pushed; print a table.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--short",
        action="store_true",
        help="only the faults `make test` runs: kill -9 of the timeline, one ingest and "
        "NATS; the store down 10 s",
    )
    parser.add_argument("--rate", type=float, default=default.rate, help="Submits per second")
    parser.add_argument(
        "--outage-seconds", type=float, default=120.0, help="how long the store is held down"
    )
    parser.add_argument(
        "--events",
        type=int,
        default=default.events,
        help="events acknowledged before each fault, and again after the process is back",
    )
    parser.add_argument(
        "--only",
        metavar="TEXT",
        help='only the faults whose name contains TEXT, e.g. "store" or "kill -9 nats"',
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the stack's data and the processes' log in this folder "
        "(None: a temporary one, removed afterwards)",
    )
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace, data_dir: Path, log: TextIO) -> int:
    options = Options(rate=args.rate, events=args.events)
    chosen = faults.short() if args.short else faults.full(args.outage_seconds)
    chosen = [f for f in chosen if args.only is None or args.only in f.label]
    if not chosen:
        print(f"chaos: no fault's name contains {args.only!r}", file=sys.stderr)
        return 2
    outcomes = await run_faults(
        chosen,
        options,
        data_dir,
        sink=lambda name, line: print(f"[{name}] {line}", file=log, flush=True),
        say=lambda line: print(line, flush=True),
    )
    print(table(outcomes))
    return 1 if any(o.failed for o in outcomes) else 0


def main(argv: list[str]) -> int:
    args = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="tsunagu-chaos-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        with (data_dir / _LOG).open("w", encoding="utf-8") as log:
            print(f"chaos: processes log to {data_dir / _LOG}", flush=True)
            try:
                return asyncio.run(_main(args, data_dir, log))
            except KeyboardInterrupt:
                print("chaos: interrupted; the stack is stopped", file=sys.stderr)
                return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
