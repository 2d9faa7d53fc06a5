"""The issue's targets, each against a baseline of the same run, as one table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Row:
    """One target: what was measured, its baseline, their ratio, the bound and whether met."""

    target: str
    measured: str
    baseline: str
    ratio: float | None
    bound: str
    met: bool | None  # None: reported, no bound in the issue


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _reported(target: str, measured: str, baseline: str, ratio: float | None) -> Row:
    """A figure the issue asks to report, without a bound of its own."""
    return Row(target, measured, baseline, ratio, "report", None)


def _ingest_rows(result: dict[str, Any]) -> list[Row]:
    ingest, inserts = result["ingest"], result["baselines"]["insert_many"]
    flat, attach = result["growth"], result["attach_path"]
    e2e = ingest["stored_per_s"]
    e2e_ratio = e2e / inserts["per_s"]
    insert_cpu = inserts["store_cpu_ms_per_document"]
    cpu = ingest["cpu_ms_per_event"]
    per_event = ingest["store_commands_per_event"]
    return [
        Row(
            f"end-to-end ingest, {ingest['events']:,} events / {ingest['customers']:,} cust.",
            _rate(e2e),
            f"insert_many {_rate(inserts['per_s'])}",
            e2e_ratio,
            "≥ 1,000/s, ≥ 0.1×",
            e2e >= 1000 and e2e_ratio >= 0.1,
        ),
        Row(
            f"flat as the store grows: last vs first {flat['window']:,} of {flat['events']:,}",
            _rate(flat["last_per_s"]),
            f"first {_rate(flat['first_per_s'])}",
            flat["last_vs_first"],
            "≥ 0.8×",
            flat["last_vs_first"] >= 0.8,
        ),
        Row(
            "store round trips per attach batch (max of sizes)",
            f"{attach['max_round_trips_per_batch']}",
            "1 (insert_many)",
            attach["max_round_trips_per_batch"] / attach["baseline"],
            "≤ 3",
            attach["max_round_trips_per_batch"] <= 3,
        ),
        _reported(
            "store commands per event, end to end",
            f"{per_event:.2f}",
            f"{inserts['commands_per_document']:.4f} (insert_many)",
            per_event / inserts["commands_per_document"],
        ),
        *_machine_rows(ingest),
        *_alone_rows(result),
        *(
            _reported(
                f"{process} CPU per event, end to end",
                _ms(cpu.get(process)),
                f"{_ms(insert_cpu)} (store, insert_many)",
                _ratio(cpu.get(process), insert_cpu),
            )
            for process in ("store", "timeline")
        ),
    ]


def _machine_rows(ingest: dict[str, Any]) -> list[Row]:
    """What every process together spent per event, and the rate that fills every core."""
    machine = ingest.get("machine")
    if machine is None or machine.get("cpu_ceiling_per_s") is None:
        return []
    ceiling = machine["cpu_ceiling_per_s"]
    share = machine.get("busy_share")
    return [
        _reported(
            f"  CPU per event, whole machine ({machine['cores']} cores"
            + (f", {share:.0%} busy)" if share is not None else ")"),
            f"{_ms(machine['busy_cpu_ms_per_event'])} → ceiling {_rate(ceiling)}",
            "1,000/s (the end-to-end target)",
            ceiling / 1000,
        )
    ]


def _alone_rows(result: dict[str, Any]) -> list[Row]:
    """The end-to-end run again with the insights service held down (report only)."""
    alone = result.get("ingest_without_insights")
    if alone is None:
        return []
    inserts = result["baselines"]["insert_many"]
    cpu = alone["cpu_ms_per_event"]
    return [
        _reported(
            "  same, insights held down (the timeline's path alone)",
            _rate(alone["stored_per_s"]),
            f"insert_many {_rate(inserts['per_s'])}",
            alone["stored_per_s"] / inserts["per_s"],
        ),
        _reported(
            "  its store / timeline CPU per event",
            f"{_ms(cpu.get('store'))} / {_ms(cpu.get('timeline'))}",
            f"{_ms(inserts['store_cpu_ms_per_document'])} (store, insert_many)",
            _ratio(cpu.get("store"), inserts["store_cpu_ms_per_document"]),
        ),
    ]


def _live_rows(result: dict[str, Any]) -> list[Row]:
    live = result["live_view"]
    rows = []
    loaded = live.get("push_under_load")
    if loaded is not None:
        p99 = loaded["freshness_ms"].get("p99")
        bus = loaded["baseline_nats_core_ms"]["p99"]
        rows.append(
            Row(
                f"live view: ack → push p99, {loaded['background_per_s']:,.0f}/s other traffic",
                f"{_ms(p99)}, {loaded['missed_pushes']} missed",
                f"NATS ping p99 {_ms(bus)}",
                _ratio(p99, bus),
                "≤ 100 ms, 0 missed",
                p99 is not None and p99 <= 100 and loaded["missed_pushes"] == 0,
            )
        )
    graphql = live["pages"]["graphql_ms"]
    deep, first = graphql["deep"].get("p50"), graphql["first"].get("p50")
    rows.append(
        Row(
            f"timeline page {live['pages']['deep_page']} via cursors, "
            f"{live['pages']['seed']['interactions']:,} interactions (p50)",
            _ms(deep),
            f"first page {_ms(first)}",
            _ratio(deep, first),
            "≤ 1.5×",
            None if deep is None or not first else deep / first <= 1.5,
        )
    )
    return rows


def _identity_rows(result: dict[str, Any]) -> list[Row]:
    resolution, ms = result["identity_resolution"], result["merge_split"]
    inserts = result["baselines"]["insert_many"]["per_s"]
    k = ms["interactions_per_customer"]
    update = f"update_many {ms['update_many_s']:.2f} s"
    return [
        Row(
            "identity: mixed create/attach/merge resolution",
            _rate(resolution["per_s"]),
            f"insert_many {_rate(inserts)}",
            resolution["per_s"] / inserts,
            "≥ 500/s",
            resolution["per_s"] >= 500,
        ),
        *(
            Row(
                f"identity: {action} of two customers of {k:,}",
                f"{ms[f'{action}_s']:.2f} s",
                update,
                ms[f"{action}_vs_update_many"],
                "≤ 1.0×",
                ms[f"{action}_vs_update_many"] <= 1.0,
            )
            for action in ("merge", "split")
        ),
    ]


def rows(result: dict[str, Any]) -> list[Row]:
    """Every target of issue 11, in the issue's order."""
    return [*_ingest_rows(result), *_live_rows(result), *_identity_rows(result)]


def table(targets: list[Row]) -> str:
    """The rows as a fixed-width table."""
    header = ("target", "measured", "baseline", "ratio", "issue's target", "met")
    cells = [
        (
            r.target,
            r.measured,
            r.baseline,
            "n/a" if r.ratio is None or math.isnan(r.ratio) else f"{r.ratio:.3f}×",
            r.bound,
            "—" if r.met is None else ("yes" if r.met else "NO"),
        )
        for r in targets
    ]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
