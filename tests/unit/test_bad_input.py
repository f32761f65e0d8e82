"""Bad input to every command: one `kaic: error:` line naming the file, flag or key, exit 2, nothing written.

Each case runs in-process (click's CliRunner) in a fresh folder with its own HOME and config dir, and checks
the exit code, that the message names what is wrong, that no traceback shows, and that no file anywhere under
the test's folder was created or changed. A few cases run the installed entry point in a subprocess, which is
what CI gates call. Internal errors (exit 3, traceback in a file) and the output folder's atomic claim are at
the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kaic.certify import keys
from kaic.cli.main import main
from kaic.results.report import save
from kaic.results.run_dir import REPORT_FILE, TRACEBACK_FILE
from kaic.results.writers import write_all

PASSWORD = "correct horse"
CHECKLIST = (
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "checklists" / "AIConformance-1.37.yaml"
)
KUBECONFIG = (  # a server on a closed loopback port: valid input, and nothing could answer
    "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
    "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
    "users: [{name: u, user: {token: secret-token-value}}]\n"
    "contexts: [{name: c, context: {cluster: c, user: u}}, {name: d, context: {cluster: c, user: u}}]\n"
)
PROFILE = Path(__file__).resolve().parents[2] / "profiles" / "ai-v1.0.yaml"


@dataclass
class World:
    """The inputs every case may name: `{in}` is the folder of prepared files, `{cwd}` the working folder."""

    root: Path
    inputs: Path
    cwd: Path

    def fmt(self, text: str) -> str:
        return text.replace("{in}", str(self.inputs)).replace("{cwd}", str(self.cwd))


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _report(folder: Path, doc: Any) -> None:
    _write(folder / REPORT_FILE, doc if isinstance(doc, (str, bytes)) else json.dumps(doc))


def _inputs(base: Path, build_sample_report: Any, build_certified_report: Any) -> None:
    """Every file the cases below point at."""
    _write(base / "kc", KUBECONFIG)
    _write(base / "binary", b"\x00\xff\xfe\x89PNG\r\n\x1a\n")
    _write(base / "malformed.yaml", "a: [\n")
    _write(base / "list.yaml", "- a\n- b\n")
    _write(base / "empty.yaml", "")
    _write(base / "afile", "not a folder\n")
    _write(base / "nonempty" / "keep.txt", "an earlier run\n")
    (base / "emptydir").mkdir()
    # profiles
    _write(base / "profile-bad-id.yaml", PROFILE.read_text().replace("id: ai-v1.0", "id: 5", 1))
    _write(base / "profile-recursive.yaml", "a: &x [*x]\n")
    # kubeconfigs
    _write(base / "kc-nocurrent", KUBECONFIG.replace("current-context: c\n", ""))
    _write(base / "kc-badcurrent", KUBECONFIG.replace("current-context: c", "current-context: gone"))
    _write(base / "kc-contexts-map", "apiVersion: v1\nkind: Config\ncontexts: {a: b}\n")
    _write(
        base / "kc-nocluster",
        KUBECONFIG.replace("context: {cluster: c, user: u}}, {", "context: {cluster: x, user: u}}, {"),
    )
    _write(
        base / "kc-badca",
        KUBECONFIG.replace(
            "server: 'https://127.0.0.1:9'",
            "server: 'https://127.0.0.1:9', certificate-authority-data: '!!notbase64'",
        ),
    )
    # probe modules that cannot be imported
    _write(base / "probes-syntax" / "test_broken.py", "def broken(:\n")
    _write(base / "probes-raise" / "test_raise.py", "raise RuntimeError('boom at import')\n")
    _write(base / "probes-binary" / "test_binary.py", b"\x00\xff\xfe")
    # reports
    sample = build_sample_report()
    run = base / "run"
    run.mkdir()
    save(sample, run)
    write_all(sample, run)
    certified = base / "certified"
    certified.mkdir()
    cert = build_certified_report()
    save(cert, certified)
    write_all(cert, certified)
    good = sample.to_dict()
    _report(base / "r-list", [])
    _report(base / "r-runnull", {**good, "run": None})
    _report(base / "r-notjson", "{not json")
    _report(base / "r-binary", b"\x00\xff\xfe")
    _report(base / "r-outcome", {**good, "requirements": [{**good["requirements"][0], "outcome": "great"}]})
    _report(base / "r-schema", {**good, "schema": "kaic.dev/report/v0"})
    _report(base / "r-deep", "[" * 100_000 + "]" * 100_000)
    _report(base / "r-extra", {**good, "extra": 1})
    _report(
        base / "r-noreason",
        {
            **good,
            "requirements": [
                {
                    **good["requirements"][0],
                    "probes": [{**good["requirements"][0]["probes"][0], "outcome": "unknown", "reason": ""}],
                }
            ],
        },
    )
    (base / "r-isdir" / REPORT_FILE).mkdir(parents=True)
    (base / "r-missing").mkdir()
    # waivers
    _write(base / "w-shape.yaml", "- requirement: x\n")
    _write(
        base / "w-unknown.yaml",
        "waivers:\n- {requirement: a, reason: r, owner: o, expires: '2030-01-01', colour: red}\n",
    )
    _write(base / "w-missing.yaml", "waivers:\n- {requirement: a, reason: r, owner: o}\n")
    _write(base / "w-date.yaml", "waivers:\n- {requirement: a, reason: r, owner: o, expires: 2030-02-30}\n")
    _write(
        base / "w-probe.yaml",
        "waivers:\n- {requirement: a, probe: b.c, reason: r, owner: o, expires: 2030-01-01}\n",
    )
    _write(base / "w-number.yaml", "waivers:\n- {requirement: 5, reason: r, owner: o, expires: 2030-01-01}\n")
    # product files, trust files, keys
    _write(
        base / "product.yaml",
        "vendorName: Acme\nplatformName: Acme AI\nplatformVersion: '2'\n"
        "description: d\ncontactEmailAddress: a@acme.example\nwebsiteUrl: https://acme.example/\n"
        "documentationUrl: https://acme.example/d\nproductLogoUrl: https://acme.example/l.svg\n"
        "k8sConformanceUrl: https://github.com/cncf/k8s-conformance\n",
    )
    _write(base / "product-missing.yaml", "vendorName: Acme\n")
    _write(base / "trust-nokeys.yaml", "keys: []\n")
    _write(base / "trust-nofp.yaml", "keys:\n- {name: a}\n")
    pair = keys.generate(base / "kaic", PASSWORD.encode())
    open_key = base / "open.key"
    open_key.write_bytes(pair.private.read_bytes())
    open_key.chmod(0o644)
    notkey = base / "not.key"
    notkey.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    notkey.chmod(0o600)
    signed = base / "signed"
    signed.mkdir()
    save(sample, signed)
    from kaic.certify.sign import sign_run

    sign_run(signed, keys.load_private(str(pair.private), PASSWORD.encode()))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, report_builders: tuple[Any, Any]) -> Path:
    base = tmp_path_factory.mktemp("inputs")
    _inputs(base, *report_builders)
    return base


@pytest.fixture
def world(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """A fresh working folder, HOME and config dir; no kubeconfig, no KAIC_* variable, a key passphrase."""
    import shutil

    inputs = tmp_path / "in"
    shutil.copytree(prepared, inputs, symlinks=True)
    (inputs / "kaic.key").chmod(0o600)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv(keys.PASSWORD_ENV, PASSWORD)
    for var in list(os.environ):
        if (
            var.startswith("KAIC_")
            and var != keys.PASSWORD_ENV
            or var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
        ):
            monkeypatch.delenv(var)
    return World(tmp_path, inputs, cwd)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `root` with its size and modification time: what 'nothing written'
    means."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            found[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return found


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    names: tuple[str, ...]  # what the message must name: the file, flag or key, and what is wrong
    env: dict[str, str | None] = field(default_factory=dict)
    config: str | None = None  # a config file's text, passed with --config


def case(
    id: str,
    args: str | list[str],
    *names: str,
    env: dict[str, str | None] | None = None,
    config: str | None = None,
) -> Any:
    return pytest.param(
        Case(id, tuple(args.split() if isinstance(args, str) else args), names, env or {}, config), id=id
    )


KC = "--kubeconfig {in}/kc"
RUN = f"run {KC}"

CONFIG = [
    case(
        "config-negative-timeout",
        "run",
        "config.yaml: run.timeout: -5 is not a duration",
        config="run:\n  timeout: -5\n",
    ),
    case(
        "config-boolean-timeout",
        "run",
        "config.yaml: timeout: true is not a duration",
        config="timeout: true\n",
    ),
    case("config-zero-timeout", "run", "config.yaml: timeout: 0 is not a duration", config="timeout: 0\n"),
    case(
        "config-infinite-timeout",
        "run",
        "config.yaml: timeout: inf is not a duration",
        config="timeout: .inf\n",
    ),
    case(
        "config-nan-timeout",
        "run",
        "config.yaml: run.timeout: nan is not a duration",
        config="run:\n  timeout: .nan\n",
    ),
    case(
        "config-word-timeout",
        "run",
        "config.yaml: request-timeout: soon is not a duration",
        config="request-timeout: soon\n",
    ),
    case("config-parallel-zero", "run", "config.yaml: parallel: ", "--parallel", config="parallel: 0\n"),
    case("config-parallel-big", "run", "config.yaml: run.parallel: ", "33", config="run:\n  parallel: 33\n"),
    case("config-parallel-fraction", "run", "config.yaml: parallel: ", "2.5", config="parallel: 2.5\n"),
    case("config-parallel-boolean", "run", "config.yaml: parallel: true is not", config="parallel: true\n"),
    case("config-mode-unknown", "plan", "config.yaml: mode: ", "'fast' is not one of", config="mode: fast\n"),
    case(
        "config-mode-list",
        "plan",
        "config.yaml: mode: expected one value, not a list",
        config="mode: [quick]\n",
    ),
    case("config-mode-null", "plan", "config.yaml: plan.mode: has no value", config="plan:\n  mode:\n"),
    case("config-mode-mapping", "plan", "config.yaml: mode: no such command", config="mode: {a: b}\n"),
    case(
        "config-switch-text",
        "run",
        "config.yaml: run.dry-run: 'often' is not true or false",
        config="run:\n  dry-run: often\n",
    ),
    case(
        "config-focus-mapping",
        "plan",
        "config.yaml: focus: a mapping is not",
        config="focus: [gang_scheduling, {a: b}]\n",
    ),
    case(
        "config-version-float",
        "plan",
        "config.yaml: plan.kubernetes-version: 1.3 is a number; quote it",
        config="plan:\n  kubernetes-version: 1.30\n",
    ),
    case(
        "config-image-not-pair", "plan", "config.yaml: image: ", "use KEY=VALUE", config="image: [ubuntu]\n"
    ),
    case(
        "config-service",
        "plan",
        "config.yaml: prometheus-service: ",
        "NAMESPACE/NAME",
        config="prometheus-service: prometheus\n",
    ),
    case(
        "config-output-other-command",
        "run",
        "config.yaml: output: 'table' is not one of",
        config="output: table\n",
    ),
    case(
        "config-skip-unknown",
        "plan",
        "config.yaml: skip (--skip) bogus: not a requirement",
        config="skip: bogus\n",
    ),
    case(
        "config-focus-certified",
        "plan",
        "config.yaml: mode (--mode) certified runs every requirement",
        config="plan:\n  mode: certified\n  focus: [gang_scheduling]\n",
    ),
    case(
        "env-mode-certified",
        "plan --focus gang_scheduling",
        "$KAIC_MODE (--mode) certified runs every requirement",
        env={"KAIC_MODE": "certified"},
    ),
    case(
        "config-unknown-key", "plan", "config.yaml: colour: unknown option; valid: ", config="colour: red\n"
    ),
    case(
        "config-unknown-section-key",
        "plan",
        "config.yaml: plan.rbca: unknown option",
        config="plan:\n  rbca: true\n",
    ),
    case(
        "config-unknown-command",
        "plan",
        "config.yaml: runn: no such command; valid: ",
        config="runn:\n  mode: quick\n",
    ),
    case("config-own-flag", "plan", "config.yaml: config: unknown option", config="config: other.yaml\n"),
    case("config-malformed", "plan", "config.yaml: not valid YAML", "line 2", config="mode: [unclosed\n"),
    case("config-list", "plan", "config.yaml: expected a mapping of option names", config="- a\n- b\n"),
    case("config-recursive", "plan", "config.yaml: ", config="a: &x {b: *x}\n"),
    case(
        "config-date",
        "diff {in}/run {in}/run",
        "config.yaml: today: a YAML date is not",
        config="today: 2026-01-01\n",
    ),
    case(
        "config-labels",
        "plan",
        "config.yaml: gang-job-labels: ",
        "KEY=VALUE",
        config="gang-job-labels: [a]\n",
    ),
    case(
        "config-endpoint",
        "plan",
        "config.yaml: disaggregated-endpoint: ",
        "http://",
        config="disaggregated-endpoint: gw\n",
    ),
    case(
        "config-cleanup-section",
        "cleanup --all",
        "config.yaml: cleanup.cleanup-timeout: -1 is not a duration",
        config="cleanup:\n  cleanup-timeout: -1\n",
    ),
    case(
        "config-nested-section",
        "profiles list",
        "config.yaml: profiles.show.output: 'xml' is not one of",
        config="profiles:\n  show:\n    output: xml\n",
    ),
    case("config-missing", "--config {in}/nope.yaml plan", "{in}/nope.yaml: no such config file"),
    case("config-directory", "--config {in}/emptydir plan", "--config", "{in}/emptydir"),
    case("config-binary", "--config {in}/binary plan", "{in}/binary: not UTF-8 text"),
    case(
        "config-env-missing",
        "plan",
        "{in}/gone.yaml: no such config file",
        env={"KAIC_CONFIG": "{in}/gone.yaml"},
    ),
    case("config-env-directory", "plan", "$KAIC_CONFIG (--config)", env={"KAIC_CONFIG": "{in}/emptydir"}),
]

ENVIRONMENT = [
    case("env-mode", "plan", "$KAIC_MODE (--mode): 'fast' is not one of", env={"KAIC_MODE": "fast"}),
    case("env-profile", "plan", "nope: no built-in profile", env={"KAIC_PROFILE": "nope"}),
    case(
        "env-gang-scheduler",
        "plan",
        "$KAIC_GANG_SCHEDULER (--gang-scheduler)",
        env={"KAIC_GANG_SCHEDULER": "kai"},
    ),
    case("env-operator", "plan", "$KAIC_OPERATOR (--operator)", env={"KAIC_OPERATOR": "x"}),
    case(
        "env-gang-labels",
        "plan",
        "$KAIC_GANG_JOB_LABELS (--gang-job-labels)",
        "KEY=VALUE",
        env={"KAIC_GANG_JOB_LABELS": "nolabel"},
    ),
    case(
        "env-context",
        "run",
        "$KAIC_CONTEXT (--context) nosuch: no such context",
        "contexts: c, d",
        env={"KUBECONFIG": "{in}/kc", "KAIC_CONTEXT": "nosuch"},
    ),
    case(
        "env-kubeconfig-malformed",
        "run",
        "{in}/malformed.yaml: kubeconfig is not valid YAML",
        env={"KUBECONFIG": "{in}/malformed.yaml"},
    ),
    case(
        "env-kubeconfig-missing", "run", "{in}/gone: no such kubeconfig file", env={"KUBECONFIG": "{in}/gone"}
    ),
    case(
        "env-kubeconfig-list-missing",
        "run",
        "no such kubeconfig file",
        env={"KUBECONFIG": "{in}/gone:{in}/gone2"},
    ),
    case(
        "env-kubeconfig-list-bad",
        "run",
        "{in}/binary: not a kubeconfig",
        env={"KUBECONFIG": "{in}/kc:{in}/binary"},
    ),
    case(
        "env-output-dir",
        RUN,
        "$KAIC_OUTPUT_DIR (--output-dir) {in}/afile/sub",
        env={"KAIC_OUTPUT_DIR": "{in}/afile/sub"},
    ),
    case(
        "env-sign-key",
        RUN,
        "{in}/gone.key: cannot read the private key",
        env={"KAIC_SIGN_KEY": "{in}/gone.key"},
    ),
    case(
        "env-sign-key-var",
        RUN,
        "env://KAIC_NOPE: the environment variable KAIC_NOPE is not set",
        env={"KAIC_SIGN_KEY": "env://KAIC_NOPE"},
    ),
]

RUN_CASES = [
    case("run-mode", f"{RUN} --mode fast", "--mode: 'fast' is not one of"),
    case("run-parallel-zero", f"{RUN} --parallel 0", "--parallel: "),
    case("run-parallel-big", f"{RUN} --parallel 33", "--parallel: "),
    case("run-parallel-word", f"{RUN} --parallel many", "--parallel: "),
    case("run-timeout-negative", f"{RUN} --timeout -5", "--timeout: -5 is not a duration"),
    case("run-timeout-zero", f"{RUN} --timeout 0", "--timeout: 0 is not a duration"),
    case("run-timeout-word", f"{RUN} --timeout soon", "--timeout: soon is not a duration"),
    case("run-timeout-unit", f"{RUN} --timeout 5d", "--timeout: 5d is not a duration"),
    case("run-timeout-huge", f"{RUN} --timeout {'9' * 30}h", "--timeout: ", "is not a duration"),
    case("run-probe-timeout", f"{RUN} --probe-timeout -1", "--probe-timeout: -1 is not a duration"),
    case("run-cleanup-timeout", f"{RUN} --cleanup-timeout 0s", "--cleanup-timeout: 0s is not a duration"),
    case(
        "run-request-timeout-nan", f"{RUN} --request-timeout nan", "--request-timeout: nan is not a duration"
    ),
    case(
        "run-request-timeout-inf", f"{RUN} --request-timeout inf", "--request-timeout: inf is not a duration"
    ),
    case(
        "run-gang-window",
        f"{RUN} --gang-negative-window -1s",
        "--gang-negative-window: -1s is not a duration",
    ),
    case(
        "run-schedule-timeout", f"{RUN} --schedule-timeout abc", "--schedule-timeout: abc is not a duration"
    ),
    case(
        "run-operator-ready",
        f"{RUN} --operator-ready-timeout x",
        "--operator-ready-timeout: x is not a duration",
    ),
    case(
        "run-operator-reconcile",
        f"{RUN} --operator-reconcile-timeout 0",
        "--operator-reconcile-timeout: 0 is not",
    ),
    case(
        "run-autoscaler-up", f"{RUN} --autoscaler-scale-up-timeout -1m", "--autoscaler-scale-up-timeout: -1m"
    ),
    case(
        "run-autoscaler-down",
        f"{RUN} --autoscaler-scale-down-timeout x",
        "--autoscaler-scale-down-timeout: x",
    ),
    case(
        "run-autoscaler-label",
        f"{RUN} --autoscaler-node-pool-label nolabel",
        "--autoscaler-node-pool-label: ",
    ),
    case(
        "run-accelerator", f"{RUN} --accelerator-profile tpu9", "--accelerator-profile: 'tpu9' is not one of"
    ),
    case("run-allocation", f"{RUN} --allocation-mode magic", "--allocation-mode: 'magic' is not one of"),
    case("run-gang-scheduler", f"{RUN} --gang-scheduler kai", "--gang-scheduler: 'kai' is not one of"),
    case("run-operator", f"{RUN} --operator x", "--operator: 'x' is not one of"),
    case("run-output", f"{RUN} -o xml", "--output: 'xml' is not one of"),
    case("run-image-pair", f"{RUN} --image ubuntu", "--image: ", "use KEY=VALUE"),
    case("run-image-key", f"{RUN} --image nope=registry.example/x:1", "unknown image key(s) nope; known: "),
    case("run-endpoint", f"{RUN} --disaggregated-endpoint gw.svc", "--disaggregated-endpoint: ", "http://"),
    case("run-attachment", f"{RUN} --network-attachment rdma", "--network-attachment: ", "NAMESPACE/NAME"),
    case("run-role", f"{RUN} --disaggregated-role prefill", "--disaggregated-role: ", "KEY=VALUE"),
    case(
        "run-gaie", f"{RUN} --gaie-conformance-dir {{in}}/gone", "--gaie-conformance-dir: ", "does not exist"
    ),
    case(
        "run-gaie-file", f"{RUN} --gaie-conformance-dir {{in}}/afile", "--gaie-conformance-dir: ", "is a file"
    ),
    case("run-service", f"{RUN} --prometheus-service prometheus", "--prometheus-service: ", "NAMESPACE/NAME"),
    case(
        "run-profile-name",
        f"{RUN} --profile nope",
        "nope: no built-in profile of that name (available: ai-v1.0)",
    ),
    case("run-profile-missing", f"{RUN} --profile ./missing.yaml", "missing.yaml: no such file"),
    case("run-profile-binary", f"{RUN} --profile {{in}}/binary", "{in}/binary: ", "invalid YAML"),
    case("run-profile-malformed", f"{RUN} --profile {{in}}/malformed.yaml", "{in}/malformed.yaml: line 2"),
    case(
        "run-profile-list", f"{RUN} --profile {{in}}/list.yaml", "{in}/list.yaml: ", "is not of type 'object'"
    ),
    case(
        "run-profile-empty",
        f"{RUN} --profile {{in}}/empty.yaml",
        "{in}/empty.yaml: ",
        "is not of type 'object'",
    ),
    case(
        "run-profile-schema", f"{RUN} --profile {{in}}/profile-bad-id.yaml", "{in}/profile-bad-id.yaml: id: 5"
    ),
    case(
        "run-profile-recursive",
        f"{RUN} --profile {{in}}/profile-recursive.yaml",
        "{in}/profile-recursive.yaml: ",
    ),
    case("run-profile-folder", f"{RUN} --profile {{in}}/emptydir/", "{in}/emptydir"),
    case(
        "run-version-old",
        f"{RUN} --kubernetes-version 1.20",
        "--kubernetes-version: Kubernetes 1.20 is not covered",
        "supported: 1.33, 1.34, 1.35, 1.36, 1.37",
    ),
    case(
        "run-version-word",
        f"{RUN} --kubernetes-version latest",
        "--kubernetes-version: 'latest' is not a Kubernetes",
    ),
    case("run-focus", f"{RUN} --focus bogus", "--focus bogus"),
    case("run-skip", f"{RUN} --skip gang_scheduling,bogus", "--skip bogus"),
    case(
        "run-certified-focus",
        f"{RUN} --mode certified --focus gang_scheduling",
        "certified runs every requirement",
    ),
    case("run-probe-dir-missing", f"{RUN} --probe-dir {{in}}/gone", "--probe-dir {in}/gone: not a directory"),
    case(
        "run-probe-dir-syntax",
        f"{RUN} --probe-dir {{in}}/probes-syntax",
        "--probe-dir {in}/probes-syntax: test_broken.py cannot be imported: invalid syntax (line 1)",
    ),
    case(
        "run-probe-dir-raises",
        f"{RUN} --probe-dir {{in}}/probes-raise",
        "--probe-dir {in}/probes-raise: test_raise.py cannot be imported: RuntimeError: boom at import",
    ),
    case(
        "run-probe-dir-binary", f"{RUN} --probe-dir {{in}}/probes-binary", "test_binary.py cannot be imported"
    ),
    case(
        "run-sign-key-missing",
        f"{RUN} --sign-key {{in}}/gone.key",
        "{in}/gone.key: cannot read the private key",
    ),
    case("run-sign-key-open", f"{RUN} --sign-key {{in}}/open.key", "{in}/open.key: ", "chmod 600"),
    case(
        "run-sign-key-garbage",
        f"{RUN} --sign-key {{in}}/not.key",
        "{in}/not.key: wrong passphrase, or not a PEM",
    ),
    case(
        "run-sign-key-passphrase",
        f"{RUN} --sign-key {{in}}/kaic.key",
        "{in}/kaic.key: wrong passphrase",
        env={keys.PASSWORD_ENV: "wrong"},
    ),
    case(
        "run-sign-key-no-passphrase",
        f"{RUN} --sign-key {{in}}/kaic.key",
        "no passphrase: set KAIC_KEY_PASSWORD",
        env={keys.PASSWORD_ENV: None},
    ),
    case(
        "run-output-file",
        f"{RUN} --output-dir {{in}}/afile",
        "--output-dir: Directory '{in}/afile' is a file",
    ),
    case(
        "run-output-under-file",
        f"{RUN} --output-dir {{in}}/afile/sub",
        "--output-dir {in}/afile/sub: cannot create",
    ),
    case(
        "run-output-proc",
        f"{RUN} --output-dir /proc/kaic-results",
        "--output-dir /proc/kaic-results: cannot create",
    ),
    case("run-output-proc-deep", f"{RUN} -d /proc/kaic/x/y", "--output-dir /proc/kaic/x/y: cannot create"),
    case(
        "run-output-sys",
        f"{RUN} --output-dir /sys/kaic-results",
        "--output-dir /sys/kaic-results: cannot create",
    ),
    case(
        "run-output-nonempty",
        f"{RUN} --output-dir {{in}}/nonempty",
        "--output-dir {in}/nonempty: exists and is not empty",
    ),
    case(
        "run-kubeconfig-malformed",
        "run --kubeconfig {in}/malformed.yaml",
        "{in}/malformed.yaml: kubeconfig is not valid YAML: ",
        "line 2, column 1",
    ),
    case(
        "run-kubeconfig-binary",
        "run --kubeconfig {in}/binary",
        "{in}/binary: not a kubeconfig (not UTF-8 text)",
    ),
    case("run-kubeconfig-empty", "run --kubeconfig {in}/empty.yaml", "{in}/empty.yaml: kubeconfig is empty"),
    case(
        "run-kubeconfig-list",
        "run --kubeconfig {in}/list.yaml",
        "{in}/list.yaml: kubeconfig is not a mapping",
    ),
    case("run-kubeconfig-missing", "run --kubeconfig {in}/gone", "{in}/gone: no such kubeconfig file"),
    case(
        "run-kubeconfig-folder", "run --kubeconfig {in}/emptydir", "{in}/emptydir: cannot read the kubeconfig"
    ),
    case(
        "run-kubeconfig-contexts",
        "run --kubeconfig {in}/kc-contexts-map",
        "{in}/kc-contexts-map: contexts: expected a list",
    ),
    case(
        "run-context",
        f"{RUN} --context nosuch",
        "--context nosuch: no such context in {in}/kc; contexts: c, d",
    ),
    case(
        "run-no-current-context",
        "run --kubeconfig {in}/kc-nocurrent",
        "{in}/kc-nocurrent: no current-context; pass --context (contexts: c, d)",
    ),
    case(
        "run-gone-current-context",
        "run --kubeconfig {in}/kc-badcurrent",
        "current-context gone does not exist",
        "contexts: c, d",
    ),
    case(
        "run-context-without-cluster", "run --kubeconfig {in}/kc-nocluster", "{in}/kc-nocluster: context c: "
    ),
    case("run-bad-ca", "run --kubeconfig {in}/kc-badca", "{in}/kc-badca: context c: "),
    case("run-no-kubeconfig", "run", "--kubeconfig: none given and none found", "set KUBECONFIG"),
    case("run-unknown-option", f"{RUN} --bogus", "--bogus: no such option of `kaic run`"),
    case("run-near-option", f"{RUN} --focu x", "--focu: no such option of `kaic run`; did you mean --focus?"),
    case("run-missing-value", f"{RUN} --focus", "--focus: needs a value"),
    case("run-extra-argument", f"{RUN} extra", "kaic run: Got unexpected extra argument (extra)"),
    case("run-dry-run-profile", f"{RUN} --dry-run --profile nope", "nope: no built-in profile"),
    case(
        "run-dry-run-output-dir",
        f"{RUN} --dry-run --kubernetes-version 9.9",
        "--kubernetes-version: Kubernetes 9.9",
    ),
]

PLAN = [
    case("plan-mode", "plan --mode x", "--mode: 'x' is not one of"),
    case("plan-profile", "plan --profile {in}/profile-bad-id.yaml", "{in}/profile-bad-id.yaml: id: 5"),
    case(
        "plan-version",
        "plan --kubernetes-version 2.0",
        "--kubernetes-version: Kubernetes 2.0 is not covered",
        "supported:",
    ),
    case("plan-focus", "plan --focus nope", "--focus nope"),
    case("plan-skip", "plan --skip nope", "--skip nope"),
    case(
        "plan-probe-dir",
        "plan --probe-dir {in}/probes-syntax",
        "--probe-dir {in}/probes-syntax: test_broken.py",
    ),
    case("plan-image", "plan --image nope=x", "unknown image key(s) nope"),
    case("plan-output", "plan -o yaml", "--output: 'yaml' is not one of"),
    case("plan-allocation", "plan --allocation-mode x", "--allocation-mode: 'x' is not one of"),
    case("plan-gang-window", "plan --gang-negative-window 0", "--gang-negative-window: 0 is not a duration"),
    case("plan-output-dir", "plan --output-dir x", "--output-dir: no such option of `kaic plan`"),
    case("plan-endpoint", "plan --disaggregated-endpoint ftp://x", "--disaggregated-endpoint: "),
]

RESULTS = [
    case("results-missing-arg", "results", "DIRECTORY: missing; it is required"),
    case("results-missing", "results {in}/gone", "DIRECTORY: ", "{in}/gone", "does not exist"),
    case(
        "results-no-report", "results {in}/r-missing", "{in}/r-missing/report.json: cannot read: No such file"
    ),
    case("results-list", "results {in}/r-list", "{in}/r-list/report.json: $: [] is not of type 'object'"),
    case(
        "results-run-null",
        "results {in}/r-runnull",
        "{in}/r-runnull/report.json: $.run: None is not of type 'object'",
    ),
    case("results-not-json", "results {in}/r-notjson", "{in}/r-notjson/report.json: not JSON"),
    case("results-binary", "results {in}/r-binary", "{in}/r-binary/report.json: not JSON"),
    case(
        "results-outcome", "results {in}/r-outcome", "{in}/r-outcome/report.json: $.requirements[0].outcome: "
    ),
    case("results-schema", "results {in}/r-schema", "{in}/r-schema/report.json: $.schema: "),
    case("results-deep", "results {in}/r-deep", "{in}/r-deep/report.json: not JSON"),
    case("results-extra", "results {in}/r-extra", "{in}/r-extra/report.json: $: Additional properties"),
    case(
        "results-no-reason",
        "results {in}/r-noreason",
        "{in}/r-noreason/report.json: $.requirements[0].probes[0].reason",
    ),
    case("results-report-dir", "results {in}/r-isdir", "{in}/r-isdir/report.json: cannot read"),
    case("results-file", "results {in}/binary", "{in}/binary: not JSON"),
    case("results-output", "results {in}/run -o xml", "--output: 'xml' is not one of"),
]

DIFF = [
    case("diff-missing-args", "diff", "OLD: missing"),
    case("diff-missing-new", "diff {in}/run", "NEW: missing"),
    case("diff-old-gone", "diff {in}/gone {in}/run", "{in}/gone: cannot read"),
    case("diff-new-bad", "diff {in}/run {in}/r-runnull", "{in}/r-runnull/report.json: $.run"),
    case("diff-old-list", "diff {in}/r-list {in}/run", "{in}/r-list/report.json: $: "),
    case(
        "diff-waivers-binary", "diff {in}/run {in}/run --waivers {in}/binary", "{in}/binary: not UTF-8 text"
    ),
    case(
        "diff-waivers-malformed",
        "diff {in}/run {in}/run --waivers {in}/malformed.yaml",
        "{in}/malformed.yaml: not valid YAML",
    ),
    case(
        "diff-waivers-shape",
        "diff {in}/run {in}/run --waivers {in}/w-shape.yaml",
        "{in}/w-shape.yaml: expected a mapping with one key",
    ),
    case(
        "diff-waivers-unknown",
        "diff {in}/run {in}/run --waivers {in}/w-unknown.yaml",
        "waivers[0].colour: unknown key",
    ),
    case(
        "diff-waivers-missing",
        "diff {in}/run {in}/run --waivers {in}/w-missing.yaml",
        "waivers[0].expires: required",
    ),
    case(
        "diff-waivers-date",
        "diff {in}/run {in}/run --waivers {in}/w-date.yaml",
        "waivers[0].expires: '2030-02-30' is not a date",
    ),
    case(
        "diff-waivers-probe",
        "diff {in}/run {in}/run --waivers {in}/w-probe.yaml",
        "waivers[0].probe: 'b.c' is not a probe",
    ),
    case(
        "diff-waivers-number",
        "diff {in}/run {in}/run --waivers {in}/w-number.yaml",
        "waivers[0].requirement: expected a non-empty string",
    ),
    case(
        "diff-waivers-gone", "diff {in}/run {in}/run --waivers {in}/gone.yaml", "{in}/gone.yaml: cannot read"
    ),
    case(
        "diff-waivers-folder",
        "diff {in}/run {in}/run --waivers {in}/emptydir",
        "--waivers: ",
        "is a directory",
    ),
    case("diff-today", "diff {in}/run {in}/run --today tomorrow", "--today: "),
    case("diff-output", "diff {in}/run {in}/run -o csv", "--output: 'csv' is not one of"),
]

PROFILES = [
    case("profiles-output", "profiles list -o yaml", "--output: 'yaml' is not one of"),
    case("profiles-show-missing-arg", "profiles show", "PROFILE: missing"),
    case(
        "profiles-show-name",
        "profiles show ai-v9",
        "ai-v9: no built-in profile of that name (available: ai-v1.0)",
    ),
    case("profiles-show-file", "profiles show ./missing.yaml", "missing.yaml: no such file"),
    case("profiles-show-binary", "profiles show {in}/binary", "{in}/binary: "),
    case("profiles-show-malformed", "profiles show {in}/malformed.yaml", "{in}/malformed.yaml: line 2"),
    case("profiles-show-schema", "profiles show {in}/profile-bad-id.yaml", "{in}/profile-bad-id.yaml: id: 5"),
    case(
        "profiles-show-recursive",
        "profiles show {in}/profile-recursive.yaml",
        "{in}/profile-recursive.yaml: ",
    ),
    case("profiles-show-folder", "profiles show {in}/emptydir/", "{in}/emptydir"),
    case(
        "profiles-show-version",
        "profiles show ai-v1.0 --kubernetes-version 1.32",
        "--kubernetes-version: Kubernetes 1.32",
        "supported: 1.33",
    ),
    case(
        "profiles-show-version-word",
        "profiles show ai-v1.0 --kubernetes-version next",
        "--kubernetes-version: 'next'",
    ),
    case(
        "profiles-no-command", "profiles nope", "nope: no such command of `kaic profiles`; valid: list, show"
    ),
]

IMAGES = [
    case("images-key", "images list --image nope=x", "unknown image key(s) nope; known: "),
    case("images-pair", "images list --image ubuntu", "--image: ", "KEY=VALUE"),
    case("images-output", "images list -o xml", "--output: 'xml' is not one of"),
]

SUBMISSION = [
    case("create-missing", "submission create", "DIR: missing"),
    case(
        "create-no-checklist",
        "submission create {in}/certified --product {in}/product.yaml",
        "--checklist: missing",
    ),
    case(
        "create-dir-gone",
        f"submission create {{in}}/gone --checklist {CHECKLIST} --product {{in}}/product.yaml",
        "DIR: ",
        "does not exist",
    ),
    case(
        "create-bad-report",
        f"submission create {{in}}/r-list --checklist {CHECKLIST} --product {{in}}/product.yaml",
        "{in}/r-list/report.json: $: ",
    ),
    case(
        "create-not-certified",
        f"submission create {{in}}/run --checklist {CHECKLIST} --product {{in}}/product.yaml",
        "{in}/run: run r1 ran in non-disruptive mode",
    ),
    case(
        "create-product-binary",
        f"submission create {{in}}/certified --checklist {CHECKLIST} --product {{in}}/binary",
        "{in}/binary: cannot read the product file",
    ),
    case(
        "create-product-malformed",
        f"submission create {{in}}/certified --checklist {CHECKLIST} --product {{in}}/malformed.yaml",
        "{in}/malformed.yaml: cannot read the product file",
    ),
    case(
        "create-product-field",
        f"submission create {{in}}/certified --checklist {CHECKLIST} --product {{in}}/product-missing.yaml",
        "{in}/product-missing.yaml: field 'platformName' is missing",
    ),
    case(
        "create-checklist-binary",
        "submission create {in}/certified --checklist {in}/binary --product {in}/product.yaml",
        "{in}/binary: cannot read the checklist template",
    ),
    case(
        "create-checklist-list",
        "submission create {in}/certified --checklist {in}/list.yaml --product {in}/product.yaml",
        "{in}/list.yaml: not a checklist template",
    ),
    case(
        "create-out-file",
        f"submission create {{in}}/certified --checklist {CHECKLIST} --product {{in}}/product.yaml "
        "--out {in}/afile",
        "--out: ",
        "is a file",
    ),
    case("lint-missing", "submission lint", "DIR: missing"),
    case("lint-gone", "submission lint {in}/gone", "{in}/gone: ", "no such file or folder"),
    case("lint-no-product", "submission lint {in}/emptydir", "{in}/emptydir: no PRODUCT.yaml in this folder"),
    case(
        "lint-version",
        "submission lint {in}/product.yaml --version latest",
        "--version: 'latest' is not a checklist version",
    ),
    case("lint-no-version", "submission lint {in}/product.yaml", "no vX.Y/ in the path"),
    case(
        "lint-checklist-gone",
        "submission lint {in}/product.yaml --version v1.37 --checklist {in}/gone",
        "{in}/gone: cannot read the checklist",
    ),
    case(
        "lint-checklist-binary",
        "submission lint {in}/product.yaml --version v1.37 --checklist {in}/binary",
        "{in}/binary: cannot read the checklist template",
    ),
    case("lint-output", "submission lint {in}/product.yaml -o xml", "--output: 'xml' is not one of"),
]

SIGNING = [
    case("keys-missing-arg", "keys generate", "PREFIX: missing"),
    case("keys-proc", "keys generate /proc/kaic-key", "/proc/kaic-key: cannot write the key pair there"),
    case("keys-sys", "keys generate /sys/kaic-key", "/sys/kaic-key: cannot write the key pair there"),
    case("keys-under-file", "keys generate {in}/afile/k", "{in}/afile/k: cannot write the key pair there"),
    case("keys-existing", "keys generate {in}/kaic", "{in}/kaic.key, {in}/kaic.pub: already exists"),
    case(
        "keys-no-passphrase",
        "keys generate {cwd}/k",
        "no passphrase: set KAIC_KEY_PASSWORD",
        env={keys.PASSWORD_ENV: None},
    ),
    case(
        "keys-empty-passphrase", "keys generate {cwd}/k", "an empty passphrase", env={keys.PASSWORD_ENV: ""}
    ),
    case("sign-missing-arg", "sign", "DIRECTORY: missing"),
    case("sign-gone", "sign {in}/gone --key {in}/kaic.key", "DIRECTORY: ", "does not exist"),
    case("sign-not-run", "sign {in}/emptydir --key {in}/kaic.key", "{in}/emptydir: not a kaic result folder"),
    case("sign-bad-report", "sign {in}/r-runnull --key {in}/kaic.key", "{in}/r-runnull/report.json: $.run"),
    case("sign-already", "sign {in}/signed --key {in}/kaic.key", "{in}/signed: already signed"),
    case("sign-key-gone", "sign {in}/run --key {in}/gone.key", "{in}/gone.key: cannot read the private key"),
    case(
        "sign-key-env",
        "sign {in}/run",
        "env://KAIC_SIGNING_KEY: the environment variable KAIC_SIGNING_KEY is not set",
    ),
    case("sign-key-open", "sign {in}/run --key {in}/open.key", "{in}/open.key: ", "chmod 600"),
    case(
        "sign-key-garbage", "sign {in}/run --key {in}/not.key", "{in}/not.key: wrong passphrase, or not a PEM"
    ),
    case("sign-key-public", "sign {in}/run --key {in}/kaic.pub", "{in}/kaic.pub: "),
    case("verify-missing-arg", "verify", "DIRECTORY: missing"),
    case("verify-no-key", "verify {in}/signed", "no trusted key: give --key PUB or --trust FILE"),
    case(
        "verify-key-gone",
        "verify {in}/signed --key {in}/gone.pub",
        "{in}/gone.pub: cannot read the public key",
    ),
    case("verify-key-garbage", "verify {in}/signed --key {in}/binary", "{in}/binary: not a PEM public key"),
    case(
        "verify-trust-binary",
        "verify {in}/signed --trust {in}/binary",
        "{in}/binary: cannot read the trust file",
    ),
    case(
        "verify-trust-malformed",
        "verify {in}/signed --trust {in}/malformed.yaml",
        "{in}/malformed.yaml: cannot read the trust file",
    ),
    case(
        "verify-trust-empty",
        "verify {in}/signed --trust {in}/trust-nokeys.yaml",
        "{in}/trust-nokeys.yaml: expected `keys:`",
    ),
    case(
        "verify-trust-entry",
        "verify {in}/signed --trust {in}/trust-nofp.yaml",
        "{in}/trust-nofp.yaml: keys[0]: needs `fingerprint",
    ),
    case("verify-output", "verify {in}/signed --key {in}/kaic.pub -o xml", "--output: 'xml' is not one of"),
]

CLEANUP_AND_MORE = [
    case("cleanup-neither", f"cleanup {KC}", "exactly one of --run-id ID or --all"),
    case("cleanup-both", f"cleanup {KC} --all --run-id abc", "exactly one of --run-id ID or --all"),
    case(
        "cleanup-kubeconfig",
        "cleanup --all --kubeconfig {in}/malformed.yaml",
        "{in}/malformed.yaml: kubeconfig is not valid YAML",
    ),
    case(
        "cleanup-context",
        f"cleanup --all {KC} --context nosuch",
        "--context nosuch: no such context",
        "contexts: c, d",
    ),
    case("cleanup-no-kubeconfig", "cleanup --all", "--kubeconfig: none given and none found"),
    case(
        "cleanup-timeout",
        f"cleanup --all {KC} --cleanup-timeout -1",
        "--cleanup-timeout: -1 is not a duration",
    ),
    case(
        "cleanup-request-timeout",
        f"cleanup --all {KC} --request-timeout 0",
        "--request-timeout: 0 is not a duration",
    ),
    case("cluster-scenario", "cluster up --scenario nosuch", "--scenario: 'nosuch' is not one of"),
    case("cluster-timeout", "cluster up --timeout soon", "--timeout: "),
    case(
        "cluster-kubeconfig",
        "cluster kubeconfig --state-dir {in}/emptydir",
        "--state-dir {in}/emptydir: no cluster there; run `kaic cluster up`",
    ),
    case("cluster-state-dir-file", "cluster status --state-dir {in}/afile", "--state-dir: ", "is a file"),
    case(
        "no-such-command",
        "nosuch",
        "nosuch: no such command of `kaic`; valid: cleanup, cluster, delete, diff",
    ),
    case(
        "in-cluster-probe-dir",
        f"{RUN} --in-cluster --probe-dir {{in}}/emptydir",
        "--probe-dir: an in-cluster run has kaic's own probes only",
    ),
    case(
        "in-cluster-profile-file",
        f"{RUN} --in-cluster --profile {{in}}/mine.yaml",
        "--profile {in}/mine.yaml: an in-cluster run uses the runner image's built-in profiles (ai-v1.0",
    ),
    case(
        "in-cluster-detach-sign-key",
        f"{RUN} --in-cluster --detach --sign-key {{in}}/kaic.key",
        "--sign-key with --detach: nothing is on this machine yet",
    ),
    case(
        "in-cluster-detach-output-dir",
        f"{RUN} --in-cluster --detach --output-dir {{in}}/emptydir",
        "--output-dir with --detach: nothing is on this machine yet",
    ),
    case(
        "in-cluster-rerun-failed",
        f"{RUN} --in-cluster --rerun-failed {{in}}/signed",
        "--rerun-failed with --in-cluster: the source folder is on this machine",
    ),
    case("detach-without-in-cluster", f"{RUN} --detach", "--detach: only with --in-cluster"),
    case(
        "runner-image-without-in-cluster",
        f"{RUN} --runner-image r/k:1",
        "--runner-image: only with --in-cluster",
    ),
    case(
        "in-cluster-results-ttl",
        f"{RUN} --in-cluster --results-ttl 5s",
        "--results-ttl 5s: give between 1m and 2147483647s",
    ),
    case("status-bad-run-id", f"status ../x {KC}", "RUN_ID '../x': not a kaic run id"),
    case("status-no-kubeconfig", "status", "--kubeconfig: none given and none found"),
    case("retrieve-no-run-id", f"retrieve {KC}", "RUN_ID"),
    case(
        "logs-bad-request-timeout",
        f"logs abc {KC} --request-timeout 0",
        "--request-timeout: 0 is not a duration",
    ),
    case(
        "delete-cleanup-timeout",
        f"delete abc {KC} --cleanup-timeout -1",
        "--cleanup-timeout: -1 is not a duration",
    ),
    case("near-command", "rnu", "rnu: no such command of `kaic`"),
    case("root-unknown-option", "--bogus plan", "--bogus: no such option of `kaic`"),
]

ALL = (
    CONFIG
    + ENVIRONMENT
    + RUN_CASES
    + PLAN
    + RESULTS
    + DIFF
    + PROFILES
    + IMAGES
    + SUBMISSION
    + SIGNING
    + CLEANUP_AND_MORE
)


def invoke(world: World, c: Case) -> Any:
    args = [world.fmt(a) for a in c.args]
    if c.config is not None:  # written by the test before it takes its snapshot
        args = ["--config", str(world.cwd / "config.yaml"), *args]
    env = {k: None if v is None else world.fmt(v) for k, v in c.env.items()}
    return CliRunner().invoke(main, args, env=env)


def assert_refused(world: World, result: Any, names: tuple[str, ...]) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kaic: error: "), result.stderr
    for name in names:
        assert world.fmt(name) in lines[0], lines[0]


@pytest.mark.parametrize("c", ALL)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(world: World, c: Case) -> None:
    if CHECKLIST.name in " ".join(c.args) and not CHECKLIST.is_file():
        pytest.skip(f"the official checklists are not at {CHECKLIST.parent}")
    if c.config is not None:
        (world.cwd / "config.yaml").write_text(c.config)
    before = snapshot(world.root)
    result = invoke(world, c)
    assert_refused(world, result, c.names)
    assert snapshot(world.root) == before, "bad input wrote or changed files"


def test_the_suite_covers_at_least_150_cases() -> None:
    assert len(ALL) >= 150
    assert len({c.values[0].id for c in ALL}) == len(ALL)


@pytest.mark.parametrize(
    "args", [["--help"], ["run", "--help"], ["profiles", "show", "--help"], ["--version"]]
)
def test_a_broken_config_file_never_breaks_help_or_version(world: World, args: list[str]) -> None:
    config = world.cwd / "config.yaml"
    config.write_bytes(b"\x00\xff not yaml: [")
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output or "version" in result.output


def test_read_only_locations_are_named(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only filesystem (EROFS) the way root meets one too: --output-dir, keys and sign name the
    path."""
    import errno

    real_mkdir, real_mkstemp = Path.mkdir, __import__("tempfile").mkstemp
    read_only = world.root / "ro"

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if str(self).startswith(str(read_only)):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)

    def mkstemp(*args: Any, dir: Any = None, **kwargs: Any) -> Any:
        if str(dir).startswith(str(read_only)):
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    real_mkdir(read_only)
    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr("tempfile.mkstemp", mkstemp)
    cases = [
        (
            f"{RUN} --output-dir {read_only}/out",
            f"--output-dir {read_only}/out: cannot create the results folder there (Read-only file system)",
        ),
        (
            f"keys generate {read_only}/k",
            f"{read_only}/k: cannot write the key pair there (Read-only file system)",
        ),
    ]
    for args, message in cases:
        before = snapshot(world.root)
        result = CliRunner().invoke(main, world.fmt(args).split())
        assert_refused(world, result, (message,))
        assert snapshot(world.root) == before


