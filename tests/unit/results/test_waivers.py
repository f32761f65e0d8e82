"""Waivers: the file's checks, and how `kaic diff` applies, expires and reports them."""

import json
from datetime import date
from pathlib import Path

import pytest

from kaic.results.diff import diff
from kaic.results.waivers import Waiver, WaiverError, load

NEGATIVE = "secure_accelerator_access.negative-isolation"
VALID = """\
waivers:
  - requirement: secure_accelerator_access
    probe: negative-isolation
    reason: driver 560 exposes /dev/nvidiactl to every pod, vendor case 1234
    owner: platform-team@example.com
    expires: 2026-12-31
  - requirement: ai_service_metrics
    reason: Prometheus moves to a new namespace this week
    owner: sre@example.com
    expires: "2026-10-01"
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "waivers.yaml"
    path.write_text(text)
    return path


def waiver_file(folder: Path, *entries: str) -> Path:
    """A file of waivers for secure_accelerator_access, each entry's extra lines given as YAML text."""
    body = "".join(
        f"  - requirement: secure_accelerator_access\n    reason: accepted\n    owner: me\n{extra}"
        for extra in entries
    )
    return write(folder, "waivers:\n" + body)


def test_valid_file_loads_with_full_probe_names_and_dates(tmp_path):
    waivers = load(write(tmp_path, VALID))
    assert waivers == [
        Waiver(
            "secure_accelerator_access",
            "driver 560 exposes /dev/nvidiactl to every pod, vendor case 1234",
            "platform-team@example.com",
            date(2026, 12, 31),
            NEGATIVE,
        ),
        Waiver(
            "ai_service_metrics",
            "Prometheus moves to a new namespace this week",
            "sre@example.com",
            date(2026, 10, 1),
        ),
    ]
    assert load(write(tmp_path, "waivers: []\n")) == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("waivers:\n  - {requirement: a, owner: o, expires: 2026-01-01}\n", "waivers[0].reason: required"),
        (
            "waivers:\n  - {requirement: a, reason: '  ', owner: o, expires: 2026-01-01}\n",
            "waivers[0].reason: expected",
        ),
        ("waivers:\n  - {requirement: a, reason: r, expires: 2026-01-01}\n", "waivers[0].owner: required"),
        ("waivers:\n  - {requirement: a, reason: r, owner: o}\n", "waivers[0].expires: required"),
        (
            (
                "waivers:\n  - {requirement: a, reason: r, owner: o, expires: 2026-01-01}\n"
                "  - {requirement: b, reason: r, owner: o, expires: 2026-02-30}\n"
            ),
            "waivers[1].expires: '2026-02-30' is not a date",
        ),
        (
            "waivers:\n  - {requirement: a, reason: r, owner: o, expires: next week}\n",
            "waivers[0].expires: 'next week'",
        ),
        (
            "waivers:\n  - {requirement: a, reason: r, owner: o, expires: 2026-01-01, reson: x}\n",
            "waivers[0].reson: unknown key",
        ),
        (
            "waivers:\n  - {requirement: a, probe: b.scrape, reason: r, owner: o, expires: 2026-01-01}\n",
            "waivers[0].probe: 'b.scrape' is not a probe of requirement 'a'",
        ),
        ("waivers:\n  - just a string\n", "waivers[0]: expected a mapping"),
        ("- requirement: a\n", "expected a mapping with one key, 'waivers'"),
        ("waivers: [\n", "not valid YAML"),
    ],
)
def test_bad_file_names_file_entry_and_field(tmp_path, text, where):
    path = write(tmp_path, text)
    with pytest.raises(WaiverError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert where in str(caught.value)


def test_bad_waiver_file_exits_2_naming_file_index_and_field(run_pair):
    path = write(run_pair.root, "waivers:\n  - {requirement: a, owner: o, expires: 2026-01-01}\n")
    cli = run_pair.diff("--waivers", str(path))
    assert cli.exit_code == 2
    assert f"{path}: waivers[0].reason: required" in cli.output
    missing = run_pair.diff("--waivers", str(run_pair.root / "nope.yaml"))
    assert (missing.exit_code, "nope.yaml: cannot read" in missing.output) == (2, True)


def test_waived_must_regression_passes_the_gate_and_says_so(run_pair):
    run_pair.set(run_pair.new, NEGATIVE, "failed", "pod sees /dev/nvidia0")
    path = waiver_file(run_pair.root, "    expires: 2026-12-31\n")
    cli = run_pair.diff("--waivers", str(path))
    assert cli.exit_code == 0, cli.output
    assert "waived by me until 2026-12-31: accepted" in cli.output
    doc = json.loads(run_pair.diff("--waivers", str(path), "-o", "json").stdout)
    assert doc["gate"] == {"passed": True, "exitCode": 0, "blocking": [], "reasons": []}
    assert doc["requirements"][0]["waivedBy"] == [
        {
            "requirement": "secure_accelerator_access",
            "probe": None,
            "reason": "accepted",
            "owner": "me",
            "expires": "2026-12-31",
        }
    ]
    assert doc["counts"]["waived"] == 1
    assert doc["waivers"]["applied"] == doc["requirements"][0]["waivedBy"]


def test_a_waiver_holds_through_its_expiry_day_then_fails_the_gate_and_says_expired(run_pair):
    run_pair.set(run_pair.new, NEGATIVE, "failed", "pod sees /dev/nvidia0")
    path = waiver_file(run_pair.root, "    expires: 2026-09-20\n")
    assert run_pair.diff("--waivers", str(path), today="2026-09-20").exit_code == 0
    cli = run_pair.diff("--waivers", str(path), today="2026-09-21")
    assert cli.exit_code == 1
    assert "waiver for secure_accelerator_access expired on 2026-09-20" in cli.output
    doc = json.loads(run_pair.diff("--waivers", str(path), "-o", "json", today="2026-09-21").stdout)
    assert doc["requirements"][0]["notes"] == ["waiver for secure_accelerator_access expired on 2026-09-20"]
    assert [w["expires"] for w in doc["waivers"]["expired"]] == ["2026-09-20"]
    assert doc["waivers"]["unused"] == []


def test_a_waiver_that_matches_no_regression_is_reported_unused(run_pair):
    path = write(run_pair.root, VALID)
    cli = run_pair.diff("--waivers", str(path))
    assert cli.exit_code == 0
    assert (
        "warning: waiver for secure_accelerator_access.negative-isolation matched no regression (unused)"
        in cli.output
    )
    assert "warning: waiver for ai_service_metrics matched no regression (unused)" in cli.output


def test_probe_waivers_must_cover_every_probe_that_decided_the_regression(run_pair):
    run_pair.set(run_pair.new, NEGATIVE, "failed", "pod sees /dev/nvidia0")
    run_pair.set(run_pair.new, "secure_accelerator_access.positive-access", "failed", "no device in the pod")
    one = waiver_file(run_pair.root, "    probe: negative-isolation\n    expires: 2026-12-31\n")
    [change] = diff(run_pair.old, run_pair.new, load(one), date(2026, 9, 20)).blocking
    assert change.notes == ["not waived: no waiver for secure_accelerator_access.positive-access"]
    both = waiver_file(
        run_pair.root,
        "    probe: negative-isolation\n    expires: 2026-12-31\n",
        "    probe: secure_accelerator_access.positive-access\n    expires: 2026-12-31\n",
    )
    result = diff(run_pair.old, run_pair.new, load(both), date(2026, 9, 20))
    assert (result.exit_code, result.unused, len(result.applied)) == (0, [], 2)


def test_a_probe_waiver_for_a_probe_that_did_not_decide_is_unused(run_pair):
    run_pair.set(run_pair.new, NEGATIVE, "failed", "pod sees /dev/nvidia0")
    path = waiver_file(run_pair.root, "    probe: multi-container\n    expires: 2026-12-31\n")
    result = diff(run_pair.old, run_pair.new, load(path), date(2026, 9, 20))
    assert result.exit_code == 1
    assert [w.probe for w in result.unused] == ["secure_accelerator_access.multi-container"]


def test_a_waived_should_regression_counts_as_used(run_pair):
    run_pair.set(run_pair.new, "driver_runtime_management.versions", "failed", "driver too old")
    path = write(
        run_pair.root,
        "waivers:\n  - {requirement: driver_runtime_management, reason: r, owner: o, expires: 2026-12-31}\n",
    )
    result = diff(run_pair.old, run_pair.new, load(path), date(2026, 9, 20))
    assert (result.unused, result.exit_code, result.requirements[0].waived_by[0].owner) == ([], 0, "o")
