"""`kaic submission lint`: the program validator's rules, offline, over one `vX.Y/<dir>/` folder.

The rules are those of cncf/k8s-ai-conformance `scripts/validate.go` as synced in late September 2026 (with
PR #141: file:// evidence, parsed go-test artifacts from v1.37), so a vendor learns before opening a pull
request what CI would reject. Among MUSTs only cluster_autoscaling may be N/A (with notes; a warning).

Lint also catches what the validator misses: an Implemented requirement whose upstream test failed or was
skipped in any of the folder's junit.xml, results.json or e2e.log (cited or not, in every version), artifacts
of different runs, ANSI codes and `go: downloading` lines in e2e.log, a k8sConformanceUrl for another minor.
Where only reviewers ask for more (a verbatim description, the template's level, vector logos), lint warns.

Without the official template the checklist (ids, levels) is kaic's profile's, and the verbatim-description
check is skipped, which the findings say.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from kaic.certify.submission import SubmissionError
from kaic.certify.submission.artifacts import (
    PARSERS,
    Artifact,
    ArtifactError,
    parser_for,
    read_artifact,
    rolled_up,
)
from kaic.certify.submission.official import (
    MUST_NA_ALLOWED,
    PROFILE,
    TARGET_TESTS,
    VERSION_IN_PATH,
    YAML_LOADER,
    Template,
    find_template,
    known_digests,
    minor_of,
    profile_checklist,
    read_template,
    upstream_tests,
)
from kaic.profile import minor_key
from kaic.results.run_dir import PRODUCT_FILE

ERROR, WARNING, NOTE = "error", "warning", "note"  # a note says what lint could not check; it never fails
STATUSES = ("Implemented", "Not Implemented", "Partially Implemented", "N/A")
METADATA = {  # field -> required, in the templates' order
    "kubernetesVersion": True,
    "platformName": True,
    "platformVersion": True,
    "vendorName": True,
    "websiteUrl": True,
    "repoUrl": False,
    "documentationUrl": True,
    "productLogoUrl": True,
    "description": True,
    "contactEmailAddress": True,
    "k8sConformanceUrl": True,  # every version, though the 1.33, 1.34, 1.36 and 1.37 templates lack it
}
K8S_CONFORMANCE_URL = re.compile(
    r"^https://github\.com/cncf/k8s-conformance/tree/(master|main)/(v\d+\.\d+)/[^/]+/?$"
)
LOGO_SUFFIXES = (".svg", ".eps", ".ai")  # validator PR #133, pending
USER_AGENT = "CNCF-K8s-AI-Conformance-Validator/1.0 (+https://github.com/cncf/k8s-ai-conformance)"
ARTIFACTS_SINCE = (1, 37)  # the first version whose validator parses junit.xml, results.json and e2e.log
_VERSION_DIR = re.compile(r"^v\d+\.\d+$")
_FILE_URL = "file://"
_SAME_RUN = 600  # seconds: gotestsum stamps junit.xml when it starts, before `go test` has built anything
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning | note
    field: str  # where, as people write it: spec.security[0] (secure_accelerator_access).status
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.level}: {self.field}: {self.message}"


def snake_case(name: str) -> str:
    """The validator's second spelling of a metadata key: contactEmailAddress -> contact_email_address."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _words(text: Any) -> Any:
    """A description as reviewers read it: a block scalar's line breaks or trailing newline are no edit."""
    return " ".join(text.split()) if isinstance(text, str) else text


