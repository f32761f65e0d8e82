"""Probe spans and lanes from a saved run: a lane held when none of its probes overlapped."""

import json

from kaic.results import timeline
from kaic.results.run_dir import REPORT_FILE, RUN_SETTINGS_FILE


def run_dir(tmp_path, probes):
    """A run folder whose probes (name, lane, start second, duration) ran at those times."""
    report = {
        "requirements": [
            {
                "id": "r",
                "probes": [
                    {
                        "name": name,
                        "startedAt": f"2026-12-06T10:00:{start:06.3f}Z",
                        "durationSeconds": duration,
                    }
                    for name, _, start, duration in probes
                ],
            }
        ]
    }
    settings = {"probes": {name: {"timeout": 60, "lane": lane} for name, lane, _, _ in probes}}
    (tmp_path / REPORT_FILE).write_text(json.dumps(report))
    (tmp_path / RUN_SETTINGS_FILE).write_text(json.dumps(settings))
    return tmp_path


def test_one_after_another_in_a_lane_holds_and_others_run_beside(tmp_path):
    found = timeline.spans(
        run_dir(
            tmp_path,
            [
                ("r.a", "consumes-devices", 0, 5),
                ("r.b", "consumes-devices", 4.999, 5),  # began as r.a ended (millisecond rounding)
                ("r.c", "r.c", 1, 8),
            ],
        )
    )
    assert [s.probe for s in found] == ["r.a", "r.c", "r.b"]
    assert timeline.clashes(found) == []
    assert timeline.most_at_once(found) == 2
    assert timeline.shared_lanes(found) == {"consumes-devices": ["r.a", "r.b"]}


def test_two_probes_of_a_lane_at_once_are_a_clash(tmp_path):
    found = timeline.spans(
        run_dir(
            tmp_path,
            [("r.a", "consumes-devices", 0, 5), ("r.b", "consumes-devices", 4, 5), ("r.c", "r.c", 0, 9)],
        )
    )
    assert timeline.clashes(found) == [("r.a", "r.b")]
    assert timeline.most_at_once(found) == 3
