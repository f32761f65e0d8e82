"""Every artifact derived from a report: go-test events and log, two JUnit files, the summary.

They are all recomputed from `report.json` alone, so a saved run can be re-rendered and the artifacts can
never disagree with the result tree. Each file is replaced atomically.
"""

from __future__ import annotations

from pathlib import Path

from kaic.results.atomic import atomic_write_text
from kaic.results.report import Report
from kaic.results.run_dir import E2E_LOG_FILE, JUNIT_FILE, KAIC_JUNIT_FILE, RESULTS_FILE, SUMMARY_FILE
from kaic.results.writers import gotest, junit, summary


def tool_version(report: Report) -> str:
    """What stands in junit.xml's `go.version`: the tool and runtime that really produced the results."""
    kaic, python = report.kaic.get("kaic", "unknown"), report.kaic.get("python", "")
    return f"kaic {kaic}" + (f" (python {python})" if python else "")


def write_all(report: Report, out_dir: Path, junit_strict: bool = False) -> list[Path]:
    """Write results.json, e2e.log, junit.xml, kaic-junit.xml and summary.md into `out_dir`."""
    stream = gotest.events(report)
    texts = {
        RESULTS_FILE: gotest.results_json(stream),
        E2E_LOG_FILE: gotest.verbose_log(stream),
        JUNIT_FILE: junit.gotest_junit(stream, tool_version(report)),
        KAIC_JUNIT_FILE: junit.kaic_junit(report, strict=junit_strict),
        SUMMARY_FILE: summary.markdown(report),
    }
    return [atomic_write_text(out_dir / name, text) for name, text in texts.items()]