def lint(
    product_dir: Path,
    template_path: Path | None = None,
    online: bool = False,
    version: str | None = None,
) -> list[Finding]:
    """Findings for the submission in `product_dir` (or its PRODUCT.yaml), in document order.

    The version is `version` (v1.37 or 1.37), else the path's `vX.Y/` as the validator reads it, else the
    file's metadata.kubernetesVersion. The checklist is `template_path`, else `docs/AIConformance-X.Y.yaml`
    above the folder (a clone of the program's repository), else kaic's profile (no descriptions). Input
    that cannot be read raises SubmissionError; everything wrong in the submission is a finding.
    """
    path = Path(product_dir)
    product_file = path / PRODUCT_FILE
    try:
        if path.is_file():
            product_file = path
        elif not path.is_dir():
            raise SubmissionError(
                f"{path}: no such file or folder; give a vX.Y/<dir>/ submission folder or its {PRODUCT_FILE}"
            )
        elif not product_file.is_file():
            raise SubmissionError(
                f"{path}: no {PRODUCT_FILE} in this folder; give a vX.Y/<dir>/ submission folder that has one"
            )
        raw = product_file.read_bytes()
    except OSError as exc:
        raise SubmissionError(
            f"{exc.filename or path}: cannot be read ({exc.strerror}); give a readable submission folder"
        ) from None
    product_file = product_file.resolve()
    data = _parse(raw)
    minor = _minor(product_file, version, data)
    found = Path(template_path) if template_path else find_template(product_file.parent, minor)
    template = read_template(found) if found else None
    if template is not None and template.minor not in (None, minor):
        raise SubmissionError(
            f"{found}: is the template for v{template.minor}, but the submission is for v{minor}; "
            f"give AIConformance-{minor}.yaml"
        )
    spec = template.data["spec"] if template else profile_checklist(minor)
    if spec is None:
        have = ", ".join(f"v{m}" for m in sorted(known_digests(), key=minor_key))
        raise SubmissionError(
            f"{product_file}: kaic's profile {PROFILE} has no checklist v{minor} (it has {have}); "
            f"give --checklist with the official AIConformance-{minor}.yaml"
        )
    return _Linter(product_file.parent, minor, spec, template).run(data, online)


def _parse(raw: bytes) -> Any:
    """The file's YAML, or the exception saying why it is none (a finding, not an input error)."""
    try:
        return yaml.load(raw.decode("utf-8"), Loader=YAML_LOADER)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        return exc


def _meta_key(meta: dict[str, Any], name: str) -> str:
    """The key the file spells `name` with: camelCase first, then the validator's snake_case."""
    return next((k for k in (name, snake_case(name)) if k in meta), name)


def _minor(product_file: Path, version: str | None, data: Any) -> str:
    if version is not None:
        minor = minor_of(version)
        if minor is None:
            raise SubmissionError(
                f"--version: {version!r} is not a checklist version; give one such as v1.37"
            )
        return minor
    matches = VERSION_IN_PATH.findall(product_file.as_posix())
    if matches:
        return str(minor_of(matches[-1]))
    meta = data.get("metadata") if isinstance(data, dict) else None
    named = meta.get(_meta_key(meta, "kubernetesVersion")) if isinstance(meta, dict) else None
    minor = minor_of(named) if isinstance(named, str) else None
    if minor is None:
        raise SubmissionError(
            f"{product_file}: no vX.Y/ in the path and no metadata.kubernetesVersion such as v1.37; "
            "put the folder at vX.Y/<dir>/ or give --version"
        )
    return minor