def test_signing_a_read_only_run_folder_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("kaic.certify.sign.atomic_write_text", read_only)
    result = CliRunner().invoke(main, world.fmt("sign {in}/run --key {in}/kaic.key").split())
    assert_refused(world, result, ("{in}/run: cannot write the signatures there (Read-only file system)",))


# ---- the real entry point ---------------------------------------------------------------------------------


SUBPROCESS = [
    (["run", "--kubeconfig", "{in}/malformed.yaml"], "{in}/malformed.yaml: kubeconfig is not valid YAML"),
    (["results", "{in}/r-list"], "{in}/r-list/report.json: $: [] is not of type 'object'"),
    (
        ["--config", "{cwd}/config.yaml", "run", "--kubeconfig", "{in}/kc"],
        "config.yaml: run.timeout: -5 is not",
    ),
    (["plan", "--probe-dir", "{in}/probes-syntax"], "test_broken.py cannot be imported"),
    (
        ["run", "--kubeconfig", "{in}/kc", "-d", "{in}/afile/out"],
        "--output-dir {in}/afile/out: cannot create",
    ),
    (["keys", "generate", "/proc/kaic-key"], "/proc/kaic-key: cannot write the key pair there"),
]


@pytest.mark.parametrize(
    ("args", "message"), SUBPROCESS, ids=[a[0] if a[0] != "--config" else "config" for a, _ in SUBPROCESS]
)
def test_the_installed_command_prints_no_traceback(world: World, args: list[str], message: str) -> None:
    (world.cwd / "config.yaml").write_text("run:\n  timeout: -5\n")
    before = snapshot(world.root)
    proc = subprocess.run(
        [sys.executable, "-m", "kaic", *(world.fmt(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ),
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("kaic: error: ")
    assert world.fmt(message) in proc.stderr
    assert snapshot(world.root) == before


def test_a_reader_that_went_away_is_exit_3_not_1() -> None:
    """`kaic ... | head`: click alone exits 1 on a closed pipe, which a gate would read as "a MUST failed"."""
    read, write = os.pipe()
    os.close(read)  # closed before kaic writes: its first write meets EPIPE
    proc = subprocess.run(
        [sys.executable, "-m", "kaic", "profiles", "show", "ai-v1.0", "-o", "json"],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )
    os.close(write)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr


# ---- internal errors: exit 3, the traceback in a file ------------------------------------------------------


def test_a_bug_is_exit_3_with_the_traceback_in_a_temporary_file(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("a bug in kaic")

    monkeypatch.setattr("kaic.cli.run._show_plan", broken)
    monkeypatch.setenv("TMPDIR", str(world.cwd))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    result = CliRunner().invoke(main, ["plan"])
    assert result.exit_code == 3
    line = result.stderr.strip()
    assert line.startswith("kaic: internal error: KeyError: 'a bug in kaic'; traceback saved to ")
    assert "Traceback" not in result.output
    saved = Path(line.split("traceback saved to ")[1].split(";")[0])
    assert saved.parent == world.cwd and "Traceback" in saved.read_text() and "broken" in saved.read_text()


def test_a_bug_during_a_run_leaves_its_traceback_in_the_output_folder(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any, cluster: Any) -> Any:
        raise ZeroDivisionError("a bug in the engine")

    monkeypatch.setattr("kaic.engine.run.Run._run", broken)
    out = world.cwd / "out"
    result = CliRunner().invoke(main, ["run", "--kubeconfig", world.fmt("{in}/kc"), "-d", str(out)])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert f"traceback saved to {out / TRACEBACK_FILE}" in result.stderr
    assert "ZeroDivisionError" in (out / TRACEBACK_FILE).read_text()
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["run"]["incompleteReason"] == "internal error: ZeroDivisionError: a bug in the engine"
    assert report["verdict"]["exitCode"] == 3


def test_exit_1_is_never_an_error(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupt outside a run, and click's own exceptions, map onto kaic's codes too."""

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("kaic.cli.run._show_plan", interrupted)
    result = CliRunner().invoke(main, ["plan"])
    assert (result.exit_code, result.stderr.strip()) == (3, "kaic: interrupted")


# ---- the output folder: named by run id, claimed atomically -----------------------------------------------


def test_runs_started_at_once_never_share_a_folder(world: World) -> None:
    """Eight runs in the same second with the default folder, and eight given the same empty folder."""
    from kaic.cli.progress import PlainReporter
    from kaic.engine.plan import RunOptions
    from kaic.engine.run import Run, RunError

    kubeconfig = world.fmt("{in}/kc")
    shared = world.cwd / "shared"
    shared.mkdir()
    barrier = threading.Barrier(16)
    made: list[Path] = []
    refused: list[str] = []

    def start(output_dir: Path | None) -> None:
        barrier.wait()
        try:
            made.append(
                Run(
                    RunOptions(kubeconfig=kubeconfig, output_dir=output_dir), PlainReporter(sys.stderr)
                ).out_dir
            )
        except RunError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=start, args=(None if n < 8 else shared,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    defaults = [p for p in made if p != shared]
    assert len(defaults) == 8 and len(set(defaults)) == 8
    assert all(p.name.startswith("kaic-results-") and p.is_dir() for p in defaults)
    assert made.count(shared) == 1 and len(refused) == 7
    assert all(f"--output-dir {shared}: " in r for r in refused)
