"""Search the files a server keeps on disk for plaintext (what a stolen disk would reveal)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

import pytest


def hits(root: Path, needles: Iterable[str]) -> dict[str, list[Path]]:
    """Every file under `root` holding each needle's UTF-8 bytes (needles without hits left out)."""
    wanted = {needle: needle.encode() for needle in needles}
    found: dict[str, list[Path]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            data = path.read_bytes()
        except OSError:
            continue  # removed while walking (a compacted block)
        for needle, raw in wanted.items():
            if raw in data:
                found.setdefault(needle, []).append(path)
    return found


async def wait_until_on_disk(root: Path, canary: str, *, seconds: float = 30.0) -> None:
    """Wait until `canary` (written after what is searched for) is in a file under `root`.

    Servers write asynchronously; once a later plaintext canary is on disk, everything
    stored before it is too, so a search that then finds nothing is not merely early.
    """
    deadline = asyncio.get_running_loop().time() + seconds
    while not hits(root, [canary]):
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"canary never reached the disk under {root}")
        await asyncio.sleep(0.2)
