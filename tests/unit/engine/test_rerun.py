"""`kaic run --rerun-failed DIR`: what a rerun runs, what it carries over, the merged report and verdict, the
artifacts, signing, verify, diff and submission of a merge, and the bad-input contract.

The engine runs in process against no cluster: the API answers /version as 1.37, preflight passes, discovery
finds one cluster uid, and each planned probe ends as the test says (`FakeEngine.outcomes`), so every part
of a run except the probes themselves is the real one. tests/e2e/test_rerun.py does the same against a
local cluster.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from acme import product_file
from click.testing import CliRunner
from junitparser import JUnitXml

from kaic.certify import keys
from kaic.cli.main import main
from kaic.engine.plan import RunOptions, plan_only
from kaic.engine.rerun import Rerun, RerunError
from kaic.kube.preflight import Preflight
from kaic.profile import load_profile
from kaic.results import report as results
from kaic.results.outcomes import Outcome
from kaic.results.report import ProbeResult, Report, RequirementResult
from kaic.results.run_dir import E2E_LOG_FILE, KAIC_JUNIT_FILE, REPORT_FILE, SUMMARY_FILE
from kaic.settings import Gang, Settings

KUBECONFIG = (
    "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
    "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
    "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
)
PROFILE = Path(__file__).resolve().parents[3] / "profiles" / "ai-v1.0.yaml"
TEMPLATE = (
    Path(__file__).resolve().parents[4] / "shared" / "reference" / "checklists" / "AIConformance-1.37.yaml"
)
PASSWORD = "rerun"
# Two behavioural probes of MUSTs of the 1.37 checklist, broken in the source run of most tests.
FAILING = "gang_scheduling.fitting-gang"
UNKNOWN = "pod_autoscaling.scale-on-custom-metric"
STARTED = "2026-09-15T10:00:01Z"


@dataclass
class FakeEngine:
    """What each run ran, and how the next run's probes end (passed unless named here)."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    ran: list[list[str]] = field(default_factory=list)
    uid: str = "uid-1"


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeEngine:
    from kaic.engine import run as engine_run
    from kaic.kube import client as kube

    state = FakeEngine()
    version = {"major": "1", "minor": "37", "gitVersion": "v1.37.0"}

    def probes(self: engine_run.Run, plan: Any) -> tuple[bool, str]:
        state.ran.append([p.name for p in plan.probes])
        for spec in plan.probes:
            outcome = state.outcomes.get(spec.name, Outcome.PASSED)
            reason = "" if outcome is Outcome.PASSED else f"{outcome} on purpose"
            self._record(
                ProbeResult(
                    name=spec.name,
                    requirement=spec.requirement,
                    test=spec.test,
                    kind=spec.kind,
                    outcome=outcome,
                    reason=reason,
                    started_at=engine_run.now(),
                    duration_s=0.5,
                )
            )
        return True, ""

    monkeypatch.setattr(kube.Cluster, "get", lambda self, path, **query: version)
    monkeypatch.setattr(engine_run, "run_preflight", lambda cluster, rules: Preflight())
    monkeypatch.setattr(
        engine_run.facts_mod,
        "discover",
        lambda cluster: {"errors": {}, "version": version, "clusterUID": state.uid},
    )
    monkeypatch.setattr(engine_run.Run, "_probes", probes)
    for name in ("KAIC_MODE", "KAIC_PROFILE", "KAIC_OUTPUT_DIR", "KAIC_SIGN_KEY", "KAIC_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kc"))
    monkeypatch.setenv(keys.PASSWORD_ENV, PASSWORD)
    (tmp_path / "kc").write_text(KUBECONFIG)
    return state


