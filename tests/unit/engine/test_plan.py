"""Planning: the catalog agrees with the profile, selection flags, modes, RBAC."""

import dataclasses

import pytest

from kaic.engine.plan import (
    CATALOG_FILE,
    NAMESPACE_RULE,
    PlanError,
    build_plan,
    catalog,
    catalog_json,
    declared,
)
from kaic.probe import ProbeSpec, Rule, probe
from kaic.profile import load_profile
from kaic.resources import resource_dir


@pytest.fixture(scope="module")
def profile():
    return load_profile("ai-v1.0")


@pytest.fixture(scope="module")
def probes():
    return catalog()


def test_profile_and_catalog_agree(profile, probes):
    listed = {name for req in profile.requirements for name in req.probes}
    assert listed == set(probes)
    for req in profile.requirements:
        for name in req.probes:
            assert probes[name].requirement == req.id


def test_the_shipped_catalog_is_what_the_probe_modules_declare(probes):
    """conformance/catalog.json, which planning reads instead of importing kaic's probe modules, is current,
    and reads back as the very specs `@probe` made: equal by value, and at the same location (the engine
    matches pytest's items to the plan by it)."""
    conformance = resource_dir("conformance")
    if (conformance / CATALOG_FILE).read_text(encoding="utf-8") != catalog_json():
        pytest.fail(
            f"conformance/{CATALOG_FILE} is not what the probe modules declare now: run `make docs`",
            pytrace=False,
        )
    made = declared(conformance, "test_plan_catalog", in_house=False)
    assert list(probes.values()) == made
    assert [p.location for p in probes.values()] == [p.location for p in made]


def test_every_requirement_has_a_discovery_probe(profile, probes):
    for req in profile.requirements:
        assert any(probes[n].kind == "discovery" for n in req.probes), req.id


def _with(profile, *extra):
    """The profile with extra probes listed under their requirements."""
    return dataclasses.replace(
        profile,
        requirements=tuple(
            dataclasses.replace(r, probes=r.probes + tuple(p.name for p in extra if p.requirement == r.id))
            for r in profile.requirements
        ),
    )


def test_modes(profile, probes):
    plain = ProbeSpec("gang_scheduling.fake", "gang_scheduling", "TestKaicY")
    disruptive = ProbeSpec("gang_scheduling.fake-disruptive", "gang_scheduling", "TestKaicX", disruptive=True)
    pool = {**probes, plain.name: plain, disruptive.name: disruptive}
    prof = _with(profile, plain, disruptive)

    def names(mode):
        return {p.name for p in build_plan(prof, "1.35", mode, probes=pool).probes}

    in_135 = {r.id for r, _ in profile.for_version("1.35")}
    listed = {p for p in probes.values() if p.requirement in in_135}
    discovery = {p.name for p in listed if p.kind == "discovery"}
    gentle = {p.name for p in listed if p.kind == "behavioural" and not p.disruptive}
    everything = {p.name for p in listed}
    assert "workload_sandboxing.discovery" not in discovery  # a 1.37-only requirement
    assert names("quick") == discovery
    assert names("non-disruptive") == discovery | gentle | {plain.name}
    assert names("certified") == everything | {plain.name, disruptive.name}


def test_version_selects_requirements(profile, probes):
    assert "dra_support" in {
        r.id for r, _ in build_plan(profile, "1.35", "quick", probes=probes).requirements
    }
    assert "dra_support" not in {
        r.id for r, _ in build_plan(profile, "1.36", "quick", probes=probes).requirements
    }


def test_focus_and_skip(profile, probes):
    plan = build_plan(profile, "1.37", "quick", focus=("gang_scheduling",), probes=probes)
    assert [r.id for r, _ in plan.requirements] == ["gang_scheduling"]
    assert plan.excluded["ai_inference"] == "not in --focus"
    plan = build_plan(profile, "1.37", "quick", skip=("gang_scheduling",), probes=probes)
    assert "gang_scheduling" not in {r.id for r, _ in plan.requirements}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "certified", "focus": ("gang_scheduling",)}, "certified runs every requirement"),
        ({"mode": "quick", "focus": ("nope",)}, "--focus nope: not a requirement"),
        ({"mode": "quick", "skip": ("dra_support",)}, "--skip dra_support"),
        ({"mode": "fast"}, "--mode 'fast'"),
    ],
)
def test_bad_selection(profile, probes, kwargs, message):
    with pytest.raises(PlanError, match=message):
        build_plan(profile, "1.37", probes=probes, **kwargs)


