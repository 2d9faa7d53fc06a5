"""`python -m bench.profile`: py-spy samples of the timeline and the store under the ingest load.

py-spy cannot attach to a running process here (no ptrace of a process it did not start), so
both are restarted as children of `py-spy record` (same ports, same data) before the load of
`bench.ingest` runs; then they are stopped, py-spy writes its collapsed stacks
(`<name>.txt`, one `frame;frame;… count` line per stack) and this prints where the samples
fall: the leaf functions (self time) and the project's, the drivers' and the store's
functions on the stack (inclusive). Samples are of running code only: an asyncio process
waiting for replies shows as idle in the event loop, not in the coroutine that waits, so
the time the timeline waited on the store comes from its command listener instead (the
seconds of its store round trips). The findings go to docs/scaling.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from bench.ingest import contact_centre_mix, end_to_end
from bench.stack import bench_stack
from tsunagu.local.processes import ManagedProcess, venv_bin
from tsunagu.local.stack import LocalStack

PROFILED = ("store", "timeline")
# A frame as py-spy's raw format writes it: `function (path/to/file.py:line)`.
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")
# Leaves that are waits: py-spy's idle detection misses them on this machine (a thread-pool
# worker blocked on its queue, the event loop in select, a sleeping thread).
_WAITS = (
    "_worker (thread.py)",
    "Runner.run (asyncio/runners.py)",
    "Thread.run (threading.py)",
    "write_periodically.<locals>.loop (services/timeline/store/command_counts.py)",
)
# Whose code a frame is: the project's, the drivers', the store's, the interpreter's.
_OWNERS = ("services/", "tsunagu/", "pymongo/", "bson/", "nx_27017/", "neosqlite/", "asyncio/")


async def _under_py_spy(process: ManagedProcess, output: Path, rate: int) -> None:
    await process.stop()
    process.argv = [
        venv_bin("py-spy"),
        *("record", "--rate", str(rate), "--format", "raw"),
        *("--output", str(output), "--"),
        *process.argv,
    ]
    await process.start()


async def _stop_profiled(process: ManagedProcess) -> None:
    """Stop the profiled child first: py-spy writes its samples once its child exits."""
    for child in psutil.Process(process.pid).children():
        child.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), 120)


def _where(frame: str) -> tuple[str, str]:
    """(function, short file) of a raw frame."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    path = match["file"]
    for owner in _OWNERS:
        if owner in path:
            path = owner + path.split(owner, 1)[1]
            break
    else:
        path = Path(path).name
    return match["function"], path


def summarize(collapsed: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive shares of the samples in a py-spy raw file."""
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = waits = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_where(f) for f in stack.split(";") if f]
        function, path = frames[-1]
        if f"{function} ({path})" in _WAITS:
            waits += count
            continue
        total += count
        leaves[f"{function} ({path})"] += count
        for name in {f"{fn} ({p})" for fn, p in frames if p.startswith(_OWNERS[:6])}:
            inclusive[name] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        # Entry points (on nearly every stack) say nothing about where the time goes.
        telling = Counter({name: n for name, n in counter.items() if n < 0.9 * total})
        return [(name, round(100 * n / total, 1)) for name, n in telling.most_common(top)]

    return {
        "samples_busy": total,
        "samples_waiting": waits,
        "self_pct": shares(leaves),
        "inclusive_pct": shares(inclusive),
    }


async def profile(
    stack: LocalStack, out: Path, *, events: int, customers: int, rate: int
) -> dict[str, Any]:
    """The ingest load on `stack` with the store and the timeline under py-spy."""
    for name in PROFILED:
        await _under_py_spy(stack.processes[name], out / f"{name}.txt", rate)
    run = await end_to_end(
        stack, contact_centre_mix(events, customers), batch=256, window=events // 5, limit_s=3600
    )
    for name in reversed(PROFILED):  # the timeline first: it needs the store to drain
        await _stop_profiled(stack.processes[name])
    return {
        "ingest": run,
        "profiles": {name: summarize(out / f"{name}.txt") for name in PROFILED},
    }


def _print(result: dict[str, Any]) -> None:
    run = result["ingest"]
    waited = sum(run["store_command_seconds"].values())
    print(
        f"{run['events']:,} events over {run['customers']:,} customers: "
        f"{run['stored_per_s']:.0f}/s end to end in {run['stored_s']:.1f} s; the timeline "
        f"waited {waited:.1f} s on store round trips "
        f"({run['store_commands_per_event']:.2f} commands per event)"
    )
    for command, seconds in list(run["store_command_seconds"].items())[:12]:
        count = run["store_commands"].get(command, 0)
        print(f"  {command:28} {count / run['events']:6.2f} per event, {seconds:7.1f} s waited")
    for name, profile_of in result["profiles"].items():
        print(
            f"\n{name}: {profile_of['samples_busy']:,} samples running code (shares below), "
            f"{profile_of['samples_waiting']:,} waiting"
        )
        for title, key in (("self", "self_pct"), ("inclusive", "inclusive_pct")):
            print(f"  {title}:")
            for function, pct in profile_of[key]:
                print(f"    {pct:5.1f}%  {function}")


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    args.out.mkdir(parents=True, exist_ok=True)
    async with bench_stack() as stack:
        if "store" not in stack.processes:
            raise SystemExit("profiling needs the embedded store (unset MONGODB_URI)")
        return await profile(
            stack, args.out.resolve(), events=args.events, customers=args.customers, rate=args.rate
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--events", type=int, default=6_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--rate", type=int, default=50, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=Path("bench-results/profile"))
    arguments = parser.parse_args()
    outcome = asyncio.run(_main(arguments))
    (arguments.out / "summary.json").write_text(json.dumps(outcome, indent=2))
    _print(outcome)