def kaic(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def run(out: Path, *args: Any, mode: str = "certified") -> Report:
    """A run into `out` (exit code checked against its verdict), and its report."""
    result = kaic("run", "--mode", mode, "-d", out, *args)
    report = results.load(out)  # schema-checked
    assert result.exit_code == report.verdict["exitCode"], result.output
    return report


def rerun(out: Path, source: Path, *args: Any) -> Report:
    result = kaic("run", "--rerun-failed", source, "-d", out, *args)
    report = results.load(out)
    assert result.exit_code == report.verdict["exitCode"], result.output
    return report


def by_name(report: Report) -> dict[str, ProbeResult]:
    return {p.name: p for p in report.probes()}


@pytest.fixture
def broken(engine: FakeEngine, tmp_path: Path) -> Path:
    """A certified source run in which FAILING failed and UNKNOWN was unknown (exit 1)."""
    engine.outcomes = {FAILING: Outcome.FAILED, UNKNOWN: Outcome.UNKNOWN}
    source = run(tmp_path / "source")
    assert (source.verdict["result"], source.verdict["exitCode"]) == ("not-conformant", 1)
    engine.outcomes = {}
    return tmp_path / "source"


# ---- what a rerun runs, carries over and judges ---------------------------------------------------------


def test_a_rerun_runs_only_what_did_not_pass_and_judges_the_merge_like_a_full_run(
    engine: FakeEngine, broken: Path, tmp_path: Path
) -> None:
    source = results.load(broken)
    merged = rerun(tmp_path / "merged", broken)
    assert engine.ran[-1] == [FAILING, UNKNOWN]  # plan order, nothing else
    assert merged.run["rerunOf"] == {
        "runId": source.run["id"],
        "reportSha256": hashlib.sha256((broken / REPORT_FILE).read_bytes()).hexdigest(),
        "probes": [FAILING, UNKNOWN],
    }
    before, after = by_name(source), by_name(merged)
    assert set(after) == set(before)
    for name, probe in after.items():
        if name in (FAILING, UNKNOWN):
            assert (probe.outcome, probe.carried_from) == (Outcome.PASSED, "")
            assert probe.started_at > source.run["finishedAt"]
        else:  # as the source recorded it, marked
            assert probe.carried_from == source.run["id"]
            assert (probe.outcome, probe.started_at) == (before[name].outcome, before[name].started_at)
    assert (merged.run["mode"], merged.checklist["chosen"], merged.profile) == (
        source.run["mode"],
        source.checklist["chosen"],
        source.profile,
    )
    full = run(tmp_path / "full")  # the same cluster, everything passing, in one run
    assert merged.verdict == full.verdict
    assert [(r.id, r.outcome, r.reason) for r in merged.requirements] == [
        (r.id, r.outcome, r.reason) for r in full.requirements
    ]


def test_every_artifact_says_which_results_were_carried_over(broken: Path, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    merged = rerun(out, broken)
    source_id = merged.run["rerunOf"]["runId"]
    carried = sorted(p.name for p in merged.probes() if p.carried_from)
    summary = (out / SUMMARY_FILE).read_text()
    assert f"**Rerun of:** run {source_id}" in summary and f"re-ran {FAILING}, {UNKNOWN};" in summary
    (suite,) = JUnitXml.fromfile(str(out / KAIC_JUNIT_FILE))
    props = {p.name: p.value for p in suite.properties()}
    assert props["run.rerunOf"] == source_id and sorted(props["run.carriedOver"].split(",")) == carried
    cases = ET.parse(out / KAIC_JUNIT_FILE).iter("testcase")
    marked = sorted(
        case.get("name", "")
        for case in cases
        if any(p.get("name") == "carriedFrom" and p.get("value") == source_id for p in case.iter("property"))
    )
    assert marked == carried
    log = (out / E2E_LOG_FILE).read_text()
    assert log.count(f"carried over from run {source_id}") == len(carried)


def test_sign_verify_diff_and_submission_accept_a_merge(broken: Path, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    merged = rerun(out, broken)
    pair = keys.generate(tmp_path / "key", PASSWORD.encode())
    assert kaic("sign", out, "--key", pair.private).exit_code == 0
    envelope = json.loads((out / "report.intoto.json").read_text())
    import base64

    predicate = json.loads(base64.b64decode(envelope["payload"]))["predicate"]
    assert predicate["rerunOf"] == {
        "runId": merged.run["rerunOf"]["runId"],
        "digest": {"sha256": merged.run["rerunOf"]["reportSha256"]},
        "probes": [FAILING, UNKNOWN],
    }
    verified = kaic("verify", out, "--key", pair.public)
    assert verified.exit_code == 0, verified.output

    gate = kaic("diff", broken, out, "-o", "json")
    assert gate.exit_code == 0, gate.output
    changes = json.loads(gate.stdout)
    assert changes["new"]["rerunOf"] == merged.run["rerunOf"]["runId"] and changes["old"]["rerunOf"] is None
    moved = {
        p["name"]: p["change"]
        for r in changes["requirements"]
        for p in r["probes"]
        if p["change"] != "unchanged"
    }
    assert moved == {FAILING: "fix", UNKNOWN: "fix"}

    if not TEMPLATE.is_file():
        pytest.skip(f"the official checklists are not at {TEMPLATE.parent}")
    product = product_file(tmp_path / "product.yaml")
    created = kaic(
        "submission", "create", out, "--checklist", TEMPLATE, "--product", product, "--out", tmp_path
    )
    assert created.exit_code in (0, 1), created.output  # 1: lint's findings on the fake run's results
    readme = (tmp_path / "v1.37" / "acme-ai-platform" / "README.md").read_text()
    assert f"| rerun of | run {merged.run['rerunOf']['runId']} " in readme


def test_a_verify_refuses_a_report_whose_merge_was_not_signed_so(broken: Path, tmp_path: Path) -> None:
    from kaic.certify import sign as signer
    from kaic.certify.verify import _agreement

    out = tmp_path / "merged"
    merged = rerun(out, broken)
    signed = signer.predicate(merged)
    del signed["rerunOf"]
    (finding,) = _agreement(out, signed)
    assert finding.code == "report-disagrees" and "rerunOf" in finding.message


def test_a_rerun_of_a_rerun_keeps_the_run_that_produced_each_result(
    engine: FakeEngine, broken: Path, tmp_path: Path
) -> None:
    engine.outcomes = {UNKNOWN: Outcome.ERROR}
    first = rerun(tmp_path / "first", broken)
    assert first.verdict["result"] == "incomplete" and engine.ran[-1] == [FAILING, UNKNOWN]
    engine.outcomes = {}
    second = rerun(tmp_path / "second", tmp_path / "first")
    assert engine.ran[-1] == [UNKNOWN]
    probes = by_name(second)
    assert probes[FAILING].carried_from == first.run["id"]  # it passed in the first rerun
    source_id = results.load(broken).run["id"]
    assert all(p.carried_from == source_id for n, p in probes.items() if n not in (FAILING, UNKNOWN))
    assert second.run["rerunOf"]["runId"] == first.run["id"]


def test_nothing_to_rerun_writes_nothing_and_exits_with_the_source_verdict(
    engine: FakeEngine, tmp_path: Path
) -> None:
    source = run(tmp_path / "source")
    result = kaic("run", "--rerun-failed", tmp_path / "source", "-d", tmp_path / "again")
    assert result.exit_code == source.verdict["exitCode"]
    assert (
        "nothing to re-run" in result.stderr
        and f"verdict stands: {source.verdict['result']}" in result.stderr
    )
    assert not (tmp_path / "again").exists() and len(engine.ran) == 1


def test_a_rerun_on_another_cluster_runs_nothing_and_is_incomplete(
    engine: FakeEngine, broken: Path, tmp_path: Path
) -> None:
    engine.uid = "uid-2"
    merged = rerun(tmp_path / "merged", broken)
    assert len(engine.ran) == 1  # only the source's run ran probes
    assert merged.verdict["result"] == "incomplete" and FAILING not in by_name(merged)
    assert "results of two clusters are never merged" in merged.run["incompleteReason"]


def test_a_rerun_takes_its_source_options_and_its_own_cluster_access_timeouts_and_folder(
    engine: FakeEngine, tmp_path: Path
) -> None:
    engine.outcomes = {FAILING: Outcome.FAILED}
    run(
        tmp_path / "source",
        "--focus",
        "gang_scheduling,gpu_sharing",
        "--gang-scheduler",
        "kueue",
        "--cleanup-timeout",
        "5s",
        mode="non-disruptive",
    )
    source = Rerun.load(tmp_path / "source")
    given = RunOptions(
        kubeconfig="other-kc",
        context="ctx",
        output_dir=tmp_path / "x",
        parallel=7,
        run_timeout_s=60,
        probe_timeout_s=30,
        settings=Settings(cleanup_timeout_s=9),
    )
    opts = source.options(given, explicit=())
    assert (opts.mode, opts.focus, opts.skip, opts.kubernetes_version) == (
        "non-disruptive",
        ("gang_scheduling", "gpu_sharing"),
        (),
        "1.37",
    )
    assert opts.settings == Settings(gang=Gang(scheduler="kueue"), cleanup_timeout_s=9)
    assert (opts.kubeconfig, opts.context, opts.output_dir, opts.parallel) == (
        "other-kc",
        "ctx",
        given.output_dir,
        7,
    )
    assert (opts.run_timeout_s, opts.probe_timeout_s) == (60, 30)
    assert load_profile(opts.profile).sha256 == source.source.profile["sha256"]
    same = RunOptions(
        mode="non-disruptive", focus=("gpu_sharing", "gang_scheduling"), kubernetes_version="v1.37"
    )
    assert source.options(same, explicit=("mode", "focus", "kubernetes_version")).focus == opts.focus


def test_split_reruns_failed_errored_unknown_and_missing_results_and_carries_the_rest(tmp_path: Path) -> None:
    plan, _ = plan_only(RunOptions(mode="certified", kubernetes_version="1.37"))
    names = [p.name for p in plan.probes]
    source = Report(
        run={"id": "src", "mode": "certified", "startedAt": "2026-09-15T10:00:00Z", "complete": False},
        kaic={},
        profile={"id": "ai-v1.0", "version": "1"},
        checklist={"detected": "1.37", "chosen": "1.37"},
        requirements=[RequirementResult(r.id, r.category, level) for r, level in plan.requirements],
    )
    outcomes = [Outcome.PASSED, Outcome.NOT_APPLICABLE, Outcome.FAILED, Outcome.ERROR, Outcome.UNKNOWN]
    for spec, outcome in zip(plan.probes, outcomes, strict=False):  # the rest have no result: interrupted
        source.requirement(spec.requirement).probes.append(
            ProbeResult(spec.name, spec.requirement, spec.test, spec.kind, outcome, "r", started_at=STARTED)
        )
    source_of = Rerun(tmp_path, source, "0" * 64)
    cut, carried = source_of.split(plan)
    assert [p.name for p in carried] == names[:2]
    assert all(p.carried_from == "src" and p.started_at == STARTED for p in carried)
    assert [p.name for p in cut.probes] == names[2:]
    assert (cut.requirements, cut.excluded) == (plan.requirements, plan.excluded)
    assert source_of.block(cut)["probes"] == names[2:]
    assert not any(p.carried_from for p in source.probes())  # the source's results are not changed


# ---- bad input: one line naming the flag, exit 2, nothing written ---------------------------------------


def refused(*args: Any, out: Path) -> str:
    result = kaic("run", *args, "-d", out)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("kaic: error: ") and "\n" not in line and "Traceback" not in result.output
    assert not out.exists()
    return line


def _edit(folder: Path, change: Any) -> None:
    report = json.loads((folder / REPORT_FILE).read_text())
    change(report)
    (folder / REPORT_FILE).write_text(json.dumps(report))


def test_a_missing_or_unreadable_source_is_refused(engine: FakeEngine, tmp_path: Path) -> None:
    line = refused("--rerun-failed", tmp_path / "nope", out=tmp_path / "o")
    assert f"--rerun-failed {tmp_path / 'nope'}: cannot read: No such file" in line
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / REPORT_FILE).write_text("{not json")
    line = refused("--rerun-failed", tmp_path / "garbage", out=tmp_path / "o")
    assert f"--rerun-failed {tmp_path / 'garbage' / REPORT_FILE}: not JSON" in line
    (tmp_path / "garbage" / REPORT_FILE).write_text('{"schema": "kaic.dev/report/v1"}')
    assert "expected a kaic result folder" in refused(
        "--rerun-failed", tmp_path / "garbage", out=tmp_path / "o"
    )


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda r: r["run"].update(mode="quick"), "ran in quick mode, which judges nothing to re-run"),
        (lambda r: r["run"].pop("settings"), "does not record its probe settings"),
        (lambda r: r["kaic"].update(kaic="0.0.1"), "was made by kaic 0.0.1, this is kaic"),
    ],
    ids=["quick-run", "old-report", "other-kaic"],
)
def test_a_source_that_cannot_be_rerun_is_refused(
    broken: Path, tmp_path: Path, change: Any, said: str
) -> None:
    _edit(broken, change)
    line = refused("--rerun-failed", broken, out=tmp_path / "o")
    assert f"--rerun-failed {broken / REPORT_FILE}: run " in line and said in line


