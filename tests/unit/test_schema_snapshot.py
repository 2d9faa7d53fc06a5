"""The published GraphQL schema (docs/schema.graphql) is the schema the gateway serves."""

from __future__ import annotations

from pathlib import Path

from gateway.schema import build_schema
from gateway.settings import GatewaySettings

SNAPSHOT = Path(__file__).resolve().parents[2] / "docs" / "schema.graphql"


def test_docs_schema_matches_the_served_schema() -> None:
    served = str(build_schema(GatewaySettings())) + "\n"
    assert SNAPSHOT.read_text() == served, (
        "docs/schema.graphql is stale: run `make schema` and commit it"
    )
