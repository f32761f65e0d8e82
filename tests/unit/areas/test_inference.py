"""The pure part of the inference probes: the client's report, InferencePool detection, the endpoint picker's
verdict, the GAIE report, role selectors and request-id matching in logs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kaic.areas import inference
from kaic.areas.inference import Answer

SIMS = ("sim-0", "sim-1", "sim-2")


def client_log(results, model="kaic-model"):
    return f"noise\n{inference.BEGIN}\n{json.dumps({'model': model, 'results': results})}\n{inference.END}\n"


def test_the_client_report_is_read_between_markers():
    log = client_log(
        [
            {"requestId": "kaic-0", "status": 200, "pod": "sim-1"},
            {"requestId": "kaic-1", "status": 0, "pod": None, "error": "URLError()"},
        ]
    )
    model, answers = inference.parse_client(log)
    assert model == "kaic-model"
    assert answers == [Answer(200, "sim-1", "kaic-0"), Answer(0, None, "kaic-1", "URLError()")]
    assert inference.parse_client("Traceback ...") is None
    assert inference.parse_client(f"{inference.BEGIN}\nnot json\n{inference.END}") is None


def test_the_client_script_runs_and_reports_an_unreachable_target():
    env = {"TARGET": "http://127.0.0.1:9", "COUNT": "2", "MODEL": "m", "REQUEST_ID": "kaic-x"}
    out = subprocess.run(
        [sys.executable, "-c", inference.CLIENT],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    model, answers = inference.parse_client(out)
    assert model == "m" and [(a.status, a.request_id) for a in answers] == [(0, "kaic-x"), (0, "kaic-x")]


@pytest.mark.parametrize(
    ("crd", "version"),
    [
        ({"versions": ["v1"], "established": True}, "v1"),
        ({"versions": ["v1alpha2"], "established": True}, None),
        ({"versions": ["v1"], "established": False}, None),
    ],
)
def test_the_pool_api_counts_only_when_v1_is_served_and_established(crd, version):
    assert inference.pool_version({inference.POOL_CRD: crd}) == version


def test_the_x_k8s_pool_is_not_the_v1_api():
    assert (
        inference.pool_version(
            {"inferencepools.inference.networking.x-k8s.io": {"versions": ["v1alpha2"], "established": True}}
        )
        is None
    )


def test_a_picker_that_avoids_the_loaded_server_passes():
    answers = [Answer(200, SIMS[1 + i % 2], f"kaic-{i}") for i in range(20)]
    assert inference.picker_problems(answers, "sim-0", SIMS) == []
    assert inference.spread(answers) == {"sim-1": 10, "sim-2": 10}


def test_one_request_to_the_loaded_server_fails():
    answers = [Answer(200, "sim-1", "a"), Answer(200, "sim-0", "b")]
    (problem,) = inference.picker_problems(answers, "sim-0", SIMS)
    assert problem.startswith("the picker sent 1 of 2 requests to sim-0, whose KV cache is 95% full")


def test_failed_requests_and_strangers_fail():
    answers = [Answer(503, None, "a", ""), Answer(200, "other-pod", "b"), Answer(200, None, "c")]
    problems = inference.picker_problems(answers, "sim-0", SIMS)
    assert problems == [
        "1 of 3 requests failed (e.g. status 503)",
        "answered by no pool member: None, other-pod",
    ]


REPORT = """
apiVersion: gateway.networking.k8s.io/v1
kind: ConformanceReport
profiles:
- name: Gateway
  core: {result: %s, statistics: {Passed: 9, Failed: %d, Skipped: 1}}
"""


def test_the_suite_passes_only_when_every_profile_succeeds():
    assert inference.suite_result(REPORT % ("success", 0)) == (
        True,
        "Gateway: success (passed 9, failed 0, skipped 1)",
    )
    ok, summary = inference.suite_result(REPORT % ("failure", 2))
    assert not ok and "failed 2" in summary
    assert inference.suite_result("profiles: []") == (False, "the conformance report lists no profile")
    assert inference.suite_result("a: [")[0] is False


def test_roles_default_to_llm_d_prefill_and_decode():
    assert inference.parse_roles(None) == {
        "prefill": "llm-d.ai/role=prefill",
        "decode": "llm-d.ai/role=decode",
    }
    assert inference.parse_roles({"encode": "app=e"}) == {"encode": "app=e"}


def pod(name, phase, deleting=False):
    meta = {"name": name, **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})}
    return {"metadata": meta, "status": {"phase": phase}}


def test_only_running_pods_that_are_not_terminating_count():
    pods = [pod("b", "Running"), pod("a", "Running"), pod("c", "Pending"), pod("d", "Running", deleting=True)]
    assert inference.running(pods) == ["a", "b"]


def test_a_role_without_running_pods_is_named():
    assert inference.role_problems({"prefill": ["p-0"], "decode": []}) == ["role decode has no Running pod"]


@pytest.mark.parametrize(
    ("log", "found"),
    [
        ('{"msg":"handled","x-request-id":"kaic-r1-abc"}', True),
        ("INFO request_id=kaic-r1-abc done", True),
        ("kaic-r1-abc", True),
        ("INFO request_id=kaic-r1-abcdef done", False),  # another id that starts with this one
        ("INFO request_id=xkaic-r1-abc done", False),
        ("nothing here", False),
    ],
)
def test_a_log_names_the_request_id_only_as_a_whole_token(log, found):
    assert inference.mentions(log, "kaic-r1-abc") is found


def test_the_trace_needs_a_200_and_every_role():
    ok = Answer(200, None, "kaic-r1-abc")
    assert inference.trace_problems(ok, {"prefill": ["p"], "decode": ["d"]}, "kaic-r1-abc") == []
    assert inference.trace_problems(ok, {"prefill": [], "decode": ["d"]}, "kaic-r1-abc") == [
        "no prefill pod logged request kaic-r1-abc"
    ]
    assert inference.trace_problems(Answer(502, None, "kaic-r1-abc"), {"decode": ["d"]}, "kaic-r1-abc") == [
        "the request kaic-r1-abc got status 502"
    ]
    assert inference.trace_problems(None, {}, "x") == ["the client pod reported no answer"]
