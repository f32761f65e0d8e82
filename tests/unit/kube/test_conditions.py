"""Status conditions read the one way every caller relies on."""

import pytest

from kaic.kube.conditions import condition, is_ready, is_true


def with_conditions(*pairs):
    return {"status": {"conditions": [{"type": kind, "status": status} for kind, status in pairs]}}


def test_condition_reads_a_status_block_and_is_empty_when_absent():
    status = with_conditions(("Accepted", "False"), ("Programmed", "Unknown"))["status"]
    assert condition(status, "Accepted") == "False"
    assert condition(status, "Programmed") == "Unknown"
    assert condition(status, "ResolvedRefs") == ""
    assert condition({"conditions": None}, "Accepted") == ""


@pytest.mark.parametrize(
    ("obj", "ready"),
    [
        (with_conditions(("Ready", "True")), True),
        (with_conditions(("MemoryPressure", "True"), ("Ready", "False")), False),
        (with_conditions(("Ready", "Unknown")), False),
        (with_conditions(), False),
        ({"status": None}, False),
        ({}, False),
    ],
)
def test_ready_only_when_the_ready_condition_is_true(obj, ready):
    assert is_ready(obj) is ready
    assert is_true(obj, "Ready") is ready
