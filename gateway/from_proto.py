"""GraphQL object types filled from the proto messages they mirror, as the descriptors say.

A type read this way names its fields after the message's: each field is read from the
proto field (or ``oneof``) of the same name and converted by what the descriptor says it is
and what the GraphQL annotation asks for. Proto3 has no "unset" for scalars, so an optional
GraphQL scalar reads the zero value (``""``, ``0``) as null. Plans are built once per type;
a GraphQL field without a proto counterpart fails when the plan is built (at import for the
types built with ``oneof_reader``), not when a client first meets it.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from datetime import UTC
from functools import cache
from typing import Annotated, Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

import strawberry
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.enums import PROTO_ENUMS

_T = TypeVar("_T")
_Read = Callable[[Message], object]
_Convert = Callable[[Any], object]
_TIMESTAMP = "google.protobuf.Timestamp"


def read(message: Message, cls: type[_T]) -> _T:
    """Fill the GraphQL type ``cls`` from ``message``, field by field.

    Raises:
        TypeError: ``cls`` has a field the message does not have, or one whose type does
            not fit (raised the first time ``cls`` is read from this message type).
    """
    plan = _plan(cast("type", cls), message.DESCRIPTOR)
    return cls(**{name: reader(message) for name, reader in plan})


def read_field(message: Message, field: str, cls: type[_T]) -> _T | None:
    """Fill ``cls`` from the message field ``field`` of ``message``; ``None`` when unset."""
    return read(getattr(message, field), cls) if message.HasField(field) else None


def oneof_reader(descriptor: Descriptor, oneof: str, union: object) -> _Read:
    """A reader of the ``oneof`` of a message into the member of ``union`` named like its message.

    Every message of the ``oneof`` must have a union member of the same name, which is
    checked now: a proto member without a GraphQL type fails at start.

    Raises:
        TypeError: A message of the ``oneof`` has no member of ``union``, or does not fit it.
    """
    members = _members(union)
    for field in descriptor.oneofs_by_name[oneof].fields:
        message_type = _message_type(field)
        cls = members.get(message_type.name)
        if cls is None:
            raise TypeError(f"{descriptor.name}.{oneof}: no GraphQL type {message_type.name}")
        _plan(cls, message_type)

    def read_oneof(message: Message) -> object:
        which = message.WhichOneof(oneof)
        if which is None:
            return None
        chosen: Message = getattr(message, which)
        return read(chosen, members[chosen.DESCRIPTOR.name])

    return read_oneof


def _members(union: object) -> dict[str, type]:
    """The classes of a union annotation (or of one class), by name."""
    if get_origin(union) is Annotated:  # a named Strawberry union
        union = get_args(union)[0]
    classes = get_args(union) or (union,)
    return {cls.__name__: cls for cls in classes if isinstance(cls, type)}


@cache
def _plan(cls: type, descriptor: Descriptor) -> tuple[tuple[str, _Read], ...]:
    hints = get_type_hints(cls)
    return tuple(
        (field.name, _reader(descriptor, field.name, hints[field.name], owner=cls.__name__))
        for field in dataclasses.fields(cls)
        # Fields with a resolver (links to other nodes) are not built from the message.
        if field.init
    )


def _reader(descriptor: Descriptor, name: str, hint: object, *, owner: str) -> _Read:
    optional, inner = _optional(hint)
    if name in descriptor.oneofs_by_name:
        return oneof_reader(descriptor, name, inner)
    field = descriptor.fields_by_name.get(name)
    if field is None:
        raise TypeError(f"{owner}.{name}: {descriptor.full_name} has no field {name!r}")
    if field.is_repeated:
        (element,) = get_args(inner)
        convert_each = _converter(field, element)
        return lambda message: [convert_each(value) for value in getattr(message, name)]
    convert = _converter(field, inner)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return lambda message: convert(getattr(message, name)) if message.HasField(name) else None
    if optional:
        return lambda message: convert(value) if (value := getattr(message, name)) else None
    return lambda message: convert(getattr(message, name))


def _converter(field: FieldDescriptor, hint: Any) -> _Convert:
    """How one proto value becomes the GraphQL value ``hint`` asks for."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if _message_type(field).full_name == _TIMESTAMP:
            return lambda timestamp: timestamp.ToDatetime(tzinfo=UTC)
        return lambda message: read(message, hint)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return PROTO_ENUMS[hint].from_proto
    if hint is strawberry.ID:
        return strawberry.ID
    return _same


def _message_type(field: FieldDescriptor) -> Descriptor:
    if field.message_type is None:
        raise TypeError(f"{field.full_name} is not a message field")
    return field.message_type


def _same(value: object) -> object:
    return value


def _optional(hint: object) -> tuple[bool, Any]:
    """Whether ``hint`` is ``X | None``, and ``X`` (a union of the rest when several)."""
    if get_origin(hint) not in {Union, types.UnionType}:
        return False, hint
    rest = tuple(arg for arg in get_args(hint) if arg is not type(None))
    if len(rest) == len(get_args(hint)):
        return False, hint
    return True, rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007 - built at runtime
