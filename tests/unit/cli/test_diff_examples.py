"""The CI upgrade-gate recipes in examples/ci stay valid YAML and call kaic with options it really has."""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from kaic.cli.diff import diff
from kaic.cli.run import run
from kaic.results.waivers import load

CI = Path(__file__).resolve().parents[3] / "examples" / "ci"
RECIPES = ("github-actions-upgrade-gate.yml", "gitlab-upgrade-gate.yml")
COMMANDS = {"run": run, "diff": diff}
COMPLETED = re.compile(r"\|\| \{ code=\$\?; case \$code in 1\|4\) ;; \*\) exit \$code ;; esac; \}$")


def shell_lines(node):
    """Every line of shell a recipe runs: GitHub `run` steps, GitLab `script` and `before_script`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("run", "script", "before_script"):
                for text in value if isinstance(value, list) else [value]:
                    yield from (line.strip() for line in str(text).splitlines() if line.strip())
            else:
                yield from shell_lines(value)
    elif isinstance(node, list):
        for item in node:
            yield from shell_lines(item)


def kaic_calls(line, variables):
    """(subcommand, args) for each `kaic` command on a line, variables expanded, up to a shell operator."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = [re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m[1], m[1].lower()), t) for t in lexer]
    calls = []
    for start, token in enumerate(tokens):
        if token == "kaic" and (start == 0 or re.fullmatch(r"[;&|()]+", tokens[start - 1])):
            args = []
            for arg in tokens[start + 2 :]:
                if re.fullmatch(r"[;&|()<>]+", arg):
                    break
                args.append(arg)
            calls.append((tokens[start + 1], args))
    return calls


@pytest.fixture(params=RECIPES)
def recipe(request):
    doc = yaml.safe_load((CI / request.param).read_text())
    variables = {**doc.get("env", {}), **doc.get("variables", {})}
    lines = list(shell_lines(doc))
    return doc, lines, [(line, call) for line in lines for call in kaic_calls(line, variables)]


def test_every_kaic_call_parses_with_the_real_commands(recipe):
    _, _, calls = recipe
    assert {sub for _, (sub, _) in calls} == {"run", "diff"}
    for _, (sub, args) in calls:
        ctx = COMMANDS[sub].make_context(sub, list(args))  # raises on an unknown flag or a bad value
        if sub == "run":
            assert ctx.params["mode"] in ("certified", "non-disruptive")
            assert {a for a in args if a.startswith("-")} <= {o for p in run.params for o in p.opts}
        else:
            assert load(CI.parent.parent / ctx.params["waiver_file"])  # the shipped sample, valid


def test_runs_before_and_after_count_completed_exit_codes_and_the_diff_gates(recipe):
    doc, _, calls = recipe
    runs = [(line, args) for line, (sub, args) in calls if sub == "run"]
    assert all(COMPLETED.search(line) for line, _ in runs), (
        "kaic run: 0, 1 and 4 complete; 2 and 3 fail the job"
    )
    diffs = [(line, args) for line, (sub, args) in calls if sub == "diff"]
    gating = [args for line, args in diffs if "||" not in line]
    assert len(gating) == 1
    assert [a for a in gating[0] if not a.startswith("-")][:2] == ["kaic-before", "kaic-after"]
    text = yaml.safe_dump(doc)
    assert "PLACEHOLDER" in text
    assert "kaic-junit.xml" in text


def test_github_steps_run_in_upgrade_order_and_keep_the_results():
    doc = yaml.safe_load((CI / "github-actions-upgrade-gate.yml").read_text())
    steps = doc["jobs"]["upgrade-gate"]["steps"]
    order = [s["name"] for s in steps if "name" in s]
    before, upgrade, after, gate = (
        next(i for i, name in enumerate(order) if key in name)
        for key in ("before the upgrade", "PLACEHOLDER", "after the upgrade", "Gate on the diff")
    )
    assert before < upgrade < after < gate
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    assert {"kaic-before/", "kaic-after/"} <= set(upload["with"]["path"].split())


def test_gitlab_stages_run_in_upgrade_order_and_keep_the_results():
    doc = yaml.safe_load((CI / "gitlab-upgrade-gate.yml").read_text())
    assert doc["stages"] == ["before", "upgrade", "after", "gate"]
    template = doc[".kaic-run"]["artifacts"]
    assert (template["when"], template["reports"]["junit"]) == ("always", "$KAIC_DIR/kaic-junit.xml")
    assert {doc[job]["variables"]["KAIC_DIR"] for job in ("kaic-before", "kaic-after")} == {
        "kaic-before",
        "kaic-after",
    }
    assert [n["job"] for n in doc["upgrade-gate"]["needs"]] == ["kaic-before", "kaic-after"]
