"""pytest phases → kaic outcomes, through a real embedded pytest run (in a subprocess: pytest runs once per
process). The probes here are synthetic and need no cluster: they exercise the engine's mapping only."""

import json
import subprocess
import sys
import textwrap

import pytest

PROBES = """
import time
import pytest
from kaic.results.outcomes import NotApplicable, ProbeError, Unknown
from kaic.probe import probe

@pytest.fixture
def broken_cleanup():
    yield
    raise RuntimeError("could not delete the namespace")

@pytest.fixture
def broken_setup():
    raise RuntimeError("no client")

@probe("r", "pass", test="TestKaicFake/Pass")
def test_pass(evidence):
    evidence.add("fact", "seen", {"nodes": 2})

@probe("r", "fail", test="TestKaicFake/Fail")
def test_fail():
    assert 1 == 2, "device visible to a pod without a claim"

@probe("r", "na", test="TestKaicFake/Na")
def test_na():
    raise NotApplicable("no autoscaler installed")

@probe("r", "unknown", test="TestKaicFake/Unknown")
def test_unknown():
    raise Unknown("unrecognised accelerator")

@probe("r", "probe-error", test="TestKaicFake/ProbeError")
def test_probe_error():
    raise ProbeError("image pull failed")

@probe("r", "crash", test="TestKaicFake/Crash")
def test_crash():
    {}["missing"]

@probe("r", "timeout", test="TestKaicFake/Timeout", timeout_s=1)
def test_timeout():
    time.sleep(10)

@probe("r", "skip", test="TestKaicFake/Skip")
def test_skip():
    pytest.skip("not here")

@probe("r", "teardown", test="TestKaicFake/Teardown")
def test_teardown(broken_cleanup):
    pass

@probe("r", "teardown-after-fail", test="TestKaicFake/TeardownAfterFail")
def test_teardown_after_fail(broken_cleanup):
    assert False, "isolation broken"

@probe("r", "setup", test="TestKaicFake/Setup")
def test_setup(broken_setup):
    pass

@probe("r", "long-reason", test="TestKaicFake/LongReason")
def test_long_reason():
    raise Unknown("; ".join(f"profile {i}: no DeviceClass selects its driver, no node advertises it" \
for i in range(8)))

@probe("r", "unplanned", test="TestKaicFake/Unplanned")
def test_unplanned():
    raise AssertionError("must not run")
"""

DRIVER = """
import json, os, sys
import pytest
from kaic.engine.collector import Collector
from kaic.engine.run import pytest_args
from kaic.engine.plan import catalog
from kaic.probe import ProbeSpec
from pathlib import Path

directory, workers = Path(sys.argv[1]), int(sys.argv[2])
specs = [s for s in catalog([directory]).values() if s.name != "r.unplanned"]
specs.append(ProbeSpec("r.never-collected", "r", "TestKaicFake/Never", location="test_fake.py::test_never"))
settings = directory / "settings.json"
settings.write_text(json.dumps({"probes": {s.name: {"timeout": s.timeout_s, "lane": "one"} for s in specs}}))
results = []
collector = Collector(specs, lambda spec: None, results.append)
parallel = ["-p", "xdist.plugin", "-n", str(workers), "--dist", "loadscope"] if workers > 1 else []
with open(os.devnull, "w") as sink:
    sys.stdout = sink
    pytest.main(pytest_args([directory], "--kaic-run", str(settings), *parallel), plugins=[collector])
    sys.stdout = sys.__stdout__
print(json.dumps({
    "results": {
        r.name: [r.outcome.value, r.reason, r.warnings, [e.kind for e in r.evidence],
                 {e.name: e.content for e in r.evidence if e.kind == "text"}]
        for r in results
    },
    "missing": [s.name for s in collector.missing()],
}))
"""


@pytest.fixture(scope="module", params=[1, 2], ids=["in-process", "xdist"])
def outcome(request, tmp_path_factory):
    """The same probes run in kaic's own process and in two xdist workers must give the same results."""
    directory = tmp_path_factory.mktemp("probes")
    (directory / "test_fake.py").write_text(textwrap.dedent(PROBES))
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(directory), str(request.param)],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("name", "expected", "reason"),
    [
        ("r.pass", "passed", ""),
        ("r.fail", "failed", "device visible to a pod without a claim"),
        ("r.na", "not-applicable", "no autoscaler installed"),
        ("r.unknown", "unknown", "unrecognised accelerator"),
        ("r.probe-error", "error", "image pull failed"),
        ("r.crash", "error", "KeyError"),
        ("r.timeout", "error", "timed out"),
        ("r.skip", "error", "without a kaic outcome"),
        ("r.teardown", "error", "cleanup: teardown failed: RuntimeError"),
        ("r.teardown-after-fail", "failed", "isolation broken"),
        ("r.setup", "error", "setup failed: RuntimeError: no client"),
    ],
)
def test_phase_mapping(outcome, name, expected, reason):
    got, why, *_ = outcome["results"][name]
    assert got == expected
    assert reason in why


