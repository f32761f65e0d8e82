"""examples/rbac/ is generated from the probes' declarations and must stay in step with them."""

from pathlib import Path

import pytest
import yaml

from kaic.engine.plan import RunOptions, plan_only
from kaic.engine.rbac import cluster_role
from kaic.probe import MODES

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "rbac"


@pytest.mark.parametrize("mode", MODES)
def test_examples_match_the_probes(mode):
    plan, _ = plan_only(RunOptions(mode=mode))
    assert (EXAMPLES / f"kaic-{mode}.yaml").read_text() == cluster_role(plan), "run `make rbac-examples`"


def test_quick_mode_is_read_only():
    role = yaml.safe_load((EXAMPLES / "kaic-quick.yaml").read_text())
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"}
