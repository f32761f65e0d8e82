"""Live progress for people: a rich bar on a terminal, one plain line per event elsewhere (CI, pipes).

Progress is driven by the engine's own events, never scraped from logs, and goes to stderr (a dup of the
original fd, so pytest's output capture cannot freeze it); stdout stays for machine output.
"""

from __future__ import annotations

import contextlib
import os
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from kaic.probe import ProbeSpec
from kaic.results.outcomes import Outcome
from kaic.results.report import ProbeResult

if TYPE_CHECKING:
    # The engine's protocol, for annotations only: loading the engine here would slow every command.
    from kaic.engine.run import Reporter

STYLE = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "bold red",
    Outcome.ERROR: "bold magenta",
    Outcome.UNKNOWN: "yellow",
    Outcome.NOT_APPLICABLE: "cyan",
}


def human_stream() -> IO[str]:
    """stderr as it is now, on its own fd, so later fd-level capture does not swallow it."""
    return os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")


def make_reporter(stream: IO[str], no_color: bool = False) -> Reporter:
    console = Console(file=stream, no_color=no_color or None, highlight=False)
    if console.is_terminal and not os.environ.get("CI"):
        return RichReporter(console)
    return PlainReporter(stream)


def _line(result: ProbeResult) -> str:
    reason = f" — {result.reason}" if result.reason else ""
    return f"{result.outcome.value:<14} {result.name} ({result.duration_s:.2f}s){reason}"


class PlainReporter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream, self.total, self.done = stream, 0, 0

    def start(self, total: int) -> None:
        self.total = total
        print(f"kaic: running {total} probes", file=self.stream, flush=True)

    def probe_started(self, spec: ProbeSpec) -> None:
        print(f"[{self.done + 1:>3}/{self.total}] start          {spec.name}", file=self.stream, flush=True)

    def probe_finished(self, result: ProbeResult) -> None:
        self.done += 1
        print(f"[{self.done:>3}/{self.total}] {_line(result)}", file=self.stream, flush=True)

    def note(self, message: str) -> None:
        print(f"kaic: {message}", file=self.stream, flush=True)

    def waiting(self, message: str) -> AbstractContextManager[object]:
        """No spinner in a log: the lines before and after say what happened."""
        return contextlib.nullcontext()

    def stop(self) -> None:
        self.stream.flush()


class RichReporter:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.bar.add_task("probes", total=0)

    def start(self, total: int) -> None:
        self.bar.update(self.task, total=total)
        self.bar.start()

    def probe_started(self, spec: ProbeSpec) -> None:
        self.bar.update(self.task, description=spec.name)

    def probe_finished(self, result: ProbeResult) -> None:
        self.bar.advance(self.task)
        self.console.print(_line(result), style=STYLE[result.outcome], markup=False)

    def note(self, message: str) -> None:
        self.console.print(f"kaic: {message}", markup=False)

    def waiting(self, message: str) -> AbstractContextManager[object]:
        """A spinner while kaic waits on the API server (preflight), so a slow server never looks hung."""
        return self.console.status(Text(message))

    def stop(self) -> None:
        self.bar.stop()