def test_a_real_quick_run_is_refused(engine: FakeEngine, tmp_path: Path) -> None:
    run(tmp_path / "quick", mode="quick")
    assert "quick mode" in refused("--rerun-failed", tmp_path / "quick", out=tmp_path / "o")


def test_a_signed_source_changed_since_signing_is_refused(broken: Path, tmp_path: Path) -> None:
    pair = keys.generate(tmp_path / "key", PASSWORD.encode())
    assert kaic("sign", broken, "--key", pair.private).exit_code == 0
    _edit(broken, lambda r: r["run"].update(focus=[]))  # schema-valid, but not what was signed
    line = refused("--rerun-failed", broken, out=tmp_path / "o")
    assert f"--rerun-failed {broken / REPORT_FILE}: changed since the run was signed" in line


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (("--mode", "non-disruptive"), "--mode non-disruptive: run {id} used certified"),
        (("--kubernetes-version", "1.36"), "--kubernetes-version 1.36: run {id} used 1.37"),
        (("--focus", "gpu_sharing"), "--focus gpu_sharing: run {id} used none"),
        (("--skip", "gpu_sharing"), "--skip gpu_sharing: run {id} used none"),
        (
            ("--gang-scheduler", "kueue"),
            "probe setting gang.scheduler is 'kueue' here but 'auto' in run {id}",
        ),
        (("--dry-run",), "--dry-run: not with --rerun-failed"),
    ],
)
def test_flags_that_ask_for_another_run_than_the_source_are_refused(
    broken: Path, tmp_path: Path, flags: tuple[str, ...], said: str
) -> None:
    line = refused("--rerun-failed", broken, *flags, out=tmp_path / "o")
    assert said.format(id=results.load(broken).run["id"]) in line