class _Linter:
    """One pass over one PRODUCT.yaml; findings accumulate in document order, the folder's artifacts last."""

    def __init__(
        self, folder: Path, minor: str, spec: dict[str, list[dict[str, Any]]], template: Template | None
    ) -> None:
        self.folder = folder
        self.minor = minor
        self.spec_wanted = spec
        self.template = template
        self.findings: list[Finding] = []
        self.urls: list[tuple[str, str]] = []  # (field, URL), checked together when online
        self.upstream = upstream_tests()
        self.parse_cited = minor_key(minor) >= ARTIFACTS_SINCE
        self.artifacts: dict[Path, Artifact | ArtifactError] = {p: _read(p) for p in _artifacts(folder)}
        self.cited: set[Path] = set()
        # (requirement, artifact) pairs whose upstream test a citation already judged (no double report)
        self.judged: set[tuple[str, Path]] = set()

    def add(self, level: str, field: str, message: str) -> None:
        self.findings.append(Finding(level, field, message))

    def run(self, data: Any, online: bool) -> list[Finding]:
        if self.template is None:
            self.add(
                NOTE,
                "spec[*].description",
                f"not compared with the official wording (kaic keeps no copy of it; ids and levels are "
                f"from its profile {PROFILE}): give --checklist AIConformance-{self.minor}.yaml to check "
                "them verbatim",
            )
        else:
            self.drift(self.template)
        if isinstance(data, Exception):
            self.add(ERROR, PRODUCT_FILE, f"cannot be parsed: {data}")
            return self.findings
        if not isinstance(data, dict):
            self.add(ERROR, PRODUCT_FILE, "is not a mapping with metadata and spec")
            return self.findings
        self.metadata(data.get("metadata"))
        self.spec(data.get("spec"))
        self.folder_artifacts()
        if online:
            self.reach()
        return self.findings

    def drift(self, template: Template) -> None:
        official = known_digests().get(self.minor)
        if official != template.sha256:
            known = (
                f"differs from the official AIConformance-{self.minor}.yaml kaic knows (sha256 {official})"
            )
            self.add(
                WARNING,
                "template",
                f"{template.path} (sha256 {template.sha256}) "
                + (known if official else f"is for a version kaic knows no template of (v{self.minor})")
                + "; lint follows the file given",
            )

    def metadata(self, meta: Any) -> None:
        if not isinstance(meta, dict):
            self.add(ERROR, "metadata", "missing: the product's metadata section is required")
            return
        for name, required in METADATA.items():
            key = _meta_key(meta, name)
            value, where = meta.get(key), f"metadata.{key}"
            if value is None:
                if required:
                    self.add(ERROR, where, "required but missing")
            elif not isinstance(value, str):
                self.add(ERROR, where, f"must be a string, not {type(value).__name__} {value!r}: quote it")
            elif not value.strip():
                if required:
                    self.add(ERROR, where, "required but empty")
            elif value.startswith("[") and value.endswith("]"):
                self.add(ERROR, where, f"still the template's placeholder {value!r}")
            elif name == "k8sConformanceUrl" and not K8S_CONFORMANCE_URL.match(value):
                self.add(
                    ERROR,
                    where,
                    f"{value!r} is not https://github.com/cncf/k8s-conformance/tree/main/vX.Y/<product>",
                )
            elif value.startswith("http"):
                if name == "productLogoUrl" and not value.lower().endswith(LOGO_SUFFIXES):
                    self.add(WARNING, where, "the logo should be an SVG, EPS or AI file (validator PR #133)")
                self.urls.append((where, value))
            if name == "contactEmailAddress" and isinstance(value, str) and value and not _EMAIL.match(value):
                self.add(WARNING, where, f"{value!r} does not look like an email address")
            if (
                name == "kubernetesVersion"
                and isinstance(value, str)
                and minor_of(value) not in (None, self.minor)
            ):
                self.add(WARNING, where, f"{value!r} but the folder is for v{self.minor}")
            url = (
                K8S_CONFORMANCE_URL.match(value)
                if name == "k8sConformanceUrl" and isinstance(value, str)
                else None
            )
            if url and minor_of(url[2]) != self.minor:
                self.add(
                    WARNING,
                    where,
                    f"names Kubernetes {url[2]}, but the submission is for v{self.minor}; "
                    f"link the product's k8s-conformance entry under v{self.minor}/",
                )

    def spec(self, spec: Any) -> None:
        if not isinstance(spec, dict):
            self.add(ERROR, "spec", "missing: the requirements' section is required")
            return
        for category, wanted in self.spec_wanted.items():
            where = f"spec.{category}"
            entries = spec.get(category)
            if not isinstance(entries, list):
                self.add(ERROR, where, f"category {category!r} is missing or not a list")
                continue
            index: dict[Any, int] = {}
            for i, entry in enumerate(entries):
                if isinstance(entry, dict):
                    index[entry.get("id")] = i  # a repeated id: the last one counts, as for the validator
                else:
                    self.add(ERROR, f"{where}[{i}]", "must be a mapping with id, status, evidence and notes")
            for expected in wanted:
                req_id = expected["id"]
                if req_id not in index:
                    self.add(ERROR, f"{where} ({req_id})", f"requirement {req_id!r} is missing")
                    continue
                i = index[req_id]
                self.requirement(f"{where}[{i}] ({req_id})", expected, entries[i])

    def requirement(self, where: str, expected: dict[str, Any], entry: dict[str, Any]) -> None:
        """One requirement; `where` names it by position and id: spec.security[0] (secure_accelerator_access)
        says which entry and which requirement, even where an edited file moved or misnamed it."""
        req_id, level = expected["id"], expected.get("level")
        if "description" in expected and _words(entry.get("description")) != _words(expected["description"]):
            self.add(
                WARNING, f"{where}.description", "differs from the template; reviewers ask for it verbatim"
            )
        if entry.get("level") != level:
            self.add(
                WARNING,
                f"{where}.level",
                f"is {entry.get('level')!r} but the checklist says {level!r}, "
                "and the checklist's level applies",
            )
        status = self.text(entry, "status", where)
        notes = self.text(entry, "notes", where)
        evidence = self.evidence_items(entry.get("evidence"), f"{where}.evidence")
        if level == "SHOULD" and status == "" and not evidence:
            return  # an unanswered SHOULD, which the validator skips
        if level == "MUST" and status == "N/A" and req_id == MUST_NA_ALLOWED:
            if notes.strip():
                self.add(
                    WARNING,
                    f"{where}.status",
                    "N/A on a MUST: the validator accepts it here, with notes, and prints a warning; "
                    "reviewers check that the notes show the platform has nothing to autoscale",
                )
        elif level == "MUST" and status == "N/A":
            self.add(
                ERROR,
                f"{where}.status",
                f"N/A on a MUST is rejected: among MUSTs only {MUST_NA_ALLOWED} may be N/A; "
                f"{req_id} must be 'Implemented'",
            )
        elif level == "MUST" and status != "Implemented":
            self.add(ERROR, f"{where}.status", f"a MUST must be 'Implemented', not {status!r}")
        elif status not in STATUSES:
            allowed = ", ".join(STATUSES)
            self.add(
                ERROR, f"{where}.status", f"{status!r} is not one of {allowed} (or empty without evidence)"
            )
        if status == "N/A" and not notes.strip():
            self.add(ERROR, f"{where}.notes", "N/A needs notes saying why the requirement does not apply")
        for field, ref in evidence:
            if ref.startswith(("http://", "https://")):
                self.urls.append((field, ref))
            elif ref:
                self.local(field, ref, req_id, status)
        if status == "Implemented":
            self.upstream_results(where, req_id)

    def upstream_results(self, where: str, req_id: str) -> None:
        """An Implemented requirement's upstream test, subtests rolled up, in every artifact of the folder
        that no citation of it already judged: failed is an error; skipped is an error for the validator's
        target tests and a warning for the others (a manual attestation may stand beside it)."""
        test = self.upstream.get(req_id)
        if test is None:
            return
        seen: dict[str, list[str]] = {"fail": [], "skip": []}
        for path, artifact in self.artifacts.items():
            result = None if isinstance(artifact, ArtifactError) else rolled_up(artifact.results, test)
            if result in seen and (req_id, path) not in self.judged:
                seen[result].append(self.name(path))
        if seen["fail"]:
            self.add(
                ERROR, f"{where}.status", f"is Implemented, but {test} failed in {', '.join(seen['fail'])}"
            )
        if seen["skip"] and test in TARGET_TESTS:
            self.add(
                ERROR,
                f"{where}.status",
                f"is Implemented, but {test} was skipped in {', '.join(seen['skip'])}; "
                "the validator accepts a skipped target test only for status N/A",
            )
        elif seen["skip"]:
            self.add(
                WARNING,
                f"{where}.status",
                f"is Implemented, but {test} was skipped in {', '.join(seen['skip'])}; "
                "reviewers will look for the evidence that replaces it",
            )

    def text(self, entry: dict[str, Any], key: str, where: str) -> str:
        """A string field as the validator's decoder reads it: absent is empty, any scalar is its text."""
        value = entry.get(key)
        if isinstance(value, (dict, list)):
            self.add(ERROR, f"{where}.{key}", "must be a string")
            return ""
        return "" if value is None else str(value)

    def evidence_items(self, value: Any, where: str) -> list[tuple[str, str]]:
        """(field, reference) pairs; a lone string is read as one item, but the validator wants a list."""
        if value is None:
            return []
        if isinstance(value, str):
            self.add(ERROR, where, f"is the string {value!r}; the validator reads evidence only as a list")
            return [(where, value)]
        if not isinstance(value, list):
            self.add(ERROR, where, "must be a list of URLs or paths")
            return []
        items = []
        for j, item in enumerate(value):
            if isinstance(item, str):
                items.append((f"{where}[{j}]", item))
            else:
                self.add(ERROR, f"{where}[{j}]", f"must be a string, not {type(item).__name__}")
        return items

    def local(self, where: str, ref: str, req_id: str, status: str) -> None:
        """A path inside the folder, plain or `file://` (relative to the folder or as vX.Y/<dir>/...)."""
        file_url = ref.startswith(_FILE_URL)
        path_text, _, fragment = ref.removeprefix(_FILE_URL).partition("#") if file_url else (ref, "", "")
        parts = PurePosixPath(path_text).parts
        if path_text.startswith("/"):
            self.add(ERROR, where, f"{ref!r} is an absolute path; cite a file inside the submission folder")
            return
        if ".." in parts:
            self.add(ERROR, where, f"{ref!r} climbs out with '..'; cite a file inside the submission folder")
            return
        if file_url and len(parts) > 2 and _VERSION_DIR.match(parts[0]):
            if parts[:2] != (f"v{self.minor}", self.folder.name):
                self.add(
                    ERROR, where, f"{ref!r} points into another submission folder, {parts[0]}/{parts[1]}"
                )
                return
            parts = parts[2:]
        path = self.folder.joinpath(*parts)
        if not parts or not path.exists():
            hint = ""
            base, _, anchor = ref.partition("#")
            if not file_url and anchor and (self.folder / base).exists():
                hint = (
                    "; the validator takes '#…' as part of the name: "
                    f"write '{_FILE_URL}{PurePosixPath(base)}#{anchor}'"
                )
            self.add(ERROR, where, f"{ref!r} is not a file in the submission folder{hint}")
            return
        if not path.resolve().is_relative_to(self.folder):
            self.add(ERROR, where, f"{ref!r} is a link that leads out of the submission folder")
            return
        if parser_for(path) and path.is_file():
            self.cited.add(path)
            if self.parse_cited:
                self.artifact(where, path, req_id, fragment, status)

    def artifact(self, where: str, path: Path, req_id: str, fragment: str, status: str) -> None:
        """The cited test (the #fragment, else the requirement's upstream test), subtests rolled up, must not
        have failed, and only N/A may cite it skipped."""
        if path not in self.artifacts:
            self.artifacts[path] = _read(path)
        artifact = self.artifacts[path]
        if isinstance(artifact, ArtifactError):
            self.add(ERROR, where, f"{path.name}: {artifact}")
            return
        test, named = fragment or self.upstream.get(req_id), bool(fragment)
        if test is not None and test == self.upstream.get(req_id):
            self.judged.add((req_id, path))
        result = rolled_up(artifact.results, test) if test else None
        if result is None:
            if named:
                self.add(ERROR, where, f"{path.name} has no test {test}")
        elif result == "fail":
            self.add(ERROR, where, f"{test} failed in {path.name}; a failed test is no evidence")
        elif result == "skip" and status != "N/A":
            self.add(ERROR, where, f"{test} was skipped in {path.name}; a skipped test backs only status N/A")

    def folder_artifacts(self) -> None:
        """What the validator never checks across the folder's artifacts: that they come from one run, and
        that e2e.log is clean text; from v1.37, an artifact that does not parse and that no evidence cites
        (a citation reports it as an error)."""
        parsed = [(path, a) for path, a in self.artifacts.items() if isinstance(a, Artifact)]
        for path, artifact in parsed[1:]:
            reasons = _other_run(parsed[0][1], artifact, self.name(parsed[0][0]))
            if reasons:
                self.add(
                    WARNING,
                    self.name(path),
                    f"comes from another run than {self.name(parsed[0][0])}: {reasons}",
                )
        for path, artifact in parsed:
            for noise in artifact.noise:
                self.add(WARNING, self.name(path), f"has {noise}")
        for path, entry in self.artifacts.items():
            if isinstance(entry, ArtifactError) and self.parse_cited and path not in self.cited:
                self.add(
                    WARNING,
                    self.name(path),
                    f"{entry}: the validator parses a file of this name, and lint could not read its tests",
                )

    def name(self, path: Path) -> str:
        """A path as the submission writes it: relative to the folder."""
        return path.relative_to(self.folder).as_posix()

    def reach(self) -> None:
        """Every http(s) value, each URL asked once, several at a time (as the validator's goroutines do)."""
        from concurrent.futures import ThreadPoolExecutor

        urls = list(dict.fromkeys(url for _, url in self.urls))
        with ThreadPoolExecutor(max_workers=8) as pool:
            problems = dict(zip(urls, pool.map(unreachable, urls), strict=True))
        for where, url in self.urls:
            if problems[url]:
                self.add(ERROR, where, f"{url} is not reachable: {problems[url]}")


