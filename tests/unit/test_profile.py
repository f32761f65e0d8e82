"""The profile model, the built-in ai-v1.0 profile and its agreement with the official checklists."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kaic.profile import (
    SCHEMA_FILE,
    Profile,
    ProfileError,
    builtin_dir,
    choose_version,
    list_profiles,
    load_profile,
)
from kaic.resources import resource_dir

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "reference"
CHECKLISTS = REFERENCE / "checklists"
BUILTIN = builtin_dir() / "ai-v1.0.yaml"

needs_checklists = pytest.mark.skipif(
    not CHECKLISTS.is_dir(), reason=f"the official checklists are not at {CHECKLISTS}"
)
needs_matrix = pytest.mark.skipif(
    not (REFERENCE / "README.md").is_file(),
    reason=f"the reference matrix is not at {REFERENCE / 'README.md'}",
)


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile("ai-v1.0")


def official() -> dict[str, Path]:
    """Kubernetes minor -> its official checklist file."""
    return {
        re.search(r"(1\.\d+)\.yaml$", p.name)[1]: p for p in sorted(CHECKLISTS.glob("AIConformance-*.yaml"))
    }


def builtin_data() -> dict[str, Any]:
    return yaml.safe_load(BUILTIN.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: Any, name: str = "vendor.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8"
    )
    return path


# --- the built-in profile -------------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_builtin_profiles_pass_the_schema_and_are_named_by_their_id() -> None:
    found = list_profiles()
    assert "ai-v1.0" in [p.id for p in found]
    for builtin in found:
        assert builtin.source.stem == builtin.id
        assert load_profile(builtin.source) == builtin  # a path is validated against the schema


def test_builtin_digest_is_of_the_file_bytes(profile: Profile) -> None:
    assert profile.sha256 == hashlib.sha256(BUILTIN.read_bytes()).hexdigest()


def test_every_requirement_has_its_discovery_probe(profile: Profile) -> None:
    for req in profile.requirements:
        assert req.probes[0] == f"{req.id}.discovery"
        assert set(req.outcomes) == {"unknown", "failed"} | ({"notApplicable"} if req.conditional else set())


@pytest.mark.parametrize(
    ("minor", "total", "musts"),
    [("1.33", 9, 8), ("1.34", 9, 9), ("1.35", 12, 9), ("1.36", 14, 8), ("1.37", 15, 8)],
)
def test_requirement_counts_per_version(profile: Profile, minor: str, total: int, musts: int) -> None:
    chosen = profile.for_version(minor)
    assert (len(chosen), sum(level == "MUST" for _, level in chosen)) == (total, musts)


def test_for_version_keeps_only_the_checklists_requirements(profile: Profile) -> None:
    assert "dra_support" in [r.id for r, _ in profile.for_version("1.35")]
    assert "dra_support" not in [r.id for r, _ in profile.for_version("1.36")]
    assert {r.id: level for r, level in profile.for_version("1.37")}["workload_sandboxing"] == "SHOULD"
    assert profile.for_version("1.99") == []


# --- agreement with the official checklists and the reference matrix ------------------------------------


@needs_checklists
def test_profile_covers_exactly_the_official_versions(profile: Profile) -> None:
    assert profile.minors() == list(official())


@needs_checklists
@pytest.mark.parametrize("minor", ["1.33", "1.34", "1.35", "1.36", "1.37"])
def test_matrix_agrees_with_the_official_checklist(profile: Profile, minor: str) -> None:
    path = official()[minor]
    checklist = yaml.safe_load(path.read_bytes())
    assert checklist["metadata"]["kubernetesVersion"] == f"v{minor}"
    expected = {
        item["id"]: (category, item["level"])
        for category, items in checklist["spec"].items()
        for item in items
    }
    assert {req.id: (req.category, level) for req, level in profile.for_version(minor)} == expected
    assert profile.checklists[minor] == hashlib.sha256(path.read_bytes()).hexdigest()


@needs_checklists
def test_summaries_are_our_own_words(profile: Profile) -> None:
    """No summary or outcome rule shares six consecutive words with an official description."""

    def runs(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        return {tuple(words[i : i + 6]) for i in range(len(words) - 5)}

    theirs: set[tuple[str, ...]] = set()
    for path in official().values():
        for items in yaml.safe_load(path.read_bytes())["spec"].values():
            theirs |= set().union(*(runs(item["description"]) for item in items))
    for req in profile.requirements:
        for text in (req.summary, *req.outcomes.values()):
            shared = runs(text) & theirs
            assert not shared, f"{req.id}: {sorted(' '.join(run) for run in shared)}"


def reference_matrix() -> dict[str, dict[str, str | None]]:
    """Requirement id -> KAR, conditional and upstream test, read from the reference matrix's requirement
    table (one row of ten columns per requirement)."""
    rows = {}
    for line in (REFERENCE / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 10 or not cells[0].startswith("`"):
            continue
        test = re.match(r"`(Test\w+)`", cells[9])
        rows[cells[0].strip("`")] = {
            "kar": None if cells[2] == "–" else cells[2],
            "conditional": {"P": "platform", "H": "hardware", "": None}[cells[8]],
            "upstream_test": test[1] if test else None,
        }
    return rows


# The reference matrix marks no condition for workload_sandboxing, but the profile makes it conditional on the
# platform: a platform without a sandbox runtime is not-applicable, with the trail.
DESIGN_CONDITIONS = {"workload_sandboxing": "platform"}


@needs_matrix
def test_kar_conditional_and_upstream_test_follow_the_reference_matrix(profile: Profile) -> None:
    matrix = reference_matrix()
    assert set(matrix) == {req.id for req in profile.requirements}
    for req in profile.requirements:
        row = matrix[req.id] | (
            {"conditional": DESIGN_CONDITIONS[req.id]} if req.id in DESIGN_CONDITIONS else {}
        )
        assert row == {
            "kar": req.kar,
            "conditional": req.conditional,
            "upstream_test": req.upstream_test,
        }


# --- choosing the checklist version ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("detected", "override", "chosen", "reason"),
    [
        ("1.36", None, "1.36", "server version 1.36"),
        ("1.36+", None, "1.36", "server version 1.36"),
        ("v1.35.2-gke.100", None, "1.35", "server version 1.35"),
        ("1.38", None, "1.37", "newer than every checklist; using the newest, 1.37"),
        (None, None, "1.37", "not detected; using the newest checklist, 1.37"),
        ("1.36", "1.35", "1.35", "set by --kubernetes-version; server reports 1.36"),
        (None, "1.34", "1.34", "set by --kubernetes-version; server version not detected"),
    ],
)
def test_choose_version(
    profile: Profile, detected: str | None, override: str | None, chosen: str, reason: str
) -> None:
    got, why = choose_version(profile, detected, override)
    assert got == chosen
    assert reason in why


def test_choose_version_falls_back_to_the_nearest_lower_minor(profile: Profile) -> None:
    gappy = dataclasses.replace(profile, checklists={m: profile.checklists[m] for m in ("1.33", "1.35")})
    assert choose_version(gappy, "1.34", None) == (
        "1.33",
        "no checklist for server version 1.34; using the nearest lower one, 1.33",
    )


@pytest.mark.parametrize(
    ("detected", "override", "where", "message"),
    [
        (
            "1.32",
            None,
            f"{BUILTIN}: checklists: ",
            "server version 1.32 is older than every checklist; supported: 1.33, 1.34",
        ),
        (
            "1.36",
            "1.32",
            "--kubernetes-version: ",
            (
                f"Kubernetes 1.32 is not covered by profile ai-v1.0 ({BUILTIN}); "
                "supported: 1.33, 1.34, 1.35, 1.36, 1.37"
            ),
        ),
        (None, "latest", "--kubernetes-version: ", "'latest' is not a Kubernetes version such as 1.35"),
    ],
)
def test_choose_version_refuses(
    profile: Profile, detected: str | None, override: str | None, where: str, message: str
) -> None:
    """A server too old is the profile's limit; a version asked for is named by its flag."""
    with pytest.raises(ProfileError) as err:
        choose_version(profile, detected, override)
    assert str(err.value).startswith(where)
    assert message in str(err.value)


