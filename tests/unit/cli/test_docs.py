"""The generated documents in docs/ are what their generator prints now."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kaic.cli import reference

DOCS = Path(__file__).resolve().parents[3] / "docs"


@pytest.mark.parametrize(
    ("name", "generate"), [("cli.md", reference.cli_reference), ("test-plans.md", reference.plans_reference)]
)
def test_generated_doc_is_current(name: str, generate: Callable[[], str]) -> None:
    if (DOCS / name).read_text(encoding="utf-8") != generate():
        pytest.fail(f"docs/{name} is not what its generator prints now: run `make docs`", pytrace=False)
