"""Shared fixtures for unit tests. Append new fixtures; keep existing ones stable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kaic.results.outcomes import VERDICT_EXIT
from kaic.results.report import Evidence, ProbeResult, Report, RequirementResult


def _probe(name: str, test: str, outcome: str, start: str, duration: float, **kw: object) -> ProbeResult:
    return ProbeResult(
        name=name,
        requirement=name.split(".")[0],
        test=test,
        kind=str(kw.pop("kind", "behavioural")),
        outcome=outcome,  # type: ignore[arg-type]
        started_at=f"2026-09-15T10:{start}Z",
        duration_s=duration,
        **kw,  # type: ignore[arg-type]
    )


def build_sample_report() -> Report:
    """A judged run touching every outcome, with tests named like tests/golden/gotest (keep them in step)."""
    requirements = [
        RequirementResult(
            "secure_accelerator_access",
            "security",
            "MUST",
            upstream_test="TestSecureAcceleratorAccess",
            probes=[
                _probe(
                    "secure_accelerator_access.positive-access",
                    "TestSecureAcceleratorAccess/PositiveAccessTest",
                    "passed",
                    "00:00.000",
                    1.25,
                    evidence=[Evidence("fact", "devices", "/dev/nvidia0")],
                ),
                _probe(
                    "secure_accelerator_access.negative-isolation",
                    "TestSecureAcceleratorAccess/NegativeIsolationTest",
                    "failed",
                    "00:01.250",
                    2.5,
                    reason="a pod without a claim sees /dev/nvidia0",
                    warnings=["node gpu-1 has 2 devices"],
                    evidence=[
                        Evidence("event", "pod/kaic-neg", "Normal  Started  container started\nok"),
                        Evidence("log", "container probe", "$ ls /dev\n/dev/nvidia0"),
                    ],
                ),
                _probe(
                    "secure_accelerator_access.multi-container",
                    "TestSecureAcceleratorAccess/MultiContainerIsolationTest",
                    "not-applicable",
                    "00:03.750",
                    0.01,
                    reason="no node offers two devices",
                ),
            ],
        ),
        RequirementResult(
            "dra_support",
            "accelerators",
            "MUST",
            probes=[
                _probe(
                    "dra_support.discovery",
                    "TestKaicDraSupport/Discovery",
                    "passed",
                    "00:03.760",
                    0.3,
                    kind="discovery",
                    evidence=[Evidence("fact", "api", "resource.k8s.io/v1 served")],
                ),
            ],
        ),
        RequirementResult(
            "cluster_autoscaling",
            "schedulingOrchestration",
            "MUST",
            conditional="platform",
            upstream_test="TestAcceleratorClusterAutoscaling",
            probes=[
                _probe(
                    "cluster_autoscaling.scale-up",
                    "TestAcceleratorClusterAutoscaling",
                    "not-applicable",
                    "00:04.060",
                    0.02,
                    reason="no cluster autoscaler is installed",
                ),
            ],
        ),
        RequirementResult(
            "ai_service_metrics",
            "observability",
            "MUST",
            probes=[
                _probe(
                    "ai_service_metrics.scrape",
                    "TestKaicAIServiceMetrics/Scrape",
                    "error",
                    "00:04.080",
                    30.0,
                    reason="Prometheus query timed out",
                ),
            ],
        ),
        RequirementResult(
            "driver_runtime_management",
            "accelerators",
            "SHOULD",
            probes=[
                _probe(
                    "driver_runtime_management.versions",
                    "TestKaicDriverRuntimeManagement/VersionsMatch",
                    "unknown",
                    "00:34.080",
                    0.5,
                    reason="unrecognised accelerator vendor",
                ),
            ],
        ),
        RequirementResult("gang_scheduling", "schedulingOrchestration", "MUST"),
    ]
    report = Report(
        run={
            "id": "r1",
            "mode": "non-disruptive",
            "startedAt": "2026-09-15T09:59:59.500Z",
            "finishedAt": "2026-09-15T10:00:35.000Z",
            "complete": True,
            "incompleteReason": "",
        },
        kaic={"kaic": "0.1.0", "python": "3.12.3"},
        profile={"id": "ai-v1.0", "version": "1.0.0", "path": "profiles/ai-v1.0.yaml", "sha256": "0" * 64},
        checklist={
            "detected": "1.36",
            "chosen": "1.35",
            "reason": "--kubernetes-version 1.35",
            "sha256": "1" * 64,
        },
        cluster={"context": "kind-kaic", "server": "https://127.0.0.1:6443", "serverVersion": "v1.36.1"},
        requirements=requirements,
    )
    for req in report.requirements:
        if req.probes:
            req.settle()
    verdict = report.judge(complete=True)
    report.verdict = {
        "result": verdict.value,
        "exitCode": int(VERDICT_EXIT[verdict]),
        "summary": verdict.value,
        "warnings": ["cluster_autoscaling is a MUST judged not-applicable"],
    }
    return report


@pytest.fixture
def sample_report() -> Report:
    return build_sample_report()


class RunPair:
    """OLD and NEW runs of the sample cluster for `kaic diff`; OLD passes secure_accelerator_access, a MUST
    that can regress. Change either with `set`, then `save` both as result folders."""

    REGRESSING = "secure_accelerator_access.negative-isolation"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.old, self.new = build_sample_report(), build_sample_report()
        self.new.run["id"] = "r2"
        for report in (self.old, self.new):
            self.set(report, self.REGRESSING, "passed")

    @staticmethod
    def set(report: Report, probe_name: str, outcome: str, reason: str = "") -> None:
        """Change one probe's outcome and settle its requirement again, as a rerun would."""
        req = report.requirement(probe_name.split(".")[0])
        for probe in req.probes:
            if probe.name == probe_name:
                probe.outcome, probe.reason = outcome, reason  # type: ignore[assignment]
                probe.__post_init__()
        req.settle()

    @staticmethod
    def record_levels(report: Report, **extra: str) -> Report:
        """Record the checklist's levels, as kaic run does: the report's requirements plus `extra`
        (id=level)."""
        report.checklist["levels"] = {r.id: r.level for r in report.requirements} | extra
        return report

    def save(self) -> list[Path]:
        """Both runs as result folders holding report.json: [OLD, NEW]."""
        from kaic.results.report import save

        folders = [self.root / "before", self.root / "after"]
        for folder, report in zip(folders, (self.old, self.new), strict=True):
            folder.mkdir(exist_ok=True)
            save(report, folder)
        return folders

    def diff(self, *args: str, today: str = "2026-09-20") -> Any:
        """`kaic diff OLD NEW ARGS` on the saved runs, judging waivers on a fixed day."""
        from click.testing import CliRunner

        from kaic.cli.diff import diff

        return CliRunner().invoke(diff, [*map(str, self.save()), "--today", today, *args])


