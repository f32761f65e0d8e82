"""CLI: flag/env/config-file precedence, input errors, startup imports, runs that cannot reach a cluster."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from kaic.cli.errors import subcommands
from kaic.cli.main import main
from kaic.cli.params import Duration, LazyChoice
from kaic.profile import load_profile
from kaic.results.report import save
from kaic.results.run_dir import E2E_LOG_FILE, JUNIT_FILE, REPORT_FILE, RESULTS_FILE, SUMMARY_FILE


@pytest.fixture
def runner(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no user config leaks in
    for var in (
        "KAIC_MODE",
        "KAIC_PROFILE",
        "KAIC_CONFIG",
        "KAIC_CONTEXT",
        "KAIC_OUTPUT_DIR",
        "KAIC_GANG_SCHEDULER",
    ):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


def plan_mode(runner, args=(), env=None):
    result = runner.invoke(main, [*args, "plan", "-o", "json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["mode"]


def write_config(tmp_path, text):
    path = tmp_path / "kaic.yaml"
    path.write_text(text)
    return str(path)


def test_precedence_flag_over_env_over_file_over_default(runner, tmp_path):
    config = write_config(tmp_path, "mode: quick\n")
    assert plan_mode(runner) == "non-disruptive"
    assert plan_mode(runner, ["--config", config]) == "quick"
    assert plan_mode(runner, ["--config", config], env={"KAIC_MODE": "certified"}) == "certified"
    result = runner.invoke(
        main,
        ["--config", config, "plan", "-o", "json", "--mode", "non-disruptive"],
        env={"KAIC_MODE": "certified"},
    )
    assert json.loads(result.output)["mode"] == "non-disruptive"


def test_command_section_beats_top_level_and_env_config_path(runner, tmp_path):
    config = write_config(tmp_path, "mode: quick\nplan:\n  mode: certified\n  kubernetes-version: '1.34'\n")
    result = runner.invoke(main, ["plan", "-o", "json"], env={"KAIC_CONFIG": config})
    data = json.loads(result.output)
    assert (data["mode"], data["checklist"]) == ("certified", "1.34")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour: red\n", "colour: unknown option"),
        ("plan:\n  rbca: true\n", "plan.rbca: unknown option"),
        ("runn:\n  mode: quick\n", "runn: no such command"),
        ("mode: [unclosed\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_config_file_names_file_and_field(runner, tmp_path, text, message):
    config = write_config(tmp_path, text)
    result = runner.invoke(main, ["--config", config, "plan"])
    assert result.exit_code == 2
    assert config in result.output and message in result.output


def test_missing_explicit_config_file(runner, tmp_path):
    result = runner.invoke(main, ["--config", str(tmp_path / "nope.yaml"), "plan"])
    assert result.exit_code == 2 and "no such config file" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--mode", "certified", "--focus", "gang_scheduling"], "certified runs every requirement"),
        (["plan", "--kubernetes-version", "1.20"], "1.20"),
        (["plan", "--profile", "nope"], "no built-in profile"),
        (["plan", "--skip", "gang_scheduling,bogus"], "--skip bogus"),
        (["run", "--probe-timeout", "soon"], "not a duration"),
        (["cleanup"], "exactly one of --run-id ID or --all"),
        (["plan", "--probe-dir", "/nonexistent/probes"], "--probe-dir /nonexistent/probes: not a directory"),
        (["run", "--sign-key", "/nonexistent/kaic.key"], "cannot read the private key"),
        (["run", "--image", "nope=registry.example/x:1"], "unknown image key(s) nope"),
        (["run", "--image", "ubuntu"], "use KEY=VALUE"),
    ],
)
def test_input_errors_exit_2(runner, args, message):
    result = runner.invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


# A kubeconfig of a server on a closed loopback port: valid input, nothing listening.
UNREACHABLE_KUBECONFIG = (
    "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
    "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
    "users: [{name: u, user: {token: secret-token-value}}]\n"
    "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
)


def test_run_refuses_a_non_empty_output_dir(runner, tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / REPORT_FILE).write_text("{}")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)
    result = runner.invoke(
        main, ["run", "--kubeconfig", str(kubeconfig), "--output-dir", str(tmp_path / "old")]
    )
    assert result.exit_code == 2 and "not empty" in result.output
    assert (tmp_path / "old" / REPORT_FILE).read_text() == "{}"


MINORS = load_profile("ai-v1.0").minors()  # the default profile's checklists, oldest first


@pytest.fixture
def plans_built(monkeypatch):
    """The checklist version of every plan a command builds, in order."""
    from kaic.engine import plan as plan_mod

    built: list[str] = []

    def counted(*args, **kwargs):
        plan = real(*args, **kwargs)
        built.append(plan.version)
        return plan

    real = plan_mod.build_plan
    monkeypatch.setattr(plan_mod, "build_plan", counted)
    return built


@pytest.mark.parametrize("args", [["plan"], ["plan", "--rbac"], ["plan", "-o", "json"], ["run", "--dry-run"]])
def test_showing_the_plan_builds_it_once(runner, plans_built, args):
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert plans_built == [MINORS[-1]]


def test_a_run_refused_before_it_asks_the_cluster_built_its_plan_once(runner, tmp_path, plans_built):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / REPORT_FILE).write_text("{}")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)
    result = runner.invoke(
        main, ["run", "--kubeconfig", str(kubeconfig), "--output-dir", str(tmp_path / "old")]
    )
    assert result.exit_code == 2 and "not empty" in result.output
    assert plans_built == [MINORS[-1]]


@pytest.mark.parametrize(
    ("server", "built"),
    [
        (None, MINORS[-1:]),
        ("^C", MINORS[-1:]),
        (MINORS[-1], MINORS[-1:]),
        (MINORS[0], [MINORS[-1], MINORS[0]]),
    ],
    ids=["unreachable", "interrupted", "newest", "older"],
)
def test_a_run_plans_again_only_when_the_server_picks_another_checklist(
    runner, tmp_path, monkeypatch, plans_built, server, built
):
    """The plan made before the cluster is asked is the run's, unless the server's minor needs another one."""
    from kaic.kube import client

    real = client.Cluster.get

    def version(self, path, **query):
        if server is None or path != "/version":
            return real(self, path, **query)
        if server == "^C":
            raise KeyboardInterrupt
        major, minor = server.split(".")
        return {"major": major, "minor": minor}

    monkeypatch.setattr(client.Cluster, "get", version)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)
    out = tmp_path / "out"
    result = runner.invoke(
        main, ["run", "--kubeconfig", str(kubeconfig), "-d", str(out), "--request-timeout", "2s"]
    )
    assert result.exit_code == 3, result.output  # interrupted, or preflight finds no API server
    assert plans_built == built
    assert json.loads((out / REPORT_FILE).read_text())["checklist"]["chosen"] == built[-1]


@pytest.mark.parametrize(
    ("text", "seconds"), [("300", 300), ("90s", 90), ("5m", 300), ("1h", 3600), ("250ms", 0.25)]
)
def test_duration(text, seconds):
    assert Duration().convert(text, None, None) == seconds


def test_focus_accepts_commas_and_repeats(runner):
    result = runner.invoke(
        main, ["plan", "-o", "json", "--focus", "gang_scheduling,ai_inference", "--focus", "pod_autoscaling"]
    )
    assert {r["id"] for r in json.loads(result.output)["requirements"]} == {
        "gang_scheduling",
        "ai_inference",
        "pod_autoscaling",
    }


# Loaded only to reach a cluster or run probes; jsonschema only to read a file from outside kaic.
HEAVY = ("kubernetes", "pytest", "_pytest", "prometheus_client", "jsonschema")
LIGHT_RUNNER = """
import contextlib, io, json, sys
from kaic.cli.main import main