# --- profile files from outside kaic --------------------------------------------------------------------


def case(name: str, mutate, field: str, message: str):
    """One broken variant of the built-in data: `mutate` edits it in place."""
    return pytest.param(mutate, field, message, id=name)


def req(data: dict[str, Any], index: int) -> dict[str, Any]:
    return data["requirements"][index]


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        case(
            "bad level",
            lambda d: req(d, 3)["levels"].update({"1.35": "MAYBE"}),
            "requirements[3].levels.1.35",
            "'MAYBE' is not one of ['MUST', 'SHOULD']",
        ),
        case(
            "missing field",
            lambda d: req(d, 2).pop("summary"),
            "requirements[2]",
            "'summary' is a required property",
        ),
        case("missing top field", lambda d: d.pop("id"), "", "'id' is a required property"),
        case(
            "bad minor",
            lambda d: d["checklists"].update({"2.0": "0" * 64}),
            "checklists",
            "'2.0' does not match '^1\\\\.\\\\d+$'",
        ),
        case(
            "bad sha",
            lambda d: d["checklists"].update({"1.33": "abc"}),
            "checklists.1.33",
            "'abc' does not match '^[0-9a-f]{64}$'",
        ),
        case(
            "bad conditional",
            lambda d: req(d, 2).update(conditional="sometimes"),
            "requirements[2].conditional",
            "'sometimes' is not one of ['platform', 'hardware']",
        ),
        case(
            "unquoted kar",
            lambda d: req(d, 0).update(kar=51),
            "requirements[0].kar",
            "51 is not of type 'string'",
        ),
        case("bad id", lambda d: req(d, 0).update(id="Dra-Support"), "requirements[0].id", "does not match"),
        case(
            "unknown key",
            lambda d: req(d, 0).update(levle={}),
            "requirements[0]",
            "('levle' was unexpected); allowed: ['category'",
        ),
        case(
            "no probes",
            lambda d: req(d, 0).update(probes=[]),
            "requirements[0].probes",
            "should be non-empty",
        ),
        case(
            "duplicate id",
            lambda d: req(d, 1).update(id="dra_support"),
            "requirements[1].id",
            "'dra_support' repeats requirements[0].id",
        ),
        case(
            "probe of another requirement",
            lambda d: req(d, 0).update(probes=["gang_scheduling.discovery"]),
            "requirements[0].probes[0]",
            "'gang_scheduling.discovery' must be named 'dra_support.<name>'",
        ),
        case(
            "level without checklist",
            lambda d: req(d, 0)["levels"].update({"1.38": "MUST"}),
            "requirements[0].levels.1.38",
            "not under checklists",
        ),
        case(
            "not-applicable rule on an unconditional requirement",
            lambda d: req(d, 0)["outcomes"].update(notApplicable="n/a"),
            "requirements[0].outcomes",
            "exactly when the requirement is conditional",
        ),
        case(
            "conditional requirement without its not-applicable rule",
            lambda d: req(d, 2)["outcomes"].pop("notApplicable"),
            "requirements[2].outcomes",
            "exactly when the requirement is conditional",
        ),
    ],
)
def test_invalid_profile_names_file_and_field(tmp_path: Path, mutate, field: str, message: str) -> None:
    data = builtin_data()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert (err.value.file, err.value.field) == (str(path), field)
    assert str(err.value).startswith(f"{path}: {field}: " if field else f"{path}: ")
    assert message in err.value.message


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("id: [unclosed\n", "line 2, column 1", "invalid YAML"),
        ("", "", "None is not of type 'object'"),
        ("- just\n- a list\n", "", "is not of type 'object'"),
        (
            BUILTIN.read_text(encoding="utf-8").replace('"1.34": MUST', "1.34: MUST", 1),
            "requirements[0].levels",
            "key 1.34 must be a quoted string such as '1.35'",
        ),
    ],
)
def test_unreadable_profile_names_file_and_place(tmp_path: Path, text: str, field: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as err:
        load_profile(str(path))
    assert (err.value.file, err.value.field) == (str(path), field)
    assert message in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"/nope\.yaml: no such file$"):
        load_profile(tmp_path / "nope.yaml")