def test_rbac_adds_namespace_rule_only_for_creating_probes(profile, probes):
    quick = build_plan(profile, "1.37", "quick", probes=probes)
    assert NAMESPACE_RULE not in quick.rbac() and quick.cleanup_kinds() == frozenset()
    creator = ProbeSpec(
        "gang_scheduling.creator",
        "gang_scheduling",
        "TestKaicZ",
        creates=("batch/cronjobs",),
        rbac=(Rule("batch", "cronjobs", ("create",)), Rule("batch", "cronjobs", ("delete", "create"))),
    )
    plan = build_plan(
        _with(profile, creator), "1.37", "non-disruptive", probes={**probes, creator.name: creator}
    )
    rules = {(r.group, r.resource): r.verbs for r in plan.rbac()}
    assert rules[("batch", "cronjobs")] == ("create", "delete")
    assert rules[("", "namespaces")] == ("create", "delete", "get", "list")
    assert plan.cleanup_kinds() >= {"batch/cronjobs", "namespaces"}


def test_a_probe_in_a_lane_may_release_what_it_holds(probes):
    """The namespace fixture lists and deletes a lane probe's pods and claims itself rather than waiting for
    the namespace to go: every such probe must hold those verbs."""
    from kaic.engine.plugin import HOLDERS

    for spec in probes.values():
        if not spec.consumes:
            continue
        granted: dict[tuple[str, str], set[str]] = {}
        for rule in spec.rbac:
            granted.setdefault((rule.group, rule.resource), set()).update(rule.verbs)
        for kind in set(spec.creates) & set(HOLDERS):
            group, _, resource = kind.rpartition("/")
            assert {"list", "delete"} <= granted.get((group, resource), set()), (spec.name, kind)


def test_profile_naming_a_missing_probe(profile, probes):
    with pytest.raises(PlanError, match="lacks"):
        build_plan(profile, "1.37", "quick", probes={})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test": "testLower"}, "must look like 'TestParent'"),
        ({"test": "TestA", "kind": "other"}, "kind 'other'"),
        ({"test": "TestA", "consumes": ("gpus",)}, "consumes 'gpus'"),
    ],
)
def test_probe_declaration_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        probe("dra_support", "x", **kwargs)


def test_lanes_keep_consumers_of_one_thing_apart(profile, probes):
    def spec(name, *consumes):
        return ProbeSpec(f"gang_scheduling.{name}", "gang_scheduling", "TestKaicL", consumes=consumes)

    extra = [
        spec("a", "devices"),
        spec("b", "devices", "quota"),
        spec("c", "quota"),
        spec("d", "node-pool"),
        spec("e"),
        spec("f"),
    ]
    plan = build_plan(
        _with(profile, *extra), "1.37", "non-disruptive", probes={**probes, **{s.name: s for s in extra}}
    )
    lanes = plan.lanes()
    shared = {lanes[f"gang_scheduling.{n}"] for n in "abc"}
    assert len(shared) == 1  # a and b share devices, b and c share quota
    assert lanes["gang_scheduling.d"] not in shared
    assert lanes["gang_scheduling.e"] != lanes["gang_scheduling.f"]
    # a, b, c join the profile's device lane and d its node-pool lane; e and f add a lane each (discovery
    # probes do not count)
    base = build_plan(profile, "1.37", "non-disruptive", probes=probes).workers(cap=100)
    assert plan.workers(cap=100) == base + 2
    assert plan.workers(cap=2) == 2
    quick = build_plan(profile, "1.37", "quick", probes=probes)
    assert quick.workers(cap=8) == 1


IN_HOUSE = '''
from kaic.probe import RUN_ID_LABEL, NotApplicable, ProbeError, Recorder, Rule, Unknown, crds_in, \
probe, require


@probe("team_quota", "listed", test="TestTeamQuota/Listed", rbac=(Rule("", "resourcequotas", ("list",)),))
def test_listed(cluster, facts, evidence: Recorder):
    """An in-house probe that imports only kaic.probe."""
    require(facts, "crds")
    if not crds_in(facts, "example.com"):
        raise NotApplicable("no example.com CRDs")
'''


def test_an_in_house_probe_needs_only_kaic_probe(tmp_path):
    """`kaic.probe` is the probe author's one import, kept at that path for in-house probes (--probe-dir)."""
    (tmp_path / "test_team.py").write_text(IN_HOUSE)
    spec = catalog([tmp_path])["team_quota.listed"]
    assert (spec.test, spec.rbac, spec.location) == (
        "TestTeamQuota/Listed",
        (Rule("", "resourcequotas", ("list",)),),
        "test_team.py::test_listed",
    )
