"""The runner pod's program: `python3 -m kaic.incluster.runner OPTIONS_JSON CLIENT_VERSION` (`args`).

It runs the engine exactly as `kaic run` does, with the options the client planned with, writes the same
progress lines to its log (what `kaic logs` and a following client show), keeps `kaic status` current after
each probe, and at the end publishes the results folder (`store`). It exits 0 whenever the results were
published, whatever the verdict: the verdict's exit code travels in the manifest, and a Job never retries.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

from kaic import __version__
from kaic.cli.progress import make_reporter
from kaic.engine.plan import PlanError, RunOptions
from kaic.engine.run import Reporter, Run, RunError, now
from kaic.incluster.objects import JOB_UID_ENV, RESULTS_DIR
from kaic.incluster.store import Store
from kaic.kube import client as kube
from kaic.probe import ProbeSpec
from kaic.profile import ProfileError
from kaic.results.outcomes import ExitCode
from kaic.results.report import ProbeResult
from kaic.results.run_dir import REPORT_FILE

RUN_FOLDER = Path(RESULTS_DIR) / "run"


class Publishing:
    """A reporter that shows progress as a local run does and stores the counts for `kaic status`."""

    def __init__(self, inner: Reporter, store: Store, stream: IO[str]) -> None:
        self.inner, self.store, self.stream = inner, store, stream
        self.status: dict[str, Any] = {
            "phase": "running",
            "startedAt": now(),
            "total": 0,
            "done": 0,
            "outcomes": {},
        }
        self.outcomes: Counter[str] = Counter()

    def publish(self, **changes: Any) -> None:
        self.status.update(changes, updatedAt=now())
        try:
            self.store.status(self.status)
        except Exception as exc:  # noqa: BLE001 - the run matters more than its progress report
            print(
                f"kaic: could not store the status: {kube.describe_error(exc)}", file=self.stream, flush=True
            )

    def start(self, total: int) -> None:
        self.inner.start(total)
        self.publish(total=total)

    def probe_started(self, spec: ProbeSpec) -> None:
        self.inner.probe_started(spec)

    def probe_finished(self, result: ProbeResult) -> None:
        self.inner.probe_finished(result)
        self.outcomes[result.outcome.value] += 1
        self.publish(done=self.status["done"] + 1, outcomes=dict(self.outcomes))

    def note(self, message: str) -> None:
        self.inner.note(message)

    def waiting(self, message: str) -> AbstractContextManager[object]:
        return self.inner.waiting(message)

    def stop(self) -> None:
        self.inner.stop()


def args(opts: RunOptions) -> list[str]:
    """The runner's arguments: the options, and the kaic version that planned them (the client bound the RBAC
    its own plan needs; another version's probes may need other rules)."""
    return [json.dumps(opts.to_json()), __version__]


def main(argv: list[str]) -> int:
    opts = RunOptions.from_json(json.loads(argv[0]))
    opts.output_dir = RUN_FOLDER
    assert opts.run_id, "the client names the run"
    stream = sys.stderr
    store = Store(kube.connect(request_timeout=opts.request_timeout), opts.run_id, os.environ[JOB_UID_ENV])
    reporter = Publishing(make_reporter(stream, no_color=True), store, stream)
    reporter.publish()
    code, error = ExitCode.INCOMPLETE, ""
    if argv[1] != __version__:
        error = (
            f"the runner image has kaic {__version__}, the client that planned the run kaic {argv[1]}; "
            f"pass a --runner-image of kaic {argv[1]}"
        )
        print(f"kaic: error: {error}", file=stream, flush=True)
        reporter.publish(phase="failed", finishedAt=now(), exitCode=int(ExitCode.USAGE), error=error)
        return 1
    try:
        run = Run(opts, reporter)
        code = run.execute()
        from rich.console import Console

        from kaic.results.writers.summary import render_summary

        assert run.report is not None
        render_summary(run.report, Console(file=stream, no_color=True))
    except (RunError, PlanError, ProfileError, kube.KubeconfigError) as exc:
        code, error = ExitCode.USAGE, str(exc)
        print(f"kaic: error: {error}", file=stream, flush=True)
    except Exception as exc:  # noqa: BLE001 - the run's folder still holds what it had; publish that
        code, error = ExitCode.INCOMPLETE, f"internal error: {type(exc).__name__}: {exc}"
        traceback.print_exc(file=stream)
    if not (RUN_FOLDER / REPORT_FILE).exists():
        reporter.publish(phase="failed", finishedAt=now(), exitCode=int(code), error=error)
        return 1
    try:
        manifest = store.publish(RUN_FOLDER, int(code))
    except Exception as exc:  # noqa: BLE001 - say why in the status, which `kaic status` shows
        error = f"storing the results failed: {kube.describe_error(exc)}"
        print(f"kaic: error: {error}", file=stream, flush=True)
        reporter.publish(phase="failed", finishedAt=now(), exitCode=int(code), error=error)
        return 1
    reporter.publish(phase="finished", finishedAt=now(), exitCode=int(code), error=error)
    size = manifest["archive"]["size"]
    print(
        f"kaic: results stored ({len(manifest['files'])} files, {size} bytes); fetch them with "
        f"`kaic retrieve {opts.run_id}`",
        file=stream,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
