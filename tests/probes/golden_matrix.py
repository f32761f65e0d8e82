"""The golden outcome matrix and the `kaic run` helpers every probe-area test shares.

tests/golden/matrix.yaml maps scenario -> requirement -> expected requirement outcome. Each probe-area test
file owns the rows of its requirements and the scenarios that may move them (`OWN_SCENARIOS`); every other
scenario must keep conformant's rows, so a broken scenario can only change what it breaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from kaic.engine.collector import FULL_REASON
from kaic.kube import client as kube
from kaic.kube.cleanup import CLUSTER_SCOPED
from kaic.kube.labels import selector
from kaic.localcluster.launcher import LocalCluster
from kaic.results.report import load as report_load
from kaic.results.run_dir import REPORT_FILE

ROOT = Path(__file__).resolve().parents[2]
MATRIX = yaml.safe_load((ROOT / "tests/golden/matrix.yaml").read_text())
OUTCOMES = {"passed", "failed", "not-applicable", "unknown", "error"}
# Scenarios judged by one whole certified run of every requirement (their own test file), not area by area.
WHOLE_RUN = {"reference"}


def run_kaic(
    cluster: LocalCluster,
    out: Path,
    requirements: Iterable[str],
    *extra: str,
    version: str = "1.35",
    cluster_config: bool = True,
) -> dict:
    """`kaic run --focus <requirements>` in a subprocess, judged as checklist `version`, with the environment
    `kaic cluster up` tells a user to export (KUBECONFIG, and KAIC_CONFIG, its config file of local images,
    operator runtime and autoscaled pool, unless `cluster_config` is false); returns report.json. No
    requirements: no --focus (certified mode refuses one; such runs pass a reduced --profile instead)."""
    focus = ["--focus", ",".join(requirements)] if requirements else []
    args = ["run", *focus, "--kubernetes-version", version, "-o", "json", "--output-dir", str(out), *extra]
    proc = subprocess.run(
        [sys.executable, "-m", "kaic", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={
            **os.environ,
            "CI": "true",
            "KUBECONFIG": str(cluster.kubeconfig),
            **({"KAIC_CONFIG": str(cluster.config)} if cluster_config else {}),
        },
    )
    assert proc.returncode in (0, 1, 3, 4), proc.stderr[-3000:]  # 3: a MUST errored, still a full run
    report_load(out)  # as `kaic results`, `verify` and `diff` read it: the report must pass its own schema
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["run"]["complete"] is True, proc.stderr[-3000:]
    return report


# What a broken scenario breaks never answers the wait it breaks, so such a wait runs its whole window: runs
# on these scenarios pass the probes' own flags at their shortest sane values (a working cluster here answers
# in seconds: the gang binds in about 6 s on kueue, the scheduler binds a kwok pod in under one, Prometheus
# scrapes every 5 s).
SHORT_WAITS = {
    "broken-dra": ("--schedule-timeout", "10s"),
    "broken-kueue": ("--gang-bind-timeout", "15s"),
    "broken-observability": ("--metrics-collection-timeout", "20s"),
    "broken-pod-autoscaling": ("--custom-metrics-timeout", "30s"),
}


def check_scenario(
    cluster: Any,
    out: Path,
    scenario: str,
    requirements: Iterable[str],
    expected: dict,
    *extra: str,
    version: str = "1.35",
) -> dict:
    """One scenario's golden check: `kaic run` on it (judged as checklist `version`, with its SHORT_WAITS);
    requirement outcomes as the matrix says, probe outcomes as `expected` says, no fact section failed, and
    nothing labelled by the run left behind."""
    requirements = tuple(requirements)
    report = run_kaic(cluster, out, requirements, *SHORT_WAITS.get(scenario, ()), *extra, version=version)
    assert_matches_matrix(report, scenario, requirements)
    assert_probes(report, expected)
    assert report["facts"]["errors"] == {}
    assert_nothing_left(cluster.kubeconfig, report["run"]["id"])
    return report


def probe_outcomes(report: dict) -> dict[str, tuple[str, str]]:
    """Each probe's outcome and whole reason (a long one is shortened, and kept whole as evidence)."""
    return {p["name"]: (p["outcome"], _full_reason(p)) for r in report["requirements"] for p in r["probes"]}


def _full_reason(probe: dict) -> str:
    whole = [
        e["content"] for e in probe.get("evidence", []) if (e["kind"], e["name"]) == ("text", FULL_REASON)
    ]
    return whole[0] if whole else probe.get("reason") or ""


def assert_probes(report: dict, expected: dict[str, tuple[str, str]]) -> None:
    got = probe_outcomes(report)
    for name, (outcome, why) in expected.items():
        assert got[name][0] == outcome and why in got[name][1], f"{name}: {got[name]}"


def assert_matches_matrix(report: dict, scenario: str, requirements: Iterable[str]) -> None:
    outcomes = {r["id"]: r["outcome"] for r in report["requirements"]}
    assert outcomes == {r: MATRIX[scenario][r] for r in requirements}


def assert_nothing_left(kubeconfig: Path, run_id: str) -> None:
    """No namespace and no cluster-scoped object labelled by the run remains (kinds whose API is served)."""
    admin = kube.connect(str(kubeconfig))
    label = selector(run_id)
    left = [ns["metadata"]["name"] for ns in admin.list("/api/v1/namespaces", labelSelector=label)]
    for path in CLUSTER_SCOPED.values():
        if admin.get_or_none(path.rsplit("/", 1)[0]) is not None:
            left += [o["metadata"]["name"] for o in admin.list(path, labelSelector=label)]
    assert left == [], left


def assert_rows(requirements: Iterable[str], own_scenarios: set[str], scenarios: Iterable[str]) -> None:
    """Every scenario an area claims (`scenarios`) has a valid row for each of its requirements, and no other
    scenario has one (scenarios built for another area leave them out); claimed scenarios not in
    `own_scenarios` keep conformant's rows, so a broken scenario can only change what it breaks."""
    requirements, scenarios = tuple(requirements), set(scenarios)
    assert scenarios <= set(MATRIX)
    for scenario, rows in MATRIX.items():
        if scenario in WHOLE_RUN:
            continue
        if scenario not in scenarios:
            assert not set(requirements) & set(rows), f"{scenario} has rows no test claims"
            continue
        assert set(requirements) <= set(rows), scenario
        assert {rows[r] for r in requirements} <= OUTCOMES, scenario
        if scenario not in own_scenarios:
            assert {r: rows[r] for r in requirements} == {r: MATRIX["conformant"][r] for r in requirements}, (
                scenario
            )
