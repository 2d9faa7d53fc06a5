"""The projection `find_by_ids` asks for keeps `tenant` whenever it lists fields to include."""

from __future__ import annotations

from services.timeline.store.by_id import with_tenant


def test_an_inclusion_projection_gains_tenant_and_an_exclusion_one_is_kept_as_it_is() -> None:
    assert with_tenant(None) is None
    assert with_tenant({"_id": 1}) == {"_id": 1, "tenant": 1}
    assert with_tenant({"_id": 0, "event_id": 1}) == {"_id": 0, "event_id": 1, "tenant": 1}
    assert with_tenant({"projected": 0, "timeline_key": 0}) == {"projected": 0, "timeline_key": 0}
