"""The one outcome table: aggregation, mapping, verdict and exit codes."""

import pytest

from kaic.results.outcomes import (
    TABLE,
    VERDICT_EXIT,
    ExitCode,
    NotApplicable,
    Outcome,
    Unknown,
    Verdict,
    aggregate,
    verdict,
)

P, F, NA, U, E = (Outcome.PASSED, Outcome.FAILED, Outcome.NOT_APPLICABLE, Outcome.UNKNOWN, Outcome.ERROR)


@pytest.mark.parametrize(
    ("probes", "expected"),
    [
        ([], None),
        ([P], P),
        ([P, NA], P),
        ([NA, NA], NA),
        ([P, U], U),
        ([U, E], E),
        ([E, F], F),
        ([P, NA, U, E, F], F),
        ([NA, U], U),
    ],
)
def test_aggregate(probes, expected):
    assert aggregate(probes) == expected


def test_every_outcome_has_every_mapping():
    assert set(TABLE) == set(Outcome)
    assert {m.gotest_action for m in TABLE.values()} <= {"pass", "fail", "skip"}
    assert TABLE[P].product_status == "Implemented" and TABLE[P].junit == ""
    assert TABLE[NA].product_status == "N/A" and TABLE[NA].junit == "skipped"
    assert TABLE[F].gotest_action == "fail" and TABLE[F].junit == "failure"
    assert TABLE[E].junit == "error" and TABLE[E].gotest_action == "fail"
    assert TABLE[U].product_status == "" and TABLE[U].gotest_action == "skip"


@pytest.mark.parametrize(
    ("musts", "complete", "expected", "code"),
    [
        ([P, P], True, Verdict.CONFORMANT, 0),
        ([P, NA], True, Verdict.CONFORMANT, 0),
        ([P, F], True, Verdict.NOT_CONFORMANT, 1),
        ([F, E, U], True, Verdict.NOT_CONFORMANT, 1),
        ([F], False, Verdict.NOT_CONFORMANT, 1),
        ([P, E], True, Verdict.INCOMPLETE, 3),
        ([P, P], False, Verdict.INCOMPLETE, 3),
        ([P, U], False, Verdict.INCOMPLETE, 3),
        ([P, U], True, Verdict.UNDETERMINED, 4),
        ([], True, Verdict.CONFORMANT, 0),
    ],
)
def test_verdict_and_exit_code(musts, complete, expected, code):
    assert verdict(musts, complete) is expected
    assert VERDICT_EXIT[expected] == ExitCode(code)


@pytest.mark.parametrize(
    ("musts", "complete", "expected", "code"),
    [
        ([P, NA], True, Verdict.PARTIAL, 4),  # the selection passed; MUSTs left out: never conformant
        ([], True, Verdict.PARTIAL, 4),
        ([P, U], True, Verdict.UNDETERMINED, 4),
        ([P, E], True, Verdict.INCOMPLETE, 3),
        ([P], False, Verdict.INCOMPLETE, 3),
        ([P, F], True, Verdict.NOT_CONFORMANT, 1),
    ],
)
def test_a_run_that_left_musts_out_is_at_best_partial(musts, complete, expected, code):
    assert verdict(musts, complete, musts_left_out=True) is expected
    assert VERDICT_EXIT[expected] == ExitCode(code)


def test_probe_outcomes_need_a_reason():
    with pytest.raises(ValueError, match="needs a reason"):
        NotApplicable(" ")
    assert Unknown("no driver").outcome is U
