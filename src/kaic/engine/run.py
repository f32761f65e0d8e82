"""The probe engine: profile → plan → preflight → facts → probes (pytest) → results → reports.

pytest runs in this process, once: probes are tests in `conformance/`, the module plugin gives
fixtures, the in-process collector turns reports into results. The report is saved after every probe and on
every exit path (interrupt, run timeout, crash), marked incomplete until the run ends normally.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kaic import __version__
from kaic.engine.collector import Collector
from kaic.engine.plan import (
    Plan,
    PlanError,
    RunOptions,
    plan_for_server,
    plan_only,
    probe_dirs,
    server_minor,
)
from kaic.kube import cleanup
from kaic.kube import client as kube
from kaic.kube import facts as facts_mod
from kaic.kube.preflight import run_preflight
from kaic.probe import ProbeSpec
from kaic.profile import ProfileError
from kaic.results import report as results
from kaic.results.outcomes import VERDICT_EXIT, ExitCode, Outcome, Verdict
from kaic.results.report import ProbeResult, Report, RequirementResult
from kaic.results.run_dir import FACTS_FILE, PYTEST_LOG_FILE, REPORT_FILE, RUN_SETTINGS_FILE

if TYPE_CHECKING:
    from kaic.engine.rerun import Rerun

QUICK_UNDECIDED = "quick mode runs discovery only; run non-disruptive or certified for a verdict"


class Reporter(Protocol):
    """What the engine tells whoever shows its progress (kaic.cli.progress draws it for people)."""

    def start(self, total: int) -> None: ...
    def probe_started(self, spec: ProbeSpec) -> None: ...
    def probe_finished(self, result: ProbeResult) -> None: ...
    def note(self, message: str) -> None: ...
    def waiting(self, message: str) -> AbstractContextManager[object]: ...
    def stop(self) -> None: ...


class RunError(Exception):
    """Bad input to a run (usage: exit 2)."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id() -> str:
    """Short, lowercase, DNS-label safe: it goes into namespace names and label values."""
    return secrets.token_hex(4)


def default_output_dir(run_id: str) -> Path:
    """Named by time and run id: runs started in the same second never meet."""
    return Path(f"kaic-results-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{run_id}")


