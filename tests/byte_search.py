"""Search the files a server keeps on disk for plaintext (what a stolen disk would reveal)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable
from pathlib import Path

import pytest


def encodings(needle: str) -> list[bytes]:
    """The needle's UTF-8 bytes and their base64 at each of the three alignments.

    Stores keep binary fields base64-encoded in JSON (the embedded one does): a disk
    search for the bytes alone would miss plaintext any reader decodes in one step.
    """
    raw = needle.encode()
    forms = [raw]
    for shift, skip in ((0, 0), (1, 2), (2, 3)):
        text = base64.b64encode(bytes(shift) + raw).rstrip(b"=")
        # Characters mixing bits of unknown neighbours are left off both ends.
        forms.append(text[skip:-3])
    return forms


def hits(root: Path, needles: Iterable[str]) -> dict[str, list[Path]]:
    """Every file under `root` holding a needle in UTF-8 or base64 (needles without hits
    left out)."""
    wanted = {needle: encodings(needle) for needle in needles}
    found: dict[str, list[Path]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            data = path.read_bytes()
        except OSError:
            continue  # removed while walking (a compacted block)
        for needle, forms in wanted.items():
            if any(form in data for form in forms):
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