def _artifacts(folder: Path) -> list[Path]:
    """The folder's files that the validator parses by name (junit.xml, results.json, e2e.log, in any case),
    junit.xml first; links that lead out of the folder are left out."""
    found = [
        Path(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if parser_for(Path(name)) and Path(root, name).resolve().is_relative_to(folder)
    ]
    order = list(PARSERS)
    return sorted(found, key=lambda p: (order.index(p.name.lower()), p))


def _read(path: Path) -> Artifact | ArtifactError:
    try:
        return read_artifact(path)
    except ArtifactError as exc:
        return exc


def _other_run(first: Artifact, other: Artifact, first_name: str) -> str:
    """Why `other` is not from the run that wrote `first` ('' when nothing says so): other tests, other
    results of the same test, or a start more than _SAME_RUN seconds apart."""
    reasons = []
    only_first, only_other = (
        sorted(first.results.keys() - other.results),
        sorted(other.results.keys() - first.results),
    )
    if only_first or only_other:
        reasons.append(
            f"other tests (only in {first_name}: {_few(only_first)}; only here: {_few(only_other)})"
        )
    differ = sorted(t for t in first.results.keys() & other.results if first.results[t] != other.results[t])
    if differ:
        t = differ[0]
        more = f" (and {len(differ) - 1} more)" if len(differ) > 1 else ""
        said = {"pass": "passed", "fail": "failed", "skip": "was skipped"}
        reasons.append(
            f"{t} {said[other.results[t]]} here but {said[first.results[t]]} in {first_name}{more}"
        )
    if first.started and other.started and abs((first.started - other.started).total_seconds()) > _SAME_RUN:
        reasons.append(
            f"started {other.started.isoformat()}, but {first_name} at {first.started.isoformat()}"
        )
    return "; ".join(reasons)


def _few(names: list[str], shown: int = 3) -> str:
    if not names:
        return "none"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def unreachable(url: str, timeout: float = 30.0) -> str | None:
    """Why `url` fails the validator's check (HEAD, then GET; below 400 passes, 429 fails), or None."""
    import urllib.error
    import urllib.request

    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "Accept-Language": "en-US,en;q=0.5",
    }
    problem = ""
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(url, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                code = response.status
        except urllib.error.HTTPError as exc:
            code = exc.code
            exc.close()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problem = str(getattr(exc, "reason", exc))
            continue
        if code < 400:
            return None
        problem = f"HTTP {code}" + (
            " (rate limited; the validator counts 429 as a failure)" if code == 429 else ""
        )
    return problem
