"""The pure part of ai_inference: which GatewayClass is used, the client's tally and the routing verdict."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kaic.areas import gateway
from kaic.areas.gateway import Counts
from kaic.kube.conditions import condition
from kaic.localcluster.launcher import bin_dir
from kaic.localcluster.processes import free_ports
from kaic.results.outcomes import ProbeError

CLASSES = [
    {"name": "traefik", "controllerName": "traefik.io/gateway-controller", "accepted": True},
    {"name": "istio", "controllerName": "istio.io/gateway-controller", "accepted": True},
    {"name": "stale", "controllerName": "example.com/gone", "accepted": False},
]
CRDS = {name: {"versions": ["v1"], "established": True} for name in gateway.CRDS}


def facts(classes: list[dict], crds: dict | None = None) -> dict:
    return {"crds": CRDS if crds is None else crds, "gatewayClasses": classes}


def test_the_first_accepted_class_by_name_is_chosen():
    chosen, how = gateway.choose_class(facts(CLASSES), None)
    assert chosen is CLASSES[1] and "first Accepted" in how


def test_a_named_class_is_used_if_accepted_and_unknown_if_not():
    assert gateway.choose_class(facts(CLASSES), "traefik")[0] is CLASSES[0]
    chosen, how = gateway.choose_class(facts(CLASSES), "stale")
    assert chosen is None and how == "GatewayClass stale (controller example.com/gone) is not Accepted"


def test_a_named_class_that_does_not_exist_is_an_error_listing_the_classes():
    with pytest.raises(ProbeError) as raised:
        gateway.choose_class(facts(CLASSES), "missing")
    assert raised.value.reason == (
        "--gateway-class missing names no GatewayClass "
        "(found: traefik (Accepted), istio (Accepted), stale (not Accepted))"
    )
    with pytest.raises(ProbeError, match=r"names no GatewayClass \(found: none\)"):
        gateway.choose_class(facts([]), "missing")


def test_no_accepted_class_says_what_was_found():
    chosen, how = gateway.choose_class(facts(CLASSES[2:]), None)
    assert chosen is None and how == "no GatewayClass is Accepted (found: stale (not Accepted))"
    assert gateway.choose_class(facts([]), None)[1].endswith("(found: none)")


def test_without_the_gateway_api_nothing_is_chosen_even_by_name():
    """No Gateway API is absent-but-installable (the probes' unknown), never bad input."""
    not_established = {
        **CRDS,
        "httproutes.gateway.networking.k8s.io": {"versions": ["v1"], "established": False},
    }
    for crds, missing in (
        ({}, ", ".join(gateway.CRDS)),
        (not_established, "httproutes.gateway.networking.k8s.io"),
    ):
        for wanted in (None, "traefik", "missing"):
            chosen, how = gateway.choose_class(facts(CLASSES, crds), wanted)
            assert chosen is None
            assert how == f"the Gateway API CRDs {missing} are not installed and Established at v1"


def test_the_tally_parses_after_its_marker_and_only_when_complete():
    text = f"noise\n{gateway.RESULT}\nplain a=160 b=40 failed=0\nmarked a=0 b=20 failed=0\n"
    assert gateway.parse_counts(text) == {"plain": Counts(160, 40, 0), "marked": Counts(0, 20, 0)}
    assert gateway.parse_counts(text.replace(gateway.RESULT, "other")) is None
    assert gateway.parse_counts(f"{gateway.RESULT}\nplain a=160 b=40 failed=0\n") is None


def test_an_address_that_never_answered_is_its_own_finding():
    counts = gateway.parse_counts(f"{gateway.RESULT}\nunreachable\n")
    assert counts == {}
    assert gateway.problems(counts) == ["the Gateway's address answered none of 60 requests a second apart"]


@pytest.mark.parametrize(
    ("plain", "marked", "wanted"),
    [
        (Counts(160, 40, 0), Counts(0, 20, 0), []),
        (Counts(180, 20, 0), Counts(0, 20, 0), []),  # exactly 10 %
        (Counts(140, 60, 0), Counts(0, 20, 0), []),  # exactly 30 %
        (
            Counts(181, 19, 0),
            Counts(0, 20, 0),
            ["backend B answered 19 of 200 plain requests (10%), outside"],
        ),
        (Counts(100, 100, 0), Counts(0, 20, 0), ["(50%), outside 10%–30% for an 80/20 split"]),
        (
            Counts(160, 40, 0),
            Counts(1, 19, 0),
            ["1 of 20 requests with X-Gateway-Model-Name: b reached backend A"],
        ),
        (
            Counts(0, 0, 200),
            Counts(0, 0, 20),
            ["200 of 200 plain requests got no answer", "20 of 20 marked requests got no answer"],
        ),
    ],
)
def test_the_verdict(plain, marked, wanted):
    found = gateway.problems({"plain": plain, "marked": marked})
    assert len(found) == len(wanted) and all(w in f for w, f in zip(wanted, found, strict=True)), found


def test_the_route_matches_the_header_first_and_splits_the_rest_by_weight():
    route = gateway.route_body({"kaic.dev/run-id": "r"}, {"a": "svc-a", "b": "svc-b"})
    header, default = route["spec"]["rules"]
    assert header["matches"] == [
        {"headers": [{"type": "Exact", "name": "X-Gateway-Model-Name", "value": "b"}]}
    ]
    assert header["backendRefs"] == [{"name": "svc-b", "port": gateway.BACKEND_PORT}]
    assert [(r["name"], r["weight"]) for r in default["backendRefs"]] == [("svc-a", 80), ("svc-b", 20)]
    assert route["spec"]["parentRefs"] == [{"name": gateway.GATEWAY}]


def test_a_route_parent_is_found_by_its_gateway():
    route = {
        "status": {
            "parents": [
                {"parentRef": {"name": "other"}},
                {
                    "parentRef": {"name": gateway.GATEWAY},
                    "conditions": [{"type": "Accepted", "status": "True"}],
                },
            ]
        }
    }
    assert condition(gateway.route_parent(route, gateway.GATEWAY), "Accepted") == "True"
    assert condition(gateway.route_parent({}, gateway.GATEWAY), "Accepted") == ""


def _client_against(backend: str, tmp_path: Path) -> str:
    """The client and backend scripts as pods run them (busybox sh, wget, httpd), against one backend on
    loopback, with a warm-up of two tries; the client's output, as its termination message holds it."""
    busybox = bin_dir() / "busybox"
    if not busybox.exists():
        pytest.skip(f"{busybox} is missing; build it with `make cluster`")
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("sh", "wget", "httpd", "mkdir", "echo", "tee", "sleep", "timeout"):
        (tools / tool).symlink_to(busybox)
    (port,) = free_ports(1)
    www = tmp_path / "www"
    server_script = (
        gateway.backend_server(backend)
        .replace("/www", str(www))
        .replace(str(gateway.BACKEND_PORT), str(port))
    )
    env = {
        "PATH": str(tools),
        "GATEWAY_ADDRESS": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_WARMUP": "2",
    }
    server = subprocess.Popen([str(tools / "sh"), "-c", server_script], env=env)
    try:
        client = gateway.CLIENT.replace("/dev/termination-log", str(tmp_path / "termination-log"))
        out = subprocess.run(
            [str(tools / "sh"), "-c", client],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    finally:
        server.terminate()
        server.wait()
    assert (tmp_path / "termination-log").read_text() == out
    return out


def test_the_client_script_counts_what_busybox_wget_gets(tmp_path: Path):
    """Every request reaches B, so the split is wrong and nothing failed."""
    counts = gateway.parse_counts(_client_against("b", tmp_path))
    assert counts == {"plain": Counts(0, 200, 0), "marked": Counts(0, 20, 0)}
    assert gateway.problems(counts) == [
        "backend B answered 200 of 200 plain requests (100%), outside 10%–30% for an 80/20 split"
    ]


def test_the_client_counts_anyway_when_b_never_answers_its_warm_up(tmp_path: Path):
    """The warm-up waits for B within its tries only; a route that never reaches B is counted and fails."""
    counts = gateway.parse_counts(_client_against("a", tmp_path))
    assert counts == {"plain": Counts(200, 0, 0), "marked": Counts(20, 0, 0)}
    assert gateway.problems(counts)[0] == f"20 of 20 requests with {gateway.HEADER}: b reached backend A"
