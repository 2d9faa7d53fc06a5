"""Indexes, created idempotently at start; the tenant leads every key."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

INTERACTIONS = [
    IndexModel([("tenant", ASCENDING), ("event_id", ASCENDING)], unique=True, name="tenant_event"),
    # A customer's timeline page is one range scan of this index.
    IndexModel(
        [
            ("tenant", ASCENDING),
            ("customer_id", ASCENDING),
            ("occurred_at", DESCENDING),
            ("event_id", DESCENDING),
        ],
        name="tenant_customer_timeline",
    ),
    # Customer ids are globally unique. This single-field index is what the embedded store can
    # use (it ignores compound indexes); real MongoDB picks the compound one above.
    IndexModel([("customer_id", ASCENDING)], name="customer"),
    # Rebuilding one case from the log after a crash reads its interactions.
    IndexModel([("case_id", ASCENDING)], name="case", sparse=True),
]

IDENTITIES = [
    IndexModel(
        [("tenant", ASCENDING), ("kind", ASCENDING), ("value", ASCENDING)],
        unique=True,
        name="tenant_kind_value",
    ),
    IndexModel([("tenant", ASCENDING), ("customer_id", ASCENDING)], name="tenant_customer"),
    IndexModel([("value", ASCENDING)], name="value"),
    IndexModel([("customer_id", ASCENDING)], name="customer"),
]

CUSTOMERS = [
    IndexModel([("tenant", ASCENDING), ("last_contact_at", DESCENDING)], name="tenant_recent"),
    # Soft signals for merge suggestions: customers with the same folded name or address.
    IndexModel([("name_key", ASCENDING)], name="name_key", sparse=True),
    IndexModel([("address_key", ASCENDING)], name="address_key", sparse=True),
    IndexModel([("merged_into", ASCENDING)], name="merged_into", sparse=True),
    # SearchCustomers: a range scan over the folded name (`search_keys.name_key`).
    IndexModel([("tenant", ASCENDING), ("search_name", ASCENDING)], name="tenant_search_name"),
    IndexModel([("search_name", ASCENDING)], name="search_name", sparse=True),
]

MERGES = [
    IndexModel([("tenant", ASCENDING), ("survivor_id", ASCENDING)], name="tenant_survivor"),
    IndexModel([("survivor_id", ASCENDING)], name="survivor"),
    IndexModel([("merged_ids", ASCENDING)], name="merged"),
    IndexModel([("status", ASCENDING)], name="status"),
]

SUGGESTIONS = [
    IndexModel([("tenant", ASCENDING), ("customer_ids", ASCENDING)], name="tenant_customers"),
    IndexModel([("customer_ids", ASCENDING)], name="customers"),
]

CASES = [
    # A customer's cases, most recently active first (case assignment, the customer filter).
    IndexModel(
        [("tenant", ASCENDING), ("customer_id", ASCENDING), ("updated_at", DESCENDING)],
        name="tenant_customer_recent",
    ),
    # ListCases pages: (updated_at, _id) descending within the tenant, optionally by owner.
    # (`_id` stays out of the key: the embedded store fails writes to such an index.)
    IndexModel([("tenant", ASCENDING), ("updated_at", DESCENDING)], name="tenant_recent"),
    IndexModel(
        [("tenant", ASCENDING), ("owner_agent_id", ASCENDING), ("updated_at", DESCENDING)],
        name="tenant_owner_recent",
    ),
    IndexModel(
        [("tenant", ASCENDING), ("next_follow_up_due", ASCENDING)], name="tenant_follow_up_due"
    ),
    # Single-field twins of the leading keys: the embedded store uses no compound index.
    IndexModel([("customer_id", ASCENDING)], name="customer"),
    IndexModel([("owner_agent_id", ASCENDING)], name="owner"),
    IndexModel([("tenant", ASCENDING)], name="tenant"),
]
