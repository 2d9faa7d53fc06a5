"""An identity provider's signing keys, fetched from its JWKS URL, cached and rotated."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import jwt

_log = logging.getLogger(__name__)


class KeysUnavailable(Exception):
    """The JWKS could not be fetched or parsed, or has no key with the asked ``kid``."""


class JwksKeys:
    """The keys of one JWKS URL, as PyJWT keys by ``kid``.

    Fetched on first use and kept for ``cache_seconds``. A token signed with an unknown
    ``kid`` triggers one refetch (that is how a rotated-in key is found), at most once per
    ``min_refetch_seconds``, so a flood of forged ``kid`` values cannot hammer the IdP.
    """

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300.0,
        min_refetch_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self._cache_seconds = cache_seconds
        self._min_refetch_seconds = min_refetch_seconds
        self._timeout = timeout_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        # One fetch at a time: concurrent requests with a new kid share it.
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key with this ``kid``, refetching the JWKS when it is stale or lacks it.

        Args:
            kid: The ``kid`` from a token's header.

        Returns:
            The key.

        Raises:
            KeysUnavailable: No such key, even after a (permitted) refetch.
        """
        async with self._lock:
            now = time.monotonic()
            stale = self._fetched_at is None or now - self._fetched_at >= self._cache_seconds
            may_refetch = self._fetched_at is None or (
                now - self._fetched_at >= self._min_refetch_seconds
            )
            if stale or (kid not in self._keys and may_refetch):
                await self._fetch()
        try:
            return self._keys[kid]
        except KeyError:
            raise KeysUnavailable(f"no signing key with kid {kid!r}") from None

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as error:
            # Known keys stay usable while the IdP is unreachable; the next attempt waits
            # for min_refetch_seconds like any other.
            self._fetched_at = time.monotonic()
            _log.warning("cannot fetch the JWKS from %s: %s", self.url, type(error).__name__)
            return
        self._keys = {key.key_id: key for key in keys if key.key_id is not None}
        self._fetched_at = time.monotonic()
        _log.info("fetched %d signing keys from %s", len(self._keys), self.url)
