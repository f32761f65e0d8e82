"""Property: whatever a user hands kaic's loaders (profile, config, waivers, report), they load or raise
kaic's own input error, which commands turn into exit 2; never any other exception (a traceback, exit 3).

Documents come from three sources: arbitrary bytes, arbitrary YAML/JSON values, and kaic's own valid
documents with one value somewhere replaced by an arbitrary one (these get past the first checks, where the
interesting failures hide).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaic.cli import config
from kaic.cli.main import main
from kaic.profile import ProfileError, builtin_dir, load_profile
from kaic.results import report as results
from kaic.results import waivers

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["", "1.35", "MUST", "passed", "2026-01-01", "ai-v1.0", "-5", "5m", "true", "a=b"]),
)
keys = st.one_of(
    st.text(max_size=12), st.integers(), st.sampled_from(["mode", "run", "timeout", "waivers", "id"])
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)


def _yaml(value: Any) -> bytes:
    return yaml.safe_dump(value, allow_unicode=True).encode()


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a document a value could be replaced."""
    yield at
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*at, i))


def _replace(doc: Any, at: tuple[Any, ...], new: Any) -> Any:
    if not at:
        return new
    copy = _deep(doc)
    node = copy
    for part in at[:-1]:
        node = node[part]
    node[at[-1]] = new
    return copy


def _deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value


def mutants(valid: Any) -> st.SearchStrategy[Any]:
    """The valid document with one value, anywhere in it, replaced by an arbitrary one."""
    places = list(_paths(valid))
    return st.builds(lambda at, new: _replace(valid, at, new), st.sampled_from(places), values)


def documents(valid: Any, dump: Callable[[Any], bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=200), values.map(dump), mutants(valid).map(dump))


def loads_or_refuses(load: Callable[[Path], Any], error: type[Exception], data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        try:
            load(path)
        except error as exc:
            assert str(exc).strip() and str(path) in str(exc)  # the message names the file


PROFILE = yaml.safe_load((builtin_dir() / "ai-v1.0.yaml").read_text(encoding="utf-8"))
CONFIG = {
    "mode": "quick",
    "run": {"timeout": "5m", "parallel": 2, "focus": ["gang_scheduling"]},
    "profiles": {"show": {"output": "json"}},
    "context": "c",
}
WAIVERS = {
    "waivers": [
        {
            "requirement": "gang_scheduling",
            "probe": "fitting-gang",
            "reason": "r",
            "owner": "o",
            "expires": "2030-01-01",
        }
    ]
}


@pytest.fixture(scope="module")
def report_doc(report_builders: tuple[Any, Any]) -> Any:
    return report_builders[0]().to_dict()


@SETTINGS
@given(documents(PROFILE, _yaml))
def test_profile_loader(data: bytes) -> None:
    loads_or_refuses(load_profile, ProfileError, data, ".yaml")


@SETTINGS
@given(documents(CONFIG, _yaml))
def test_config_loader(data: bytes) -> None:
    loads_or_refuses(lambda path: config.load(path, main), config.ConfigError, data, ".yaml")


@SETTINGS
@given(documents(WAIVERS, _yaml))
def test_waivers_loader(data: bytes) -> None:
    loads_or_refuses(waivers.load, waivers.WaiverError, data, ".yaml")


@SETTINGS
@given(data=st.data())
def test_report_loader(report_doc: Any, data: st.DataObject) -> None:
    raw = data.draw(documents(report_doc, lambda v: json.dumps(v).encode()))
    loads_or_refuses(results.load, results.ReportError, raw, ".json")


def test_the_valid_documents_load(report_doc: Any, tmp_path: Path) -> None:
    """The mutants start from documents that load: a refusal is the mutation's doing."""
    (tmp_path / "p.yaml").write_bytes(_yaml(PROFILE))
    (tmp_path / "c.yaml").write_bytes(_yaml(CONFIG))
    (tmp_path / "w.yaml").write_bytes(_yaml(WAIVERS))
    (tmp_path / "r.json").write_text(json.dumps(report_doc))
    load_profile(tmp_path / "p.yaml")
    assert config.load(tmp_path / "c.yaml", main)["run"]["timeout"] == "5m"
    assert len(waivers.load(tmp_path / "w.yaml")) == 1
    assert results.load(tmp_path / "r.json").to_dict() == report_doc