def test_unknown_builtin_lists_the_available_ones() -> None:
    with pytest.raises(ProfileError) as err:
        load_profile("ai-v9")
    assert err.value.file == "ai-v9"
    assert "available: ai-v1.0" in str(err.value)


def test_a_vendor_subset_with_stricter_levels_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = builtin_data()
    keep = {"gang_scheduling", "disaggregated_inference"}
    data.update(id="acme-strict", version="3", description="Acme's in-house gate")
    data["checklists"] = {m: data["checklists"][m] for m in ("1.36", "1.37")}
    data["requirements"] = [r for r in data["requirements"] if r["id"] in keep]
    for req in data["requirements"]:
        req["levels"] = {m: "MUST" for m in data["checklists"]}
    write(tmp_path, data, "acme.yml")
    monkeypatch.chdir(tmp_path)

    vendor = load_profile("acme.yml")  # a bare file name counts as a file by its suffix

    assert (vendor.id, vendor.minors()) == ("acme-strict", ["1.36", "1.37"])
    assert [(r.id, level) for r, level in vendor.for_version("1.36")] == [
        ("disaggregated_inference", "MUST"),
        ("gang_scheduling", "MUST"),
    ]
    assert choose_version(vendor, "1.35", "1.37")[0] == "1.37"
    with pytest.raises(ProfileError, match="older than every checklist; supported: 1.36, 1.37"):
        choose_version(vendor, "1.35", None)


def test_profile_error_without_a_field_reads_file_then_message() -> None:
    assert str(ProfileError("x.yaml", "", "no such file")) == "x.yaml: no such file"
    assert str(ProfileError("x.yaml", "id", "bad")) == "x.yaml: id: bad"


def test_resource_dir_finds_shipped_folders() -> None:
    assert (resource_dir("profiles") / "ai-v1.0.yaml").is_file()
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        resource_dir("no-such-folder")


def test_builtins_load_without_jsonschema_kubernetes_or_pytest() -> None:
    code = (
        "import sys; from kaic.profile import list_profiles, load_profile; "
        "list_profiles(); load_profile('ai-v1.0'); "
        "print(sorted(m for m in ('jsonschema', 'kubernetes', 'pytest') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