@pytest.fixture
def run_pair(tmp_path: Path) -> RunPair:
    return RunPair(tmp_path)


def build_certified_report() -> Report:
    """The sample run as a complete `certified` run judged against the 1.37 checklist, plus the outcomes a
    submission renders differently: passes under an upstream and a kaic test name, a SHOULD that passed in
    part, a not-applicable SHOULD and a SHOULD that failed outright."""
    from kaic.profile import load_profile

    report = build_sample_report()
    report.run["mode"] = "certified"
    report.checklist.update(
        {
            "chosen": "1.37",
            "reason": "server version 1.37",
            "sha256": load_profile("ai-v1.0").checklists["1.37"],
        }
    )
    added = [
        (
            "ai_inference",
            "networking",
            "MUST",
            [("gateway", "TestKaicGatewayRouting/WeightedSplit", "passed")],
        ),
        (
            "robust_controller",
            "operator",
            "MUST",
            [
                ("pods", "TestRobustCRDControllerOperation/OperatorPodsRunning", "passed"),
                ("crd", "TestRobustCRDControllerOperation/CRDRegistered", "passed"),
            ],
        ),
        (
            "workload_sandboxing",
            "security",
            "SHOULD",
            [
                ("schedule", "TestWorkloadSandboxing/SchedulingAndExecution", "passed"),
                ("process", "TestWorkloadSandboxing/ProcessIsolation", "failed"),
            ],
        ),
        (
            "gpu_sharing",
            "accelerators",
            "SHOULD",
            [("partitions", "TestKaicGpuSharing/Partitions", "not-applicable")],
        ),
        (
            "virtualized_accelerator",
            "accelerators",
            "SHOULD",
            [("vgpu", "TestKaicVirtualizedAccelerator/VGPU", "failed")],
        ),
    ]
    for n, (req_id, category, level, probes) in enumerate(added):
        req = RequirementResult(req_id, category, level)
        for m, (name, test, outcome) in enumerate(probes):
            reason = "" if outcome == "passed" else f"{name} probe: {outcome} on purpose"
            req.probes.append(
                _probe(f"{req_id}.{name}", test, outcome, f"00:{35 + n}.{m}00", 0.1, reason=reason)
            )
        req.settle()
        report.requirements.append(req)
    return report


@pytest.fixture
def certified_report() -> Report:
    return build_certified_report()


@pytest.fixture(scope="session")
def report_builders() -> tuple[Any, Any]:
    """build_sample_report and build_certified_report, for module- and session-scoped fixtures."""
    return build_sample_report, build_certified_report