def prepare_output_dir(path: Path) -> bool:
    """Claim a new or empty folder for one run; True when kaic created it (and so may remove it).

    kaic never overwrites an earlier run's results, and two runs never share a folder: the folder is made
    with a plain mkdir, and the run's report.json is created exclusively (O_EXCL) at once, so of two runs
    given the same empty folder only one gets it. Any problem is a RunError naming --output-dir and the path.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        made = _new_or_empty(path)
        try:
            os.close(os.open(path / REPORT_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            raise RunError(f"--output-dir {path}: taken by another run; choose a new folder") from None
    except OSError as exc:
        raise RunError(
            f"--output-dir {path}: cannot create the results folder there ({exc.strerror or exc}); "
            "choose a writable folder"
        ) from None
    return made


def _new_or_empty(path: Path) -> bool:
    """mkdir, without exist_ok: True when this call made the folder; an existing one must be an empty
    folder."""
    try:
        path.mkdir()
        return True
    except FileExistsError:
        if not path.is_dir() or any(path.iterdir()):
            raise RunError(f"--output-dir {path}: exists and is not empty; choose a new folder") from None
        return False


def release_output_dir(path: Path, made: bool) -> None:
    """Undo prepare_output_dir: a run refused after claiming its folder leaves nothing behind."""
    with contextlib.suppress(OSError):
        (path / REPORT_FILE).unlink()
        if made:
            path.rmdir()


def _versions() -> dict[str, str]:
    found = {"kaic": __version__, "python": platform.python_version()}
    for dist in ("pytest", "pytest-timeout", "kubernetes"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    return found


def pytest_args(directories: list[Path], *extra: str) -> list[str]:
    """pytest isolated from the user's setup: no ini file, no autoloaded plugins, no cache, no
    PYTEST_ADDOPTS."""
    os.environ.pop("PYTEST_ADDOPTS", None)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return [
        *(str(d) for d in directories),
        "--rootdir",
        str(directories[0]),
        "-c",
        os.devnull,
        "--import-mode=importlib",
        "-p",
        "no:cacheprovider",
        "-p",
        "pytest_timeout",
        "-p",
        "kaic.engine.plugin",
        "--timeout-method=signal",
        "--strict-markers",
        "-v",
        *extra,
    ]


def skeleton(plan: Plan, run_id: str, opts: RunOptions, detected: str | None, why: str) -> Report:
    profile = plan.profile
    return Report(
        run={
            "id": run_id,
            "mode": plan.mode,
            "startedAt": now(),
            "finishedAt": None,
            "complete": False,
            "incompleteReason": "run in progress",
            "focus": list(opts.focus),
            "skip": list(opts.skip),
            "excluded": plan.excluded,
            "settings": opts.settings.to_json(),
            "probeDirs": [str(Path(d).resolve()) for d in opts.probe_dirs],
        },
        kaic=_versions(),
        profile={
            "id": profile.id,
            "version": profile.version,
            "path": str(profile.source),
            "sha256": profile.sha256,
        },
        checklist={
            "detected": detected,
            "chosen": plan.version,
            "reason": why,
            "sha256": profile.checklists.get(plan.version, ""),
            "levels": {req.id: level for req, level in profile.for_version(plan.version)},
        },
        requirements=[
            RequirementResult(
                id=req.id,
                category=req.category,
                level=level,
                conditional=req.conditional or "",
                upstream_test=req.upstream_test or "",
            )
            for req, level in plan.requirements
        ],
    )


@contextlib.contextmanager
def _interrupts(run_timeout_s: float | None) -> Iterator[dict[str, bool]]:
    """SIGINT, SIGTERM and the run timeout arrive as KeyboardInterrupt, which pytest turns into an orderly
    stop."""
    state = {"timed_out": False}

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def on_timeout() -> None:
        state["timed_out"] = True
        os.kill(os.getpid(), signal.SIGINT)  # a real signal: it also interrupts a probe blocked in a call

    previous = signal.signal(signal.SIGTERM, on_term)
    # A SIGINT ignored from birth (a command started with `&` by a script, nohup) would swallow both an
    # interrupt and the run timeout, which interrupts with SIGINT too: during the run it always interrupts.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(run_timeout_s, on_timeout) if run_timeout_s else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        yield state
    finally:
        if timer:
            timer.cancel()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


class Run:
    def __init__(self, opts: RunOptions, reporter: Reporter, rerun: Rerun | None = None) -> None:
        """Check every input (profile, selection, probe modules, kubeconfig, output folder) before the run
        claims its folder: a bad one raises ProfileError, PlanError, KubeconfigError or RunError (exit 2).

        With `rerun` (`--rerun-failed`, whose options `opts` are) only the probes its source did not pass run;
        the source's other results are carried over into this run's report."""
        self.opts = opts
        self.reporter = reporter
        self.rerun = rerun
        self.id = opts.run_id or new_run_id()
        # Bad flags fail before anything is written; the plan holds unless the server picks another checklist.
        self.plan, self.checklist_reason = plan_only(opts)
        self.cluster = kube.connect(opts.kubeconfig, opts.context, opts.request_timeout)  # reads files only
        self.out_dir = opts.output_dir or default_output_dir(self.id)
        self.made_out_dir = prepare_output_dir(self.out_dir)
        self.report: Report | None = None
        self.cleanup_kinds: frozenset[str] = frozenset()  # set once planned
        self.probes_started = False  # until then the run has created nothing in the cluster

    def execute(self) -> ExitCode:
        """Run and always leave a valid report; the exit code follows the outcome table."""
        complete, why_incomplete = False, ""
        usage_error = False
        self.reporter.note(self.cluster.connecting())
        try:
            with _interrupts(self.opts.run_timeout_s) as state:
                try:
                    complete, why_incomplete = self._run(self.cluster)
                except KeyboardInterrupt:
                    complete, why_incomplete = False, "interrupted"
                if state["timed_out"]:  # the timer interrupts like Ctrl-C; say which it was
                    complete, why_incomplete = False, "run timeout"
        except kube.AccessError as exc:
            why_incomplete = f"preflight: {exc}"
        except (ProfileError, PlanError):
            usage_error = True  # e.g. --focus names a requirement the detected version's checklist lacks
            release_output_dir(self.out_dir, self.made_out_dir)
            raise
        except Exception as exc:
            why_incomplete = f"internal error: {type(exc).__name__}: {exc}"  # the CLI saves the traceback
            raise
        finally:
            if not usage_error:
                self._finish(self.cluster, complete, why_incomplete)
        assert self.report is not None
        return ExitCode(self.report.verdict["exitCode"])

    def _run(self, cluster: kube.Cluster) -> tuple[bool, str]:
        opts = self.opts
        detected = None
        version_error = ""
        try:
            with self.reporter.waiting(f"waiting for the API server at {cluster.server()}"):
                v = cluster.get("/version")
            detected = server_minor(v)
        except Exception as exc:  # noqa: BLE001 - an unreachable API is a preflight failure, reported below
            version_error = kube.describe_error(exc)
        plan, why = plan_for_server(self.plan, opts, detected)
        plan = self._start_report(plan, detected, why)
        self.cleanup_kinds = plan.cleanup_kinds()
        assert self.report is not None
        self.report.cluster = {"context": cluster.context, "server": cluster.server()}
        self._save()
        if version_error:
            return False, f"preflight: API server {cluster.server()} unreachable: {version_error}"
        self.reporter.note(
            f"run {self.id}: {plan.profile.id}, checklist {plan.version} ({why}), mode {plan.mode}"
        )
        with self.reporter.waiting(f"preflight: checking {len(plan.rbac())} permissions"):
            preflight = run_preflight(cluster, plan.rbac())
        self.report.run["preflight"] = {
            "ok": preflight.ok,
            "missing": preflight.missing,
            "error": preflight.error,
        }
        if not preflight.ok:
            return False, f"preflight: {preflight.problem()}"
        with self.reporter.waiting("discovering the cluster's facts"):
            facts = facts_mod.discover(cluster)
        self.report.facts = facts
        self.report.cluster.update(
            {"serverVersion": (facts.get("version") or {}).get("gitVersion"), "uid": facts.get("clusterUID")}
        )
        results.write_json_atomic(self.out_dir / FACTS_FILE, facts)
        self._save()
        if self.rerun and (other := self.rerun.other_cluster(facts.get("clusterUID"))):
            return False, other
        return self._probes(plan)

    def _start_report(self, plan: Plan, detected: str | None, why: str) -> Plan:
        """The report's skeleton; a rerun's also names its source and holds the results carried over from it.
        Returns the plan to run: the probes a rerun runs again, else all."""
        self.report = skeleton(plan, self.id, self.opts, detected, why)
        if self.rerun is None:
            return plan
        plan, carried = self.rerun.split(plan)
        self.report.run["rerunOf"] = self.rerun.block(plan)
        for result in carried:
            self.report.requirement(result.requirement).probes.append(result)
        for requirement in self.report.requirements:
            if requirement.probes:
                requirement.settle()
        self.reporter.note(
            f"rerun of run {self.rerun.run_id}: {len(plan.probes)} probe(s) to run again, "
            f"{len(carried)} result(s) carried over"
        )
        return plan

    def _probes(self, plan: Plan) -> tuple[bool, str]:
        import pytest

        settings = self.out_dir / RUN_SETTINGS_FILE
        lanes = plan.lanes()
        results.write_json_atomic(
            settings,
            {
                "id": self.id,
                "mode": plan.mode,
                "checklist": plan.version,
                "out_dir": str(self.out_dir.resolve()),
                "kubeconfig": self.opts.kubeconfig or kube.default_kubeconfig(),
                "context": self.opts.context,
                "request_timeout": self.opts.request_timeout,
                "settings": self.opts.settings.to_json(),
                "probes": {p.name: {"timeout": self._timeout(p), "lane": lanes[p.name]} for p in plan.probes},
            },
        )
        collector = Collector(plan.probes, self.reporter.probe_started, self._record, lanes)
        workers = plan.workers(self.opts.parallel)
        concurrency = ["-p", "xdist.plugin", "-n", str(workers), "--dist", "loadscope"] if workers > 1 else []
        args = pytest_args(probe_dirs(self.opts.probe_dirs), "--kaic-run", str(settings), *concurrency)
        self.reporter.start(len(plan.probes))
        self.probes_started = True
        log_path = self.out_dir / PYTEST_LOG_FILE
        with log_path.open("w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            code = pytest.main(args, plugins=[collector])
        interrupted = code == pytest.ExitCode.INTERRUPTED
        for spec in collector.missing():
            why = (
                "interrupted before it finished"
                if interrupted
                else f"produced no result (see {log_path.name})"
            )
            self._record(_unfinished(spec, why))
        if interrupted:
            raise KeyboardInterrupt
        if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
            # pytest.main returns a plain int only for a code outside ExitCode (a plugin's own)
            ended = code.name if isinstance(code, pytest.ExitCode) else f"exit code {code}"
            return False, f"pytest ended with {ended} (see {log_path.name})"
        return True, ""

    def _timeout(self, spec: ProbeSpec) -> float:
        cap = self.opts.probe_timeout_s
        return spec.timeout_s if cap is None else min(cap, spec.timeout_s)

    def _record(self, result: ProbeResult) -> None:
        assert self.report is not None
        requirement = self.report.requirement(result.requirement)
        requirement.probes.append(result)
        requirement.settle()
        self._save()
        self.reporter.probe_finished(result)

    def _save(self) -> None:
        if self.report is not None:
            results.save(self.report, self.out_dir)

    def _finish(self, cluster: kube.Cluster | None, complete: bool, why_incomplete: str) -> None:
        """Clean up, judge and write every artifact, whatever happened before."""
        if self.report is None:  # the API never answered: record the plan for the requested/newest version
            self._start_report(self.plan, None, self.checklist_reason)
        assert self.report is not None
        report = self.report
        if cluster is not None and self.probes_started:  # before the probes kaic has created nothing
            try:
                deleted = cleanup.sweep(
                    cluster, self.id, self.opts.settings.cleanup_timeout_s, self.cleanup_kinds
                )
                report.run["cleanup"] = {"deleted": deleted, "error": ""}
            except Exception as exc:  # noqa: BLE001 - a failed sweep is reported, and `kaic cleanup` finishes it
                report.run["cleanup"] = {"deleted": [], "error": kube.describe_error(exc)}
        finalize(report, complete, why_incomplete)
        self._save()
        from kaic.results.writers import write_all

        write_all(report, self.out_dir)


def finalize(report: Report, complete: bool, why_incomplete: str) -> None:
    """Settle every requirement, judge the run and record the verdict with its warnings."""
    quick = report.run["mode"] == "quick"
    for req in report.requirements:
        if req.probes or complete:
            req.settle(QUICK_UNDECIDED) if quick else req.settle()
    report.run.update(
        {"finishedAt": now(), "complete": complete, "incompleteReason": "" if complete else why_incomplete}
    )
    warnings = [
        f"{r.id} is a MUST judged not-applicable: {r.reason}"
        for r in report.requirements
        if r.level == "MUST" and r.outcome is Outcome.NOT_APPLICABLE
    ]
    if (report.run.get("cleanup") or {}).get("error"):
        warnings.append(
            f"cleanup incomplete: {report.run['cleanup']['error']}; "
            f"run `kaic cleanup --run-id {report.run['id']}`"
        )
    if quick:
        discovered = complete and all(p.outcome is not Outcome.ERROR for p in report.probes())
        report.verdict = {
            "result": None,
            "exitCode": int(ExitCode.CONFORMANT if discovered else ExitCode.INCOMPLETE),
            "summary": "quick mode: discovery only, no verdict" if discovered else "discovery incomplete",
            "warnings": warnings,
        }
        return
    verdict = report.judge(complete)
    left_out = report.excluded_musts()
    excluded = report.run.get("excluded") or {}
    named = ", ".join(f"{r} ({excluded[r]})" for r in left_out)
    if left_out and verdict is not Verdict.PARTIAL:
        warnings.append(f"MUST requirements left out of this run, so not judged: {named}")
    summary = verdict.value if complete else f"{verdict.value}: {why_incomplete}"
    if verdict is Verdict.PARTIAL:
        summary = f"partial: every selected MUST passed, but these MUSTs did not run: {named}"
    report.verdict = {
        "result": verdict.value,
        "exitCode": int(VERDICT_EXIT[verdict]),
        "summary": summary,
        "mustsNotRun": left_out,
        "warnings": warnings,
    }


def _unfinished(spec: ProbeSpec, why: str) -> ProbeResult:
    return ProbeResult(
        name=spec.name,
        requirement=spec.requirement,
        test=spec.test,
        kind=spec.kind,
        outcome=Outcome.ERROR,
        reason=f"probe {why}",
        started_at=now(),
    )