heavy, loaded = json.loads(sys.argv[2]), {}
for args in json.loads(sys.argv[1]):
    before = set(sys.modules)
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(args, standalone_mode=False)
        except SystemExit as exc:
            code = exc.code
    loaded[" ".join(args)] = [code or 0, sorted(m for m in heavy if m in set(sys.modules) - before)]
print(json.dumps(loaded))
"""


def commands(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command of the tree under `command`, by path, the group itself first."""
    yield path, command
    for name, sub in subcommands(command).items():
        yield from commands(sub, (*path, name))


def test_every_lazy_choice_default_is_one_of_its_choices():
    """A LazyChoice takes its option's default without reading the values: each default must be one."""
    lazy = [(path, p) for path, c in commands(main) for p in c.params if isinstance(p.type, LazyChoice)]
    assert lazy
    for path, param in lazy:
        assert param.default in param.type.choices, (path, param.name)


def test_commands_that_touch_no_cluster_import_no_heavy_module(tmp_path, sample_report):
    """Every --help, and every command that reads only local files, one after another in one process (each
    entry names what it loaded first): none loads the kubernetes client, pytest or prometheus_client, and
    only reading a saved report loads jsonschema."""
    save(sample_report, tmp_path)
    light = [
        *([*path, "--help"] for path, _ in commands(main)),
        ["profiles", "list"],
        ["profiles", "show", "ai-v1.0"],
        ["profiles", "show", "ai-v1.0", "-o", "json"],
        ["images", "list"],
        ["plan"],
        ["plan", "--rbac"],
        ["plan", "--mode", "certified"],
        ["plan", "--mode", "quick", "-o", "json"],
        [
            "plan",
            *("--focus", "gang_scheduling", "--accelerator-profile", "nvidia", "--allocation-mode", "dra"),
            *("--operator", "kuberay", "--gang-scheduler", "kueue", "--toleration", "gpu:NoSchedule"),
            *(
                "--prometheus-service",
                "monitoring/prometheus:9090",
                "--autoscaler-node-pool-label",
                "pool=gpu",
            ),
        ],
        ["run", "--dry-run"],
    ]
    with_jsonschema = [["results", str(tmp_path)], ["diff", str(tmp_path), str(tmp_path)]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIC_")}
    proc = subprocess.run(
        [sys.executable, "-c", LIGHT_RUNNER, json.dumps(light + with_jsonschema), json.dumps(HEAVY)],
        env={**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg")},  # no user config
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    expected = {" ".join(args): [0, []] for args in light + with_jsonschema}  # exit code, heavy modules
    expected[" ".join(with_jsonschema[0])] = [0, ["jsonschema"]]  # the first to read a saved report
    assert loaded == expected


def test_run_against_an_unreachable_api_is_incomplete_with_a_valid_report(tmp_path):
    """A kubeconfig pointing at a closed loopback port: preflight fails, exit 3, report saved and marked."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kaic",
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "--output-dir",
            str(out),
            "--request-timeout",
            "2s",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "CI": "true"},
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith(f"kaic: connecting to https://127.0.0.1:9 (context c, {kubeconfig})\n")
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["run"]["complete"] is False
    assert report["run"]["incompleteReason"] == (
        "preflight: API server https://127.0.0.1:9 unreachable: connection refused "
        "(is the API server running, and are host and port right?)"
    )
    assert "Error" not in proc.stderr  # no urllib3 class names (MaxRetryError, NewConnectionError)
    assert report["verdict"]["exitCode"] == 3
    assert "cleanup" not in report["run"] and report["verdict"]["warnings"] == []  # nothing was created
    assert {p.name for p in out.iterdir()} >= {
        REPORT_FILE,
        JUNIT_FILE,
        RESULTS_FILE,
        E2E_LOG_FILE,
        SUMMARY_FILE,
    }
    everything = proc.stdout + proc.stderr + "".join(p.read_text() for p in out.iterdir())
    assert "secret-token-value" not in everything


def test_gang_flags_reach_the_probe_settings_with_flag_env_file_precedence(runner, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("kaic.cli.run._show_plan", lambda opts, as_json, rbac: seen.append(opts.settings))
    config = write_config(tmp_path, "gang-scheduler: volcano\ngang-negative-window: 45s\n")
    env = {"KAIC_GANG_SCHEDULER_NAMESPACE": "team-a", "KAIC_GANG_JOB_LABELS": "kueue.x-k8s.io/queue-name=q"}
    for args in (
        [],
        ["--gang-scheduler", "kueue", "--gang-job-labels", "a=b,c=d", "--gang-job-labels", "e=f"],
    ):
        result = runner.invoke(main, ["--config", config, "plan", *args], env=env)
        assert result.exit_code == 0, result.output
    from_file, from_flags = seen
    assert from_file.gang.scheduler == "volcano" and from_file.gang.window_s == 45.0
    assert from_file.gang.namespace == "team-a"
    assert from_file.gang.job_labels == {"kueue.x-k8s.io/queue-name": "q"}
    assert from_flags.gang.scheduler == "kueue" and from_flags.gang.job_labels == {
        "a": "b",
        "c": "d",
        "e": "f",
    }
    bad = runner.invoke(main, ["plan", "--gang-scheduler", "kai"])
    assert bad.exit_code == 2 and "kai" in bad.output


def test_network_flags_reach_the_probe_settings(runner, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("kaic.cli.run._show_plan", lambda opts, as_json, rbac: seen.append(opts.settings))
    args = [
        "--disaggregated-namespace",
        "llm",
        "--disaggregated-role",
        "prefill=llm-d.ai/role=prefill",
        "--disaggregated-role",
        "decode=app=decode",
        "--disaggregated-endpoint",
        "http://gw.llm.svc:80",
        "--network-attachment",
        "default/rdma-net",
        "--gaie-conformance-dir",
        str(tmp_path),
    ]
    for extra in ([], args):
        result = runner.invoke(main, ["plan", *extra])
        assert result.exit_code == 0, result.output
    defaults, given = seen
    assert defaults.network.attribute == "rdma" and defaults.disaggregated.roles == {}
    assert defaults.network.gaie_conformance_dir is None
    assert given.disaggregated.roles == {"prefill": "llm-d.ai/role=prefill", "decode": "app=decode"}
    assert given.disaggregated.endpoint == "http://gw.llm.svc:80"
    assert given.network.attachment == "default/rdma-net" and given.network.gaie_conformance_dir == str(
        tmp_path
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--disaggregated-endpoint", "gw.llm.svc"], "use an http:// or https:// URL"),
        (["--network-attachment", "rdma-net"], "use NAMESPACE/NAME"),
        (["--disaggregated-role", "prefill"], "use KEY=VALUE"),
        (["--gaie-conformance-dir", "/nonexistent/gaie"], "does not exist"),
    ],
)
def test_bad_network_flags_exit_2(runner, args, message):
    result = runner.invoke(main, ["plan", *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_metrics_flags_reach_the_probe_settings(runner, monkeypatch):
    seen = []
    monkeypatch.setattr("kaic.cli.run._show_plan", lambda opts, as_json, rbac: seen.append(opts.settings))
    args = [
        "--prometheus-service",
        "monitoring/prometheus-operated:9090",
        "--metrics-utilization-metric",
        "u",
        "--metrics-memory-metric",
        "m",
    ]
    assert runner.invoke(main, ["plan", *args]).exit_code == 0
    (given,) = seen
    assert given.metrics.prometheus_service == "monitoring/prometheus-operated:9090"
    assert (given.metrics.utilization_metric, given.metrics.memory_metric) == ("u", "m")
    bad = runner.invoke(main, ["plan", "--prometheus-service", "prometheus-operated"])
    assert bad.exit_code == 2 and "--prometheus-service" in bad.output and "NAMESPACE/NAME" in bad.output


def test_the_cleanup_hint_names_the_run(sample_report):
    from kaic.engine.run import finalize

    sample_report.run["cleanup"] = {"deleted": [], "error": "connection refused"}
    finalize(sample_report, complete=True, why_incomplete="")
    assert (
        "cleanup incomplete: connection refused; run `kaic cleanup --run-id r1`"
        in sample_report.verdict["warnings"]
    )


def test_a_spinner_on_a_terminal_and_none_in_a_log(monkeypatch):
    """Preflight waits show a rich status on a terminal; a log (not a TTY, or CI set) gets no spinner
    frames."""
    import io

    from rich.console import Console

    from kaic.cli.progress import PlainReporter, RichReporter, make_reporter

    monkeypatch.delenv("CI", raising=False)
    assert isinstance(make_reporter(io.StringIO()), PlainReporter)
    terminal = io.StringIO()
    reporter = RichReporter(Console(file=terminal, force_terminal=True, width=80))
    with reporter.waiting("preflight: checking 3 permissions"):
        pass
    assert "preflight: checking 3 permissions" in terminal.getvalue()
    log = io.StringIO()
    with PlainReporter(log).waiting("preflight: checking 3 permissions"):
        pass
    assert log.getvalue() == ""


def test_cleanup_says_where_it_connects_and_why_it_could_not(runner, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)
    result = runner.invoke(
        main, ["cleanup", "--all", "--kubeconfig", str(kubeconfig), "--request-timeout", "2s"]
    )
    assert result.exit_code == 3, result.output
    assert result.stderr.splitlines() == [
        f"kaic: connecting to https://127.0.0.1:9 (context c, {kubeconfig})",
        (
            "kaic: cleanup incomplete: connection refused "
            "(is the API server running, and are host and port right?)"
        ),
    ]


def test_a_run_whose_results_cannot_be_signed_says_so_and_is_not_an_internal_error(
    runner, tmp_path, monkeypatch
):
    """--sign-key after the run: a signing failure leaves the results unsigned, named, exit 3, no
    traceback."""
    from kaic.certify import keys
    from kaic.certify import sign as signer

    keys.generate(tmp_path / "k", b"pw")
    monkeypatch.setenv("KAIC_KEY_PASSWORD", "pw")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)

    def unwritable(run_dir, key):
        raise signer.SignError(f"{run_dir}: cannot write the signature (Read-only file system)")

    monkeypatch.setattr(signer, "sign_run", unwritable)
    result = runner.invoke(
        main,
        [
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "-d",
            str(tmp_path / "out"),
            "--request-timeout",
            "2s",
            "--sign-key",
            str(tmp_path / "k.key"),
        ],
    )
    assert result.exit_code == 3, result.output
    assert "kaic: error: --sign-key: the results could not be signed: " in result.stderr
    assert "Read-only file system" in result.stderr and "internal error" not in result.stderr
    assert (tmp_path / "out" / REPORT_FILE).is_file()


def test_tolerations_reach_the_probe_settings_and_the_plan_from_flags_and_config(runner, tmp_path):
    allowed = {"key": "dedicated", "operator": "Equal", "value": "team-a", "effect": "NoSchedule"}
    any_gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}
    flags = runner.invoke(
        main,
        [
            "plan",
            "-o",
            "json",
            "--toleration",
            "dedicated=team-a:NoSchedule",
            "--toleration",
            "nvidia.com/gpu:NoExecute",
        ],
    )
    assert flags.exit_code == 0, flags.output
    assert json.loads(flags.output)["tolerations"] == [allowed, any_gpu]
    for text in (
        "toleration: dedicated=team-a:NoSchedule\n",
        "plan:\n  toleration: [dedicated=team-a:NoSchedule]\n",
    ):
        result = runner.invoke(main, ["--config", write_config(tmp_path, text), "plan", "-o", "json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["tolerations"] == [allowed]
    text = runner.invoke(main, ["plan", "--toleration", "dedicated:NoSchedule"], env={"COLUMNS": "200"})
    assert (
        "tolerations (every probe pod, besides the accelerator profile's): dedicated:NoSchedule"
        in text.output
    )
    assert json.loads(runner.invoke(main, ["plan", "-o", "json"]).output)["tolerations"] == []


@pytest.mark.parametrize("value", ["dedicated", "dedicated=team-a:Never", "a:b:NoSchedule"])
def test_bad_toleration_exits_2_naming_the_flag_and_the_forms(runner, value):
    result = runner.invoke(main, ["plan", "--toleration", value])
    assert result.exit_code == 2, result.output
    assert "--toleration" in result.output and "KEY:EFFECT or KEY=VALUE:EFFECT" in result.output
    assert "NoSchedule, PreferNoSchedule, NoExecute" in result.output
