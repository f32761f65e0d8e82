"""The generated documents in docs/ are what their generator prints now, and every probe's docstring is the
test-plan block they collect."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kaic.cli import reference

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs"


@pytest.mark.parametrize(
    ("name", "generate"), [("cli.md", reference.cli_reference), ("test-plans.md", reference.plans_reference)]
)
def test_generated_doc_is_current(name: str, generate: Callable[[], str]) -> None:
    if (DOCS / name).read_text(encoding="utf-8") != generate():
        pytest.fail(f"docs/{name} is not what its generator prints now: run `make docs`", pytrace=False)


def probes() -> Iterator[object]:
    for path in sorted((REPO / "conformance").glob("test_*.py")):
        for found in reference.probe_docs(ast.parse(path.read_text(encoding="utf-8"))):
            yield pytest.param(found, id=f"{path.name}::{found.name}")


@pytest.mark.parametrize("probe", list(probes()))
def test_probe_docstring_is_its_test_plan(probe: reference.ProbeDoc) -> None:
    """Testname, then a Description; a behavioural probe's says what the cluster MUST do and its numbered
    steps follow (a discovery probe's records facts, never a verdict, so it has neither)."""
    head, _, _ = probe.doc.partition("\n\n")
    title, _, description = head.partition("\n")
    assert title.startswith(reference.TESTNAME), f"{probe.name}: the first line is {title!r}"
    assert description.startswith("Description: "), f"{probe.name}: the second line is {description!r}"
    if probe.kind == "behavioural":
        assert "MUST" in description, f"{probe.name}: the Description says nothing the cluster MUST do"
        assert any(line.startswith("1. ") for line in probe.doc.splitlines()), f"{probe.name}: no steps"


# "`--gang-bind-timeout` (120 s)" or "(`--gang-negative-window`, 30 s)": a flag named with its default
FLAG_DEFAULT = re.compile(r"`(--[a-z-]+)`(?: \(|, )(\d+) s\b")


@pytest.mark.parametrize("probe", list(probes()))
def test_a_flag_default_a_test_plan_names_is_the_flags(probe: reference.ProbeDoc) -> None:
    """A test plan may name a wait's flag with its default; the default is the setting's, so it must agree."""
    from kaic.cli.run import run

    ctx = run.make_context("run", [])
    defaults = {opt: ctx.params[p.name] for p in run.params if p.name for opt in p.opts}
    for flag, seconds in FLAG_DEFAULT.findall(" ".join(probe.doc.split())):
        assert defaults[flag] == float(seconds), f"{probe.name}: {flag} defaults to {defaults[flag]}s"
