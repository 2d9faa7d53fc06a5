"""Selections of every field of a type, from the schema's introspection (masking tests)."""

from __future__ import annotations

import json
from typing import Any

INTROSPECTION = """
{ __schema { types { name kind possibleTypes { name }
  fields { name args { name defaultValue type { kind } } type { ...Ref } } } } }
fragment Ref on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
"""

# Page sizes small enough to stay within the gateway's cost budget, large enough for a test.
_PAGE = 5


class SchemaWalk:
    """Every field of every type reachable from a type, cycles cut where a type repeats."""

    def __init__(
        self, introspection: dict[str, Any], *, skip: frozenset[str] = frozenset()
    ) -> None:
        self._types = {type_["name"]: type_ for type_ in introspection["__schema"]["types"]}
        # Fields (``Type.field``) left out: a role's refused field ends a subscription.
        self._skip = skip

    def fields(self, type_name: str) -> list[str]:
        """The names of the fields of ``type_name`` that can be selected without arguments."""
        return [field["name"] for field in self._selectable(type_name)]

    def selection(self, type_name: str, *, only: str | None = None) -> str:
        """A selection set of every field of ``type_name`` (or of its field ``only``)."""
        return self._selection(type_name, (type_name,), only=only)

    def _selectable(self, type_name: str) -> list[dict[str, Any]]:
        fields = self._types[type_name]["fields"] or []
        return [
            field
            for field in fields
            if f"{type_name}.{field['name']}" not in self._skip
            and all(
                arg["defaultValue"] is not None
                or arg["type"]["kind"] != "NON_NULL"
                or arg["name"] == "first"
                for arg in field["args"]
            )
        ]

    def _selection(
        self,
        type_name: str,
        path: tuple[str, ...],
        *,
        only: str | None = None,
        alias: str = "",
        conflicting: frozenset[str] = frozenset(),
    ) -> str:
        parts = []
        for field in self._selectable(type_name):
            if only is not None and field["name"] != only:
                continue
            # Union members can share a field name with different types: alias them apart.
            prefix = f"{alias}_{field['name']}: " if field["name"] in conflicting else ""
            named = _named(field["type"])
            arguments = (
                f"(first: {_PAGE})" if any(a["name"] == "first" for a in field["args"]) else ""
            )
            kind = self._types[named]["kind"]
            if kind in {"SCALAR", "ENUM"}:
                parts.append(prefix + field["name"] + arguments)
            elif kind == "OBJECT" and named not in path:
                inner = self._selection(named, (*path, named))
                if inner:
                    parts.append(f"{prefix}{field['name']}{arguments} {{ {inner} }}")
            elif kind in {"UNION", "INTERFACE"}:
                possible = [
                    member["name"]
                    for member in self._types[named]["possibleTypes"]
                    if member["name"] not in path
                ]
                clashes = self._clashes(possible)
                branches = [
                    f"... on {member} "
                    f"{{ {self._selection(member, path, alias=member, conflicting=clashes)} }}"
                    for member in possible
                ]
                parts.append(f"{prefix}{field['name']} {{ __typename {' '.join(branches)} }}")
        return " ".join(parts)

    def _clashes(self, members: list[str]) -> frozenset[str]:
        """Field names that union members declare with different types."""
        types: dict[str, set[str]] = {}
        for member in members:
            for field in self._selectable(member):
                types.setdefault(field["name"], set()).add(json.dumps(field["type"]))
        return frozenset(name for name, declared in types.items() if len(declared) > 1)


def _named(type_ref: dict[str, Any]) -> str:
    while type_ref["name"] is None:
        type_ref = type_ref["ofType"]
    name: str = type_ref["name"]
    return name


def strings_in(value: Any) -> list[str]:
    """Every string anywhere in a JSON-like value (keys included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (key, *strings_in(item))]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []
