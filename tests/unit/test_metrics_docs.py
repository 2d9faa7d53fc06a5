"""The alert rules in docs/operations.md parse and use only metrics the processes export."""

from __future__ import annotations

import re
from pathlib import Path

# PyYAML ships no inline types and types-PyYAML is not among the project's pinned packages.
import yaml  # type: ignore[import-untyped]

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _section(title: str) -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    start = text.index(f"\n{title}\n")
    return text[start : text.index("\n### ", start + 1)]


def test_alert_rules_are_a_prometheus_rule_file_over_documented_metrics() -> None:
    metrics = _section("### Metrics")
    documented = set(re.findall(r"^\| `(tsunagu_\w+)` \|", metrics, flags=re.MULTILINE))
    (block,) = re.findall(r"```yaml\n(.*?)```", metrics, flags=re.DOTALL)
    rules = yaml.safe_load(block)["groups"][0]["rules"]

    alerts = {rule["alert"] for rule in rules}
    used = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for rule in rules
        for name in re.findall(r"tsunagu_\w+", rule["expr"])
    }
    assert len(alerts) == len(rules), "alert names repeat"
    assert used <= documented, f"undocumented metrics in alerts: {used - documented}"
    for needed in (
        "tsunagu_timeline_consumer_pending",
        "tsunagu_timeline_freshness_stored_seconds",
        "tsunagu_timeline_dead_letter_depth",
        "tsunagu_ingest_events_total",
    ):
        assert needed in used, needed
    assert any("kube_pod_status_ready" in rule["expr"] for rule in rules), "no readiness alert"