def test_a_conflict_from_the_environment_names_the_variable(
    broken: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAIC_MODE", "non-disruptive")
    assert "error: $KAIC_MODE (--mode) non-disruptive: run" in refused(
        "--rerun-failed", broken, out=tmp_path / "o"
    )


def test_the_same_values_given_again_are_no_conflict(
    engine: FakeEngine, broken: Path, tmp_path: Path
) -> None:
    rerun(
        tmp_path / "merged",
        broken,
        "--mode",
        "certified",
        "--kubernetes-version",
        "1.37",
        "--profile",
        "ai-v1.0",
    )
    assert engine.ran[-1] == [FAILING, UNKNOWN]


def test_a_changed_profile_is_refused(engine: FakeEngine, tmp_path: Path) -> None:
    profile = tmp_path / "mine.yaml"
    profile.write_text(PROFILE.read_text() + "# mine\n")
    engine.outcomes = {FAILING: Outcome.FAILED}
    run(tmp_path / "source", "--profile", profile)
    source_id = results.load(tmp_path / "source").run["id"]
    line = refused("--rerun-failed", tmp_path / "source", "--profile", "ai-v1.0", out=tmp_path / "o")
    assert (
        line.startswith("kaic: error: --profile: profile ") and f"is not the one run {source_id} used" in line
    )
    profile.write_text(profile.read_text() + "# changed since\n")  # --profile given or not
    line = refused("--rerun-failed", tmp_path / "source", out=tmp_path / "o")
    assert f"--rerun-failed {tmp_path / 'source'}: profile {profile} (sha256 " in line
    assert "a rerun judges with the same profile" in line


def test_a_rerun_error_is_a_usage_error() -> None:
    from kaic.cli.run import _usage_errors

    assert RerunError in _usage_errors()
