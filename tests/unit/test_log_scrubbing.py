"""Log lines never carry URL query strings (tokens, phone numbers, e-mail addresses)."""

from __future__ import annotations

import io
import logging

import pytest

from tsunagu.logs import QueryStringScrubber, scrub_query_strings


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '127.0.0.1:5000 - "WebSocket /graphql?access_token=eyJ.x.y&phone=%2B4915112345678"'
            " [accepted]",
            '127.0.0.1:5000 - "WebSocket /graphql?…" [accepted]',
        ),
        (
            # As uvicorn logs it: the raw (percent-encoded) query string.
            "GET http://127.0.0.1:8000/graphql?query=%7Bc(value:%22%2B49%20151%22)%7D failed",
            "GET http://127.0.0.1:8000/graphql?… failed",
        ),
        ("see https://idp.example/jwks?kid=1 now", "see https://idp.example/jwks?… now"),
        ("no url here: is it fine? yes", "no url here: is it fine? yes"),
    ],
)
def test_query_strings_are_replaced_and_the_rest_kept(line: str, expected: str) -> None:
    assert scrub_query_strings(line) == expected


def test_a_uvicorn_style_record_is_written_without_its_query_string() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(QueryStringScrubber())
    logger = logging.getLogger("test.uvicorn.error")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        # uvicorn's WebSocket handshake line: the path comes in as an argument.
        logger.warning(
            '%s - "WebSocket %s" [accepted]',
            "127.0.0.1:5000",
            "/graphql?access_token=secret&email=alice%40example.com",
        )
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "secret" not in written
    assert "alice" not in written
    assert '"WebSocket /graphql?…" [accepted]' in written
