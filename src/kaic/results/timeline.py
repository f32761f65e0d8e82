"""When each probe of a saved run ran, and whether the run's lanes held: probes consuming the same thing
(devices, a node pool) must never have overlapped, while the rest may run beside them."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kaic.results.run_dir import REPORT_FILE, RUN_SETTINGS_FILE

SHARED = "consumes-"  # the prefix of a lane that several probes share (kaic.engine.plan.Plan.lanes)
# Start times are recorded to the millisecond and durations rounded to it: a probe that started as the one
# before it ended may seem to overlap it by a millisecond or two.
ROUNDING_S = 0.01


@dataclass(frozen=True)
class Span:
    probe: str
    lane: str
    start: float  # seconds since the epoch
    end: float


def spans(out_dir: Path) -> list[Span]:
    """Every probe that started, from the run's report and its settings file (which records the lanes)."""
    report = json.loads((out_dir / REPORT_FILE).read_text(encoding="utf-8"))
    planned = json.loads((out_dir / RUN_SETTINGS_FILE).read_text(encoding="utf-8"))["probes"]
    found = []
    for requirement in report["requirements"]:
        for probe in requirement["probes"]:
            if probe.get("startedAt"):
                start = datetime.fromisoformat(probe["startedAt"]).timestamp()
                lane = planned.get(probe["name"], {}).get("lane", probe["name"])
                found.append(Span(probe["name"], lane, start, start + probe["durationSeconds"]))
    return sorted(found, key=lambda s: s.start)


def shared_lanes(found: list[Span]) -> dict[str, list[str]]:
    lanes: dict[str, list[str]] = defaultdict(list)
    for span in found:
        if span.lane.startswith(SHARED):
            lanes[span.lane].append(span.probe)
    return dict(lanes)


def clashes(found: list[Span]) -> list[tuple[str, str]]:
    """Pairs of probes of one shared lane that ran at the same time: a run whose lanes held has none."""
    pairs = []
    for lane in shared_lanes(found):
        runs = [s for s in found if s.lane == lane]
        pairs += [
            (a.probe, b.probe)
            for a, b in itertools.combinations(runs, 2)
            if a.end - ROUNDING_S > b.start and b.end - ROUNDING_S > a.start
        ]
    return pairs


def most_at_once(found: list[Span]) -> int:
    """The most probes running at one moment."""
    edges = sorted([(s.start, 1) for s in found] + [(s.end - ROUNDING_S, -1) for s in found])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak
