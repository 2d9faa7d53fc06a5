"""Key providers: who holds the tenants' key-encryption keys (a local file, or a KMS)."""

from __future__ import annotations

import base64
import fcntl
import json
import os
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tsunagu.crypto.envelope import Binding, DecryptionFailed, key_id_of, open_sealed, seal

_KEY_BYTES = 32


class UnknownKey(DecryptionFailed):
    """A wrapped key names a key-encryption key this provider does not hold (fails closed too)."""


class KeyProvider(Protocol):
    """Holds per-tenant key-encryption keys (KEKs) and wraps data keys with them.

    The interface is the shape of a KMS (AWS KMS `Encrypt`/`Decrypt` with an encryption
    context, Vault transit `encrypt`/`decrypt` with a context): the KEK never leaves the
    provider, data keys go in and out wrapped. A KMS adapter implements these three calls
    against its service; callers cache unwrapped data keys, not KEKs.
    """

    def wrap(self, tenant: str, key: bytes, binding: Binding) -> bytes:
        """Wrap a data key with the tenant's current KEK, bound to `binding`."""
        ...

    def unwrap(self, tenant: str, wrapped: bytes, binding: Binding) -> bytes:
        """Unwrap a data key (with whichever of the tenant's KEKs wrapped it).

        Raises:
            UnknownKey: The KEK it names is not held (retired, or another tenant's).
            DecryptionFailed: Tampered, or bound to something else.
        """
        ...

    def index_key(self, tenant: str) -> bytes:
        """The tenant's blind-index key (stable across KEK rotations and erasures)."""
        ...


class LocalKeyFile:
    """A `KeyProvider` backed by one key file (for `make run`, tests and single hosts).

    The file holds a random 256-bit root secret and each tenant's current KEK version;
    a tenant's KEK of version n is HKDF(root, "kek/<tenant>/<n>"), so every process
    sharing the file derives the same KEKs without coordinating their creation. Rotation
    bumps the version: new data keys are wrapped with it, old ones still unwrap until
    `rewrap`ped. Not for production: whoever reads the file reads every tenant's keys.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._root, self._versions = self._load_or_create()
        # Derivations are pure functions of the root: computed once per process.
        self._derived: dict[str, bytes] = {}

    @property
    def path(self) -> Path:
        return self._path

    def kek_id(self, tenant: str) -> str:
        """The id of the tenant's current KEK (`local/<tenant>/<version>`)."""
        return f"local/{tenant}/{self._versions.get(tenant, 1)}"

    def wrap(self, tenant: str, key: bytes, binding: Binding) -> bytes:
        kek_id = self.kek_id(tenant)
        return seal(self._kek(kek_id), kek_id, key, binding)

    def unwrap(self, tenant: str, wrapped: bytes, binding: Binding) -> bytes:
        kek_id = key_id_of(wrapped)
        owner, _, version = kek_id.removeprefix("local/").rpartition("/")
        if not kek_id.startswith("local/") or owner != tenant or not version.isdigit():
            raise UnknownKey(f"no key-encryption key {kek_id!r} for this tenant")
        return open_sealed(self._kek(kek_id), wrapped, binding)

    def index_key(self, tenant: str) -> bytes:
        return self._derive(f"index/{tenant}")

    def rotate(self, tenant: str) -> str:
        """Make a new KEK version current for `tenant` (kept in the file for all processes).

        Returns:
            The new KEK id.
        """
        with self._locked():
            _, versions = self._read()
            versions[tenant] = versions.get(tenant, 1) + 1
            self._write(self._root, versions)
        self._versions = versions
        return self.kek_id(tenant)

    def reload(self) -> None:
        """Pick up rotations made by other processes."""
        self._root, self._versions = self._load_or_create()
        self._derived.clear()

    def _kek(self, kek_id: str) -> bytes:
        return self._derive(f"kek/{kek_id.removeprefix('local/')}")

    def _derive(self, info: str) -> bytes:
        if (known := self._derived.get(info)) is not None:
            return known
        hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=info.encode())
        self._derived[info] = derived = hkdf.derive(self._root)
        return derived

    def _load_or_create(self) -> tuple[bytes, dict[str, int]]:
        if self._path.exists() and self._path.stat().st_size > 0:
            # Read as it is, without the lock: in a cluster it is a read-only Secret mount.
            return self._read()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if not self._path.exists() or self._path.stat().st_size == 0:
                self._write(os.urandom(_KEY_BYTES), {})
            return self._read()

    def _read(self) -> tuple[bytes, dict[str, int]]:
        data = json.loads(self._path.read_text())
        root = base64.b64decode(data["root"])
        if len(root) != _KEY_BYTES:
            raise ValueError(f"{self._path}: the root secret is not {_KEY_BYTES} bytes")
        return root, {str(t): int(v) for t, v in data.get("versions", {}).items()}

    def _write(self, root: bytes, versions: dict[str, int]) -> None:
        # Written beside and renamed, so a reader never sees half a file; 0600 because it
        # unlocks every tenant's data.
        temp = self._path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"root": base64.b64encode(root).decode(), "versions": versions}, out)
        temp.replace(self._path)

    def _locked(self) -> _FileLock:
        return _FileLock(self._path.with_suffix(".lock"))


class _FileLock:
    """An exclusive lock between the processes sharing a key file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