def test_failures_carry_a_traceback_and_evidence_survives(outcome):
    assert outcome["results"]["r.pass"][3] == ["fact"]
    assert "log" in outcome["results"]["r.fail"][3]


def test_cleanup_failure_after_a_failure_is_a_warning(outcome):
    assert any("could not delete" in w for w in outcome["results"]["r.teardown-after-fail"][2])


def test_unplanned_probes_do_not_run_and_missing_ones_are_reported(outcome):
    assert "r.unplanned" not in outcome["results"]
    assert outcome["missing"] == ["r.never-collected"]


def test_a_long_reason_is_shortened_and_kept_whole_as_the_first_evidence(outcome):
    got, why, _, kinds, texts = outcome["results"]["r.long-reason"]
    whole = "; ".join(
        f"profile {i}: no DeviceClass selects its driver, no node advertises it" for i in range(8)
    )
    assert got == "unknown" and kinds[0] == "text" and texts == {"full reason": whole}
    assert why == "; ".join(whole.split("; ")[:2]) + "…"
    assert outcome["results"]["r.na"][4] == {}  # a short reason is kept as it is, with no copy


LANES = """
import time
from pathlib import Path
from kaic.probe import probe

HERE = Path(__file__).parent


def meet(mine, theirs):
    # Say this probe has started, then wait for the other side: only probes running at once both get past.
    (HERE / mine).touch()
    deadline = time.monotonic() + 60
    while not (HERE / theirs).exists():
        assert time.monotonic() < deadline, f"{theirs} never ran beside {mine}"
        time.sleep(0.05)

@probe("r", "first", test="TestKaicLanes/First")
def test_first():
    meet("lane", "beside")
    time.sleep(0.5)

@probe("r", "second", test="TestKaicLanes/Second")
def test_second():
    meet("lane", "beside")
    time.sleep(0.5)

@probe("r", "beside", test="TestKaicLanes/Beside")
def test_beside():
    meet("beside", "lane")
"""

LANES_DRIVER = """
import json, sys
from datetime import datetime
from pathlib import Path
import pytest
from kaic.engine.collector import Collector
from kaic.engine.plan import catalog
from kaic.engine.run import pytest_args

directory = Path(sys.argv[1])
specs = list(catalog([directory]).values())
lanes = {"r.first": "consumes-devices", "r.second": "consumes-devices", "r.beside": "r.beside"}
settings = directory / "settings.json"
settings.write_text(json.dumps({"probes": {s.name: {"timeout": 60} for s in specs}}))
results = []
xdist = ("-p", "xdist.plugin", "-n", "2", "--dist", "loadscope")
args = pytest_args([directory], "--kaic-run", str(settings), *xdist)
pytest.main(args, plugins=[Collector(specs, lambda spec: None, results.append, lanes)])
spans = {}
for r in results:
    start = datetime.fromisoformat(r.started_at).timestamp()
    spans[r.name] = (start, start + r.duration_s, str(r.outcome), r.reason)
print(json.dumps(spans))
"""


def test_probes_of_one_lane_never_overlap_in_xdist_workers(tmp_path):
    """Under xdist, two probes of one lane (consumers of the same devices) run one after the other in one
    worker, and a probe of another lane runs beside them."""
    (tmp_path / "test_lanes.py").write_text(textwrap.dedent(LANES))
    proc = subprocess.run(
        [sys.executable, "-c", LANES_DRIVER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    spans = json.loads(proc.stdout.strip().splitlines()[-1])
    earlier, later = sorted([spans["r.first"], spans["r.second"]])
    assert later[0] >= earlier[1], spans  # one lane: one after the other
    # Each probe met one of the other lane (a rendezvous, not timing): they ran at once.
    assert {name: span[2] for name, span in spans.items()} == dict.fromkeys(spans, "passed"), spans
    assert set(spans) == {"r.first", "r.second", "r.beside"}
