"""`kaic submission lint`: the program validator's rules, offline, over one `vX.Y/<dir>/` folder.

The rules are those of cncf/k8s-ai-conformance `scripts/validate.go` with PR #141 (file:// evidence, parsed
go-test artifacts from v1.37), so a vendor learns before opening a pull request what CI would reject. Where
reviewers ask for more than the validator checks (a verbatim description, the template's level, vector
logos), lint warns. A MUST N/A is an error, as the validator behaves until its PR #146 lands; with
`allow_must_na` it is the warning that PR will print.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from kaic.submission import InputError
from kaic.submission.artifacts import PARSERS, ArtifactError, read_results
from kaic.submission.official import (
    VERSION_IN_PATH,
    YAML_LOADER,
    Template,
    find_template,
    known_digests,
    minor_key,
    minor_of,
    read_template,
    upstream_tests,
)

ERROR, WARNING = "error", "warning"
PRODUCT_FILE = "PRODUCT.yaml"
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
    r"^https://github\.com/cncf/k8s-conformance/tree/(master|main)/v\d+\.\d+/[^/]+/?$"
)
LOGO_SUFFIXES = (".svg", ".eps", ".ai")  # validator PR #133, pending
USER_AGENT = "CNCF-K8s-AI-Conformance-Validator/1.0 (+https://github.com/cncf/k8s-ai-conformance)"
ARTIFACTS_SINCE = (1, 37)  # the first version whose validator parses junit.xml, results.json and e2e.log
_VERSION_DIR = re.compile(r"^v\d+\.\d+$")
_FILE_URL = "file://"
_MUST_NA = " (--allow-must-na lints as it will: a warning, notes required)"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning
    field: str  # where, as people write it: spec.security[0].status
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
    allow_must_na: bool = False,
    online: bool = False,
    version: str | None = None,
) -> list[Finding]:
    """Findings for the submission in `product_dir` (or its PRODUCT.yaml), in document order.

    The version is `version` (v1.37 or 1.37), else the path's `vX.Y/` as the validator reads it; the
    template is `template_path`, else `docs/AIConformance-X.Y.yaml` above the folder (a clone of the
    program's repository). Missing inputs raise InputError; everything wrong in the submission is a finding.
    """
    path = Path(product_dir).resolve()
    product_file = path if path.is_file() else path / PRODUCT_FILE
    if not product_file.is_file():
        raise InputError(f"{product_dir}: no {PRODUCT_FILE} there")
    minor = _minor(product_file, version)
    found = Path(template_path) if template_path else find_template(product_file.parent, minor)
    if found is None:
        raise InputError(
            f"no checklist template for v{minor}: give --checklist with the official AIConformance-{minor}.yaml "
            "(cncf/k8s-ai-conformance docs/), or lint inside a clone of that repository"
        )
    template = read_template(found)
    if template.minor not in (None, minor):
        raise InputError(f"{found} is the template for v{template.minor}, but the submission is for v{minor}")
    return _Linter(product_file.parent, minor, template, allow_must_na).run(product_file, online)


def _minor(product_file: Path, version: str | None) -> str:
    if version is not None:
        minor = minor_of(version)
        if minor is None:
            raise InputError(f"--version {version!r} is not a version such as v1.37")
        return minor
    matches = VERSION_IN_PATH.findall(product_file.as_posix())
    if not matches:
        raise InputError(
            f"{product_file}: no vX.Y/ in the path; put the folder at vX.Y/<dir>/ or give --version"
        )
    return str(minor_of(matches[-1]))


class _Linter:
    """One pass over one PRODUCT.yaml; findings accumulate in document order."""

    def __init__(self, folder: Path, minor: str, template: Template, allow_must_na: bool) -> None:
        self.folder = folder
        self.minor = minor
        self.template = template
        self.allow_must_na = allow_must_na
        self.findings: list[Finding] = []
        self.urls: list[tuple[str, str]] = []  # (field, URL), checked together when online
        self.results: dict[Path, dict[str, str] | ArtifactError] = {}
        self.upstream = upstream_tests()
        self.parse_artifacts = minor_key(minor) >= ARTIFACTS_SINCE

    def add(self, level: str, field: str, message: str) -> None:
        self.findings.append(Finding(level, field, message))

    def run(self, product_file: Path, online: bool) -> list[Finding]:
        official = known_digests().get(self.minor)
        if official != self.template.sha256:
            known = (
                f"differs from the official AIConformance-{self.minor}.yaml kaic knows (sha256 {official})"
            )
            self.add(
                WARNING,
                "template",
                f"{self.template.path} (sha256 {self.template.sha256}) "
                + (known if official else f"is for a version kaic knows no template of (v{self.minor})")
                + "; lint follows the file given",
            )
        try:
            data = yaml.load(product_file.read_text(encoding="utf-8"), Loader=YAML_LOADER)
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            self.add(ERROR, PRODUCT_FILE, f"cannot be parsed: {exc}")
            return self.findings
        if not isinstance(data, dict):
            self.add(ERROR, PRODUCT_FILE, "is not a mapping with metadata and spec")
            return self.findings
        self.metadata(data.get("metadata"))
        self.spec(data.get("spec"))
        if online:
            self.reach()
        return self.findings

    def metadata(self, meta: Any) -> None:
        if not isinstance(meta, dict):
            self.add(ERROR, "metadata", "missing: the product's metadata section is required")
            return
        for name, required in METADATA.items():
            key = next((k for k in (name, snake_case(name)) if k in meta), name)
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

    def spec(self, spec: Any) -> None:
        if not isinstance(spec, dict):
            self.add(ERROR, "spec", "missing: the requirements' section is required")
            return
        for category, wanted in self.template.data["spec"].items():
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
                if expected["id"] not in index:
                    self.add(ERROR, where, f"requirement {expected['id']!r} is missing")
                    continue
                i = index[expected["id"]]
                self.requirement(f"{where}[{i}]", expected, entries[i])

    def requirement(self, where: str, expected: dict[str, Any], entry: dict[str, Any]) -> None:
        level = expected.get("level")
        if _words(entry.get("description")) != _words(expected.get("description")):
            self.add(
                WARNING, f"{where}.description", "differs from the template; reviewers ask for it verbatim"
            )
        if entry.get("level") != level:
            self.add(
                WARNING,
                f"{where}.level",
                f"is {entry.get('level')!r} but the template says {level!r}, and the template's level applies",
            )
        status = self.text(entry, "status", where)
        notes = self.text(entry, "notes", where)
        evidence = self.evidence_items(entry.get("evidence"), f"{where}.evidence")
        if level == "SHOULD" and status == "" and not evidence:
            return  # an unanswered SHOULD, which the validator skips
        if level == "MUST" and status == "N/A" and self.allow_must_na:
            self.add(WARNING, f"{where}.status", "N/A on a MUST passes only once validator PR #146 lands")
        elif level == "MUST" and status == "N/A":
            self.add(
                ERROR, f"{where}.status", "N/A on a MUST is rejected until validator PR #146 lands" + _MUST_NA
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
                self.local(field, ref, entry.get("id"), status)

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

    def local(self, where: str, ref: str, req_id: Any, status: str) -> None:
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
                hint = f"; the validator takes '#…' as part of the name: write '{_FILE_URL}{PurePosixPath(base)}#{anchor}'"
            self.add(ERROR, where, f"{ref!r} is not a file in the submission folder{hint}")
            return
        if not path.resolve().is_relative_to(self.folder):
            self.add(ERROR, where, f"{ref!r} is a link that leads out of the submission folder")
            return
        if self.parse_artifacts and path.name in PARSERS and path.is_file():
            self.artifact(where, path, fragment or self.upstream.get(str(req_id)), bool(fragment), status)

    def artifact(self, where: str, path: Path, test: str | None, named: bool, status: str) -> None:
        """The cited test (the #fragment, else the requirement's upstream test) must not have failed."""
        if path not in self.results:
            try:
                self.results[path] = read_results(path)
            except ArtifactError as exc:
                self.results[path] = exc
        results = self.results[path]
        if isinstance(results, ArtifactError):
            self.add(ERROR, where, f"{path.name}: {results}")
            return
        result = results.get(test) if test else None
        if result is None:
            if named:
                self.add(ERROR, where, f"{path.name} has no test {test}")
        elif result == "fail":
            self.add(ERROR, where, f"{test} failed in {path.name}; a failed test is no evidence")
        elif result == "skip" and status != "N/A":
            self.add(ERROR, where, f"{test} was skipped in {path.name}; a skipped test backs only status N/A")

    def reach(self) -> None:
        """Every http(s) value, each URL asked once, several at a time (as the validator's goroutines do)."""
        from concurrent.futures import ThreadPoolExecutor

        urls = list(dict.fromkeys(url for _, url in self.urls))
        with ThreadPoolExecutor(max_workers=8) as pool:
            problems = dict(zip(urls, pool.map(unreachable, urls), strict=True))
        for where, url in self.urls:
            if problems[url]:
                self.add(ERROR, where, f"{url} is not reachable: {problems[url]}")


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
