"""What one GraphQL operation may ask for: its rate, mutations and cost, checked before it runs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
)
from strawberry.extensions import SchemaExtension

from gateway.context import GatewayContext
from gateway.rate_limits import RateLimited

# Each mutation holds its request for the read-your-writes wait: a few per operation (a
# note and a tag) are a desk's need, dozens of aliases a way to tie up the gateway.
MAX_MUTATIONS_PER_OPERATION = 3
# Fields an operation may resolve at most, each counted once per item of every page above
# it: the screen-pop (a customer, 20 entries with their cases) costs about 1,000; a
# timeline of 100 entries each with its case's timeline of 100 entries costs 50,000.
MAX_QUERY_COST = 10_000
# The largest `first` any field accepts (merge suggestions); fields refuse larger pages
# themselves, with a message about the page size that helps more than one about cost.
_LARGEST_PAGE = 200


class OperationLimits(SchemaExtension):
    """Refuses operations over the mutation cap or the cost budget, before execution."""

    def on_operation(self) -> Iterator[None]:
        variables = self.execution_context.variables or {}
        self.execution_context.validation_rules = (
            *self.execution_context.validation_rules,
            _MaxMutations,
            _cost_rule(variables),
        )
        yield


class RateLimit(SchemaExtension):
    """Charges every operation to its caller's budget once parsed, before it is validated.

    Refused, the operation ends with the one ``RATE_LIMITED`` error: validation is skipped
    (Strawberry validates only while no pre-execution errors are set) and nothing runs.
    Parsing comes first because the operation's type picks the budget; the token limit
    keeps parsing cheap.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, GatewayContext):
            try:
                context.admit(self.execution_context.operation_type)
            except RateLimited as refused:
                self.execution_context.pre_execution_errors = [
                    GraphQLError(refused.message, original_error=refused)
                ]
        yield


class _MaxMutations(ValidationRule):
    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
        if node.operation is not OperationType.MUTATION:
            return
        count = sum(1 for _ in _fields(self.context, node.selection_set))
        if count > MAX_MUTATIONS_PER_OPERATION:
            self.report_error(
                GraphQLError(
                    f"An operation may run at most {MAX_MUTATIONS_PER_OPERATION} mutations; "
                    f"this one has {count}.",
                    node,
                )
            )


def _cost_rule(variables: Mapping[str, Any]) -> type[ValidationRule]:
    class _QueryCost(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
            root = self.context.schema.get_root_type(node.operation)
            if root is None:
                return
            cost = _cost(self.context, variables, root, node.selection_set, 1)
            if cost > MAX_QUERY_COST:
                self.report_error(
                    GraphQLError(
                        f"The operation may resolve up to {cost} fields, over the budget of "
                        f"{MAX_QUERY_COST}: ask for smaller pages (`first`) or less nesting.",
                        node,
                    )
                )

    return _QueryCost


def _fields(
    context: ValidationContext,
    selection_set: SelectionSetNode,
    parent: GraphQLNamedType | None = None,
) -> Iterator[tuple[FieldNode, GraphQLNamedType | None]]:
    """The fields a selection set selects, through fragments, with the type they are on."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection, parent
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            on = context.schema.get_type(condition.name.value) if condition else parent
            yield from _fields(context, selection.selection_set, on)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = context.get_fragment(selection.name.value)
            if fragment is not None:
                on = context.schema.get_type(fragment.type_condition.name.value)
                yield from _fields(context, fragment.selection_set, on)


def _cost(
    context: ValidationContext,
    variables: Mapping[str, Any],
    parent: GraphQLNamedType,
    selection_set: SelectionSetNode,
    multiplier: int,
) -> int:
    """Fields resolved under ``selection_set``, if every page is full."""
    total = 0
    for node, on in _fields(context, selection_set, parent):
        owner = on or parent
        if not isinstance(owner, GraphQLObjectType | GraphQLInterfaceType):
            continue
        field = owner.fields.get(node.name.value)
        if field is None:
            continue  # introspection or unknown: other rules decide
        total += multiplier
        if node.selection_set is not None:
            items = multiplier * _page_size(field.args, node, variables)
            total += _cost(
                context, variables, get_named_type(field.type), node.selection_set, items
            )
    return total


def _page_size(arguments: Mapping[str, Any], node: FieldNode, variables: Mapping[str, Any]) -> int:
    """The ``first`` a field is asked for (its default when not given); 1 when unpaged."""
    if "first" not in arguments:
        return 1
    return min(_requested(arguments, node, variables), _LARGEST_PAGE)


def _requested(arguments: Mapping[str, Any], node: FieldNode, variables: Mapping[str, Any]) -> int:
    for argument in node.arguments or ():
        if argument.name.value != "first":
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            return max(int(value.value), 1)
        if isinstance(value, VariableNode) and isinstance(variables.get(value.name.value), int):
            return max(int(variables[value.name.value]), 1)
    default = arguments["first"].default_value
    return default if isinstance(default, int) and default > 0 else 1
