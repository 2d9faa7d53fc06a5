"""``.tsunagu/local-credentials.json``: the credentials a local run generated, by section."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

CREDENTIALS_FILE = "local-credentials.json"


def write_section(data_dir: Path, section: str, entries: Mapping[str, object]) -> Path:
    """Replace one section of the credentials file, keeping every other section.

    Several parts of the local stack write their own section ("graphql", "adapters"), so
    the file is merged, never overwritten. It holds secrets: owner-readable only.

    Args:
        data_dir: The local data folder.
        section: The section's key.
        entries: Its new content.

    Returns:
        The file's path.
    """
    path = data_dir / CREDENTIALS_FILE
    content: dict[str, object] = {}
    if path.exists():
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            content = loaded
    content[section] = dict(entries)
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(content, file, indent=2, sort_keys=True)
        file.write("\n")
    temporary.replace(path)  # atomic: a reader never sees half a file
    return path
