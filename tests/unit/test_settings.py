"""The run's knobs: one typed default each, read by the flags, carried to the probe processes unchanged."""

import dataclasses

import pytest
from click.testing import CliRunner

from kaic.cli.main import main
from kaic.cli.run import _options
from kaic.settings import Autoscaler, Disaggregated, Gang, Metrics, Network, Operator, Settings

NO_FLAGS = {"profile": "ai-v1.0", "mode": "non-disruptive", "focus": (), "skip": ()}


def test_a_run_without_flags_gets_the_typed_defaults():
    assert _options(**NO_FLAGS).settings == Settings()


def test_every_flag_default_is_the_settings_default():
    """The run command's own defaults (what click passes when no flag is given) give the typed defaults."""
    from kaic.cli.run import run

    ctx = run.make_context("run", [])
    assert _options(**ctx.params).settings == Settings()


def test_help_shows_the_defaults_from_the_settings():
    text = " ".join(CliRunner().invoke(main, ["run", "--help"]).output.split())
    for shown in (
        "[default: 30s]",
        "[default: 2m]",
        "[default: 5m]",
        "[default: 3m]",
        "[default: 20m]",
        "[default: 30m]",
        "[default: 90s]",
        "[default: rdma]",
        "[default: 4;",
    ):
        assert shown in text, shown


def test_settings_survive_the_run_settings_file():
    chosen = Settings(
        tolerations=({"key": "dedicated", "operator": "Equal", "value": "team-a", "effect": "NoSchedule"},),
        images={"pause": "mirror.local/pause:3"},
        schedule_timeout_s=5.0,
        gang=Gang(scheduler="kueue", job_labels={"kueue.x-k8s.io/queue-name": "q"}, window_s=45.0),
        operator=Operator(operator="kuberay", ready_timeout_s=60.0),
        autoscaler=Autoscaler(node_pool_label="pool=gpu"),
        metrics=Metrics(prometheus_service="monitoring/prometheus:9090", collection_timeout_s=20.0),
        network=Network(attribute="dra.net/rdma"),
        disaggregated=Disaggregated(roles={"prefill": "role=prefill"}),
    )
    assert Settings.from_json(chosen.to_json()) == chosen
    assert all(
        dataclasses.is_dataclass(getattr(chosen, f.name))
        for f in dataclasses.fields(chosen)
        if dataclasses.is_dataclass(f.default_factory)
    )


@pytest.mark.parametrize(
    ("flag", "setting"),
    [
        ("--schedule-timeout", "schedule_timeout_s"),
        ("--gang-bind-timeout", "gang.bind_timeout_s"),
        ("--metrics-collection-timeout", "metrics.collection_timeout_s"),
        ("--custom-metrics-timeout", "metrics.custom_metrics_timeout_s"),
    ],
)
def test_a_wait_flag_reaches_its_setting_and_the_probe_processes(flag, setting):
    """Tests pass short waits for the cluster's answer: the flag sets the probes' setting and nothing else."""
    from kaic.cli.run import run

    chosen = _options(**run.make_context("run", [flag, "2s"]).params).settings
    group, _, name = setting.rpartition(".")
    defaults = Settings()
    if group:
        expected = dataclasses.replace(
            defaults, **{group: dataclasses.replace(getattr(defaults, group), **{name: 2.0})}
        )
    else:
        expected = dataclasses.replace(defaults, **{name: 2.0})
    assert chosen == expected != defaults
    assert Settings.from_json(chosen.to_json()) == chosen
