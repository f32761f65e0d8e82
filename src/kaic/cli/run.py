"""`kaic run`, `plan`, `results` and `cleanup`: the commands that plan and run probes, with their flags.

Loaded only when one of them is used (kaic.cli.main names it lazily); the kubernetes client, pytest and the
engine load inside the commands.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from kaic.cli.errors import (
    InputError,
    load_report,
    named_input_error,
    remember_output_dir,
)
from kaic.cli.params import Duration, LazyChoice, duration_option, key_value_pairs, split_commas
from kaic.results.outcomes import ExitCode
from kaic.settings import (
    ALLOCATION_MODES,
    CLEANUP_TIMEOUT_S,
    GANG_SCHEDULERS,
    PARALLEL,
    REQUEST_TIMEOUT_S,
    RESULTS_TTL_S,
    Autoscaler,
    Disaggregated,
    Gang,
    Metrics,
    Network,
    Operator,
    Settings,
)


def _with_options(fn: Callable[..., Any], options: list[Callable[[Any], Any]]) -> Callable[..., Any]:
    """`fn` with a group of click options, listed in the order --help shows them."""
    for option in reversed(options):
        fn = option(fn)
    return fn


def cluster_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """kubectl-style access flags shared by every command that talks to a cluster."""
    return _with_options(
        fn,
        [
            click.option("--kubeconfig", envvar="KUBECONFIG", help="Kubeconfig file [env: KUBECONFIG]."),
            click.option("--context", envvar="KAIC_CONTEXT", help="Kubeconfig context [env: KAIC_CONTEXT]."),
            duration_option(
                "--request-timeout",
                seconds=REQUEST_TIMEOUT_S,
                help="Timeout of one API request.",
            ),
        ],
    )


# `kaic run` and `kaic cleanup` wait on the same cleanup.
cleanup_timeout_option = duration_option(
    "--cleanup-timeout", seconds=CLEANUP_TIMEOUT_S, help="Cleanup wait bound."
)


# The values of these choices live beside the code that acts on them, which `kaic --help` does not load.
def _modes() -> Iterable[str]:
    from kaic.probe import MODES

    return MODES


def _accelerator_profiles() -> Iterable[str]:
    from kaic.areas.accelerators import PROFILES

    return ["auto", *PROFILES]


def _operators() -> Iterable[str]:
    from kaic.areas.operators import CHOICES

    return CHOICES


def selection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """What to judge: profile, checklist version, mode, focus and skip (shared by run and plan)."""
    return _with_options(
        fn,
        [
            click.option(
                "--profile",
                "-p",
                envvar="KAIC_PROFILE",
                default="ai-v1.0",
                show_default=True,
                help="Built-in profile name or a profile file [env: KAIC_PROFILE].",
            ),
            click.option(
                "--kubernetes-version",
                help="Judge against this checklist (e.g. 1.35) instead of the server's minor.",
            ),
            click.option(
                "--mode",
                type=LazyChoice(_modes),
                default="non-disruptive",
                envvar="KAIC_MODE",
                show_default=True,
                help="quick: discovery only; non-disruptive: all but node scaling; certified: everything.",
            ),
            click.option(
                "--focus",
                "--requirement",
                "focus",
                multiple=True,
                callback=split_commas,
                help="Only these requirement ids (repeatable, comma-separated).",
            ),
            click.option(
                "--accelerator-profile",
                type=LazyChoice(_accelerator_profiles),
                default=Settings.accelerator_profile,
                show_default=True,
                help="Accelerator family (simulated, nvidia, amd, intel, google-tpu) or auto-detect.",
            ),
            click.option(
                "--allocation-mode",
                type=click.Choice(ALLOCATION_MODES),
                default=Settings.allocation_mode,
                show_default=True,
                help="How probes ask for devices; auto prefers a complete DRA pool on Ready nodes.",
            ),
            click.option(
                "--toleration",
                multiple=True,
                callback=_checked_tolerations,
                help="Let every probe pod tolerate this taint: KEY[=VALUE]:EFFECT, "
                "EFFECT NoSchedule, PreferNoSchedule or NoExecute; KEY:EFFECT tolerates any value "
                "(repeatable; for dedicated accelerator nodes).",
            ),
            duration_option(
                "--schedule-timeout",
                seconds=Settings.schedule_timeout_s,
                help="How long the scheduler may take to bind a pod that fits (its claims allocated) or to "
                "report one that cannot fit.",
            ),
            click.option(
                "--image",
                "images",
                multiple=True,
                callback=key_value_pairs,
                help="Override one probe image: KEY=REF (repeatable; keys: `kaic images list`).",
            ),
            click.option(
                "--image-mirror",
                help="Registry prefix replacing every default image's registry (air-gapped clusters).",
            ),
            click.option(
                "--metrics-endpoint",
                help="Accelerator exporter's /metrics: a URL, "
                "or an API server path (/api/v1/namespaces/…/proxy/metrics).",
            ),
            click.option(
                "--metrics-utilization-metric",
                help="Accelerator utilisation series name "
                "[default: the exporter's, e.g. DCGM_FI_DEV_GPU_UTIL].",
            ),
            click.option(
                "--metrics-memory-metric",
                help="Accelerator memory series name [default: the exporter's, e.g. DCGM_FI_DEV_FB_USED].",
            ),
            click.option(
                "--metrics-query-url",
                help="Prometheus-compatible query API base URL "
                "[default: a Prometheus Service found in the cluster].",
            ),
            click.option(
                "--prometheus-service",
                callback=_checked_by("kaic.areas.metrics.service_ref"),
                help="NAMESPACE/NAME[:PORT] of the Prometheus Service to query through the API server's "
                "service proxy [default: found by name and port].",
            ),
            duration_option(
                "--metrics-collection-timeout",
                seconds=Metrics.collection_timeout_s,
                help="How long the monitoring system may take to collect a probe workload's series.",
            ),
            duration_option(
                "--custom-metrics-timeout",
                seconds=Metrics.custom_metrics_timeout_s,
                help="How long the custom metrics API may take to report a probe pod's new value.",
            ),
            click.option(
                "--probe-dir",
                "probe_dirs",
                multiple=True,
                type=click.Path(path_type=Path),
                help="Extra probe modules (test_*.py) for in-house requirements of a profile file "
                "(repeatable).",
            ),
            click.option(
                "--skip",
                "--skip-requirement",
                "skip",
                multiple=True,
                callback=split_commas,
                help="Leave out these requirement ids (repeatable, comma-separated).",
            ),
            click.option(
                "--autoscaler-node-pool-label",
                callback=_checked_by("kaic.areas.autoscaling.parse_pool_label"),
                help="key=value naming an isolated accelerator node pool the autoscaler may grow by one node "
                "(certified mode; unset: the scale-up check is unknown).",
            ),
            duration_option(
                "--autoscaler-scale-up-timeout",
                seconds=Autoscaler.scale_up_timeout_s,
                help="How long a pending accelerator pod may wait for the new node.",
            ),
            duration_option(
                "--autoscaler-scale-down-timeout",
                seconds=Autoscaler.scale_down_timeout_s,
                help="How long the pool may take to return to its baseline size.",
            ),
        ],
    )


def gang_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Which gang-scheduling solution the gang probes judge and how to reach it (upstream's -gang-* flags)."""
    return _with_options(
        fn,
        [
            click.option(
                "--gang-scheduler",
                type=click.Choice(GANG_SCHEDULERS),
                default=Gang.scheduler,
                show_default=True,
                envvar="KAIC_GANG_SCHEDULER",
                help="Gang-scheduling solution to judge, or auto-detect.",
            ),
            click.option(
                "--gang-scheduler-namespace",
                envvar="KAIC_GANG_SCHEDULER_NAMESPACE",
                help="Pre-made namespace wired to the solution (e.g. holding a Kueue LocalQueue).",
            ),
            click.option(
                "--gang-job-labels",
                multiple=True,
                envvar="KAIC_GANG_JOB_LABELS",
                callback=lambda ctx, param, v: key_value_pairs(ctx, param, split_commas(ctx, param, v)),
                help="Labels for the gang Jobs, KEY=VALUE (e.g. kueue.x-k8s.io/queue-name=team-q).",
            ),
            click.option(
                "--gang-scheduler-name", help="spec.schedulerName of gang pods [default: the solution's]."
            ),
            duration_option(
                "--gang-negative-window",
                seconds=Gang.window_s,
                help="The longest a gang that cannot fit is watched for binds; the watch ends sooner once "
                "the solution has refused every member.",
            ),
            duration_option(
                "--gang-bind-timeout",
                seconds=Gang.bind_timeout_s,
                help="How long a gang that fits may take to have every member bound, and then started.",
            ),
        ],
    )


def operator_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Which AI operator the robust_controller probes judge (upstream's -operator* flags), which sandbox
    runtime workload_sandboxing judges (upstream's -sandbox-runtime-class) and which GatewayClass ai_inference
    uses."""
    return _with_options(
        fn,
        [
            click.option(
                "--operator",
                type=LazyChoice(_operators),
                default=Operator.operator,
                show_default=True,
                envvar="KAIC_OPERATOR",
                help="AI operator to judge, or the first supported one installed.",
            ),
            click.option(
                "--operator-runtime",
                help="Runtime the valid object uses [default: the operator's, e.g. torch-distributed].",
            ),
            duration_option(
                "--operator-ready-timeout",
                seconds=Operator.ready_timeout_s,
                help="How long the operator's pods may take to be Ready.",
            ),
            duration_option(
                "--operator-reconcile-timeout",
                seconds=Operator.reconcile_timeout_s,
                help="How long the controller may take to reconcile a valid object to success.",
            ),
            click.option(
                "--sandbox-runtime-class",
                envvar="KAIC_SANDBOX_RUNTIME_CLASS",
                help="RuntimeClass whose pods workload_sandboxing judges [default: the first whose name or "
                "handler names a sandbox, e.g. gvisor].",
            ),
            click.option(
                "--gateway-class",
                envvar="KAIC_GATEWAY_CLASS",
                help="GatewayClass ai_inference routes through [default: the first Accepted one by name].",
            ),
        ],
    )


def _checked_by(parser: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A callback checking a flag's value with a kaic.areas parser ("module.function", imported only when a
    value is given): its ValueError becomes the flag's own bad-input error."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if not value:
            return value
        module, _, name = parser.rpartition(".")
        try:
            getattr(importlib.import_module(module), name)(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        return value

    return check


def _checked_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        raise click.BadParameter(
            f"{value!r}: use an http:// or https:// URL reachable from inside the cluster"
        )
    return value


def _checked_tolerations(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[dict[str, str]]:
    from kaic.areas.policy import parse_toleration

    try:
        return [parse_toleration(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _checked_attachment(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value and value.count("/") != 1:
        raise click.BadParameter(f"{value!r}: use NAMESPACE/NAME of a NetworkAttachmentDefinition")
    return value


def network_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """What the inference-ingress, high-performance-networking and disaggregated-inference probes judge; their
    images are the `inference-sim` and `inference-epp` keys of --image."""
    return _with_options(
        fn,
        [
            click.option(
                "--gaie-conformance-dir",
                type=click.Path(exists=True, file_okay=False, path_type=Path),
                help="Checkout of gateway-api-inference-extension whose conformance suite to run (needs go).",
            ),
            click.option(
                "--network-device-class",
                help="DeviceClass of the DRA network driver's claims [default: "
                "the first whose selector names the driver].",
            ),
            click.option(
                "--network-attribute",
                default=Network.attribute,
                show_default=True,
                help="Boolean device attribute the network claim selects on (e.g. dra.net/rdma).",
            ),
            click.option(
                "--network-attachment",
                callback=_checked_attachment,
                help="NAMESPACE/NAME of the NetworkAttachmentDefinition to attach [default: the first].",
            ),
            click.option(
                "--disaggregated-namespace", help="Namespace of the disaggregated serving stack to judge."
            ),
            click.option(
                "--disaggregated-role",
                "disaggregated_roles",
                multiple=True,
                callback=key_value_pairs,
                help="ROLE=LABEL-SELECTOR of one role (repeatable) [default: prefill=llm-d.ai/role=prefill, "
                "decode=llm-d.ai/role=decode].",
            ),
            click.option(
                "--disaggregated-endpoint",
                callback=_checked_url,
                help="Base URL of the stack's OpenAI-style API, as reached from inside the cluster.",
            ),
            click.option(
                "--disaggregated-model", help="Model to request [default: the first /v1/models lists]."
            ),
        ],
    )


def runner_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Where an in-cluster run's runner pod runs: with `--in-cluster` only (typed without it they are refused;
    from a config file, which may set them for every run, they are ignored)."""
    return _with_options(
        fn,
        [
            click.option(
                "--in-cluster",
                is_flag=True,
                help="Run inside the cluster as a Job (docs/in-cluster.md); the run goes on if this client "
                "ends. Follows it, retrieves the results, signs them here and removes the run's objects.",
            ),
            click.option(
                "--detach",
                is_flag=True,
                help="With --in-cluster: print the run id and return; later `kaic status`, `kaic retrieve`, "
                "`kaic delete`.",
            ),
            click.option(
                "--runner-image",
                help="kaic's runner image [default: `kaic images list`'s `runner`, after --image and "
                "--image-mirror].",
            ),
            click.option(
                "--runner-node-selector",
                multiple=True,
                callback=key_value_pairs,
                help="KEY=VALUE label of the node the runner pod may use (repeatable).",
            ),
            click.option(
                "--runner-toleration",
                multiple=True,
                callback=_checked_tolerations,
                help="A taint the runner pod tolerates, as --toleration (repeatable).",
            ),
            click.option(
                "--runner-host-network",
                is_flag=True,
                help="Run the runner on its node's network, reaching the API server at this kubeconfig's "
                "address (for clusters whose pods cannot reach the `kubernetes` Service, like kaic's local "
                "cluster).",
            ),
            duration_option(
                "--results-ttl",
                seconds=RESULTS_TTL_S,
                help="How long a finished in-cluster run's results wait in the cluster to be retrieved.",
            ),
        ],
    )


def _options(**kwargs: Any) -> Any:
    from kaic.areas.images import ImageError, resolve
    from kaic.engine.plan import RunOptions

    try:
        resolve(kwargs.get("images"), kwargs.get("image_mirror"))  # a bad override fails before the run
    except ImageError as exc:
        raise InputError(str(exc)) from None

    get = kwargs.get  # a command without a flag group gets that group's defaults
    gaie = get("gaie_conformance_dir")
    return RunOptions(
        profile=kwargs["profile"],
        mode=kwargs["mode"],
        focus=kwargs["focus"],
        skip=kwargs["skip"],
        kubernetes_version=get("kubernetes_version"),
        output_dir=get("output_dir"),
        kubeconfig=get("kubeconfig"),
        context=get("context"),
        request_timeout=get("request_timeout") or REQUEST_TIMEOUT_S,
        probe_timeout_s=get("probe_timeout"),
        run_timeout_s=get("timeout"),
        parallel=get("parallel") or PARALLEL,
        probe_dirs=tuple(get("probe_dirs") or ()),
        settings=Settings(
            accelerator_profile=get("accelerator_profile") or Settings.accelerator_profile,
            allocation_mode=get("allocation_mode") or Settings.allocation_mode,
            tolerations=tuple(get("toleration") or ()),
            images=get("images") or {},
            image_mirror=get("image_mirror"),
            sandbox_runtime_class=get("sandbox_runtime_class"),
            gateway_class=get("gateway_class"),
            cleanup_timeout_s=get("cleanup_timeout") or CLEANUP_TIMEOUT_S,
            schedule_timeout_s=get("schedule_timeout") or Settings.schedule_timeout_s,
            gang=Gang(
                scheduler=get("gang_scheduler") or Gang.scheduler,
                namespace=get("gang_scheduler_namespace") or "",
                job_labels=get("gang_job_labels") or {},
                scheduler_name=get("gang_scheduler_name") or "",
                window_s=get("gang_negative_window") or Gang.window_s,
                bind_timeout_s=get("gang_bind_timeout") or Gang.bind_timeout_s,
            ),
            operator=Operator(
                operator=get("operator") or Operator.operator,
                runtime=get("operator_runtime") or "",
                ready_timeout_s=get("operator_ready_timeout") or Operator.ready_timeout_s,
                reconcile_timeout_s=get("operator_reconcile_timeout") or Operator.reconcile_timeout_s,
            ),
            autoscaler=Autoscaler(
                node_pool_label=get("autoscaler_node_pool_label"),
                scale_up_timeout_s=get("autoscaler_scale_up_timeout") or Autoscaler.scale_up_timeout_s,
                scale_down_timeout_s=get("autoscaler_scale_down_timeout") or Autoscaler.scale_down_timeout_s,
            ),
            metrics=Metrics(
                endpoint=get("metrics_endpoint"),
                query_url=get("metrics_query_url"),
                prometheus_service=get("prometheus_service"),
                utilization_metric=get("metrics_utilization_metric"),
                memory_metric=get("metrics_memory_metric"),
                collection_timeout_s=get("metrics_collection_timeout") or Metrics.collection_timeout_s,
                custom_metrics_timeout_s=get("custom_metrics_timeout") or Metrics.custom_metrics_timeout_s,
            ),
            network=Network(
                gaie_conformance_dir=str(gaie.resolve()) if gaie else None,
                device_class=get("network_device_class"),
                attribute=get("network_attribute") or Network.attribute,
                attachment=get("network_attachment"),
            ),
            disaggregated=Disaggregated(
                namespace=get("disaggregated_namespace") or "",
                roles=get("disaggregated_roles") or {},
                endpoint=get("disaggregated_endpoint") or "",
                model=get("disaggregated_model") or "",
            ),
        ),
    )


def _usage_errors() -> tuple[type[Exception], ...]:
    from kaic.engine.plan import PlanError
    from kaic.engine.rerun import RerunError
    from kaic.engine.run import RunError
    from kaic.kube.client import KubeconfigError
    from kaic.profile import ProfileError

    return (RunError, PlanError, ProfileError, KubeconfigError, RerunError)


@click.command()
@selection_options
@gang_options
@operator_options
@network_options
@cluster_options
@runner_options
@click.option(
    "--output-dir",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="KAIC_OUTPUT_DIR",
    help="New or empty folder for the results [default: ./kaic-results-<UTC time>-<run id>].",
)
@click.option(
    "--rerun-failed",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Run again only the probes that failed, errored or were unknown in the run in DIR, with its "
    "profile, checklist, mode, selection and probe settings; carry its other results over into a new run.",
)
@click.option("--probe-timeout", type=Duration(), help="Cap on each probe's own timeout.")
@click.option("--timeout", type=Duration(), help="Timeout of the whole run (then: incomplete, exit 3).")
@cleanup_timeout_option
@click.option(
    "--parallel",
    type=click.IntRange(1, 32),
    default=PARALLEL,
    show_default=True,
    help="Most probes at once (probes consuming the same devices, pool or quota never overlap).",
)
@click.option(
    "--sign-key",
    envvar="KAIC_SIGN_KEY",
    help="Sign the results with this private key (a file or env://VAR) [env: KAIC_SIGN_KEY].",
)
@click.option("--dry-run", is_flag=True, help="Show the plan and touch nothing (same as `kaic plan`).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--no-color", is_flag=True, help="Plain output [also when NO_COLOR is set to anything].")
def run(**kwargs: Any) -> None:
    """Probe the cluster against a profile and write report.json, JUnit and go-test artifacts.

    Exit codes: 0 conformant, 1 not conformant (a MUST failed), 2 usage or input error, 3 incomplete
    (preflight failed, a MUST errored, timeout, interrupt), 4 undetermined (a MUST needs manual attestation)
    or partial (every selected MUST passed, but --focus/--skip left MUSTs out: never conformant).
    In quick mode: 0 when discovery completed, 3 when not.
    """
    from kaic.cli.incluster import refusals

    refusals(kwargs)
    if kwargs["dry_run"]:
        if kwargs["rerun_failed"]:
            raise InputError("--dry-run: not with --rerun-failed; `kaic results DIR` shows what did not pass")
        _show_plan(_options(**kwargs), kwargs["output"] == "json", rbac=False)
        return
    from kaic.cli.progress import human_stream, make_reporter
    from kaic.engine.run import Run

    key = _signing_key(kwargs["sign_key"]) if kwargs["sign_key"] else None  # a bad key fails before the run
    if kwargs["in_cluster"]:
        from kaic.cli.incluster import run_in_cluster

        run_in_cluster(_options(**kwargs), kwargs, key)
        return
    try:
        stream = human_stream()
        opts, rerun = (
            _rerun(kwargs["rerun_failed"], kwargs) if kwargs["rerun_failed"] else (_options(**kwargs), None)
        )
        runner = Run(opts, make_reporter(stream, kwargs["no_color"]), rerun)
    except _usage_errors() as exc:
        raise named_input_error(exc) from None
    remember_output_dir(runner.out_dir)
    try:
        code = runner.execute()
    except _usage_errors() as exc:
        raise named_input_error(exc) from None
    report = runner.report
    assert report is not None
    conclude(runner.out_dir, report, code, key, kwargs, stream)


def conclude(
    out_dir: Path, report: Any, code: ExitCode, key: Any, kwargs: dict[str, Any], stream: Any
) -> None:
    """The end of a run, local or in-cluster: sign here with --sign-key, show the summary (unless `stream` is
    None: an in-cluster runner's log showed it) and exit with the run's code."""
    if key is not None:
        from kaic.certify.sign import SignError, sign_run

        try:
            sign_run(out_dir, key)
        except SignError as exc:  # the results stand unsigned; a proven MUST failure still says 1
            click.echo(f"kaic: error: --sign-key: the results could not be signed: {exc}", err=True)
            code = code if code == ExitCode.NOT_CONFORMANT else ExitCode.INCOMPLETE
    if kwargs["output"] == "json":
        click.echo(json.dumps({"outputDir": str(out_dir), "run": report.run, "verdict": report.verdict}))
    else:
        if stream is not None:
            from rich.console import Console

            from kaic.results.writers.summary import render_summary

            render_summary(report, Console(file=stream, no_color=kwargs["no_color"] or None))
        click.echo(f"results: {out_dir}", err=True)
    sys.exit(int(code))


def _rerun(source: Path, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The options and source of `--rerun-failed`; when its source left nothing to re-run, say so and exit
    with its verdict's code, writing nothing."""
    from kaic.engine.plan import plan_only
    from kaic.engine.rerun import Rerun

    ctx = click.get_current_context()
    given = {
        name
        for name in kwargs
        if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
    }
    rerun = Rerun.load(source)
    opts = rerun.options(_options(**kwargs), given)
    if not rerun.split(plan_only(opts)[0])[0].probes:
        message, code = rerun.nothing_to_rerun()
        click.echo(f"kaic: {message}", err=True)
        sys.exit(int(code))
    return opts, rerun


def _signing_key(ref: str) -> Any:
    from kaic.certify import keys as keys_mod
    from kaic.cli.signing import input_errors

    with input_errors():
        return keys_mod.load_private(ref, keys_mod.passphrase)


def _show_plan(opts: Any, as_json: bool, rbac: bool) -> None:
    from kaic.engine.plan import PlanError, plan_only
    from kaic.profile import ProfileError

    try:
        plan, why = plan_only(opts)
    except (PlanError, ProfileError) as exc:  # planning's usage errors; a run's others need the cluster layer
        raise named_input_error(exc) from None
    if rbac:
        from kaic.engine.rbac import cluster_role

        click.echo(cluster_role(plan), nl=False)
        return
    from kaic.areas.images import resolve

    data = plan.to_dict()
    data["checklistReason"] = why
    refs = resolve(opts.settings.images, opts.settings.image_mirror)
    data["images"] = [refs[key] for key in data["images"]]  # what a mirror must hold, after overrides
    data["tolerations"] = list(opts.settings.tolerations)  # added to every probe pod (--toleration)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{plan.profile.id}[/] checklist {plan.version} ({why}), mode {plan.mode}")
    table = Table("requirement", "level", "probes")
    for req in data["requirements"]:
        table.add_row(req["id"], req["level"], ", ".join(req["probes"]) or "-")
    console.print(table)
    for req_id, why_excluded in plan.excluded.items():
        console.print(f"excluded {req_id}: {why_excluded}")
    for name, why_skipped in plan.skipped.items():
        console.print(f"skipped {name}: {why_skipped}")
    console.print(f"images: {', '.join(data['images']) or 'none'}")
    from kaic.areas.policy import toleration_text

    tolerated = ", ".join(toleration_text(t) for t in data["tolerations"])
    console.print(f"tolerations (every probe pod, besides the accelerator profile's): {tolerated or 'none'}")
    console.print(
        "RBAC: "
        + "; ".join(f"{' '.join(r['verbs'])} {r['apiGroup'] or 'core'}/{r['resource']}" for r in data["rbac"])
    )


@click.command()
@selection_options
@gang_options
@operator_options
@network_options
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--rbac", is_flag=True, help="Print the ClusterRole the plan needs, as YAML.")
def plan(**kwargs: Any) -> None:
    """Show what a run would do, before anything touches the cluster: probes, objects, images, RBAC.

    The checklist is --kubernetes-version, else the newest the profile covers (no cluster is asked).
    """
    _show_plan(_options(**kwargs), kwargs["output"] == "json", rbac=kwargs["rbac"])


@click.command()
@click.argument("directory", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def results(directory: Path, output: str) -> None:
    """Re-render the summary of a saved run (its report.json)."""
    report = load_report(directory)
    if output == "json":
        click.echo(json.dumps({"run": report.run, "verdict": report.verdict}, indent=2))
        return
    from rich.console import Console

    from kaic.results.writers.summary import render_summary

    render_summary(report, Console())


@click.command()
@cluster_options
@click.option("--run-id", help="Remove what this run left.")
@click.option("--all", "everything", is_flag=True, help="Remove what every kaic run left.")
@cleanup_timeout_option
def cleanup(**kwargs: Any) -> None:
    """Delete objects kaic created and labelled (after a killed run). Touches nothing else."""
    if bool(kwargs["run_id"]) == bool(kwargs["everything"]):
        raise InputError("give exactly one of --run-id ID or --all")
    from kaic.kube import cleanup as cleanup_mod
    from kaic.kube import client as kube

    try:
        cluster = kube.connect(kwargs["kubeconfig"], kwargs["context"], kwargs["request_timeout"])
    except kube.KubeconfigError as exc:
        raise InputError(str(exc)) from None
    click.echo(f"kaic: {cluster.connecting()}", err=True)
    try:
        deleted = cleanup_mod.sweep(cluster, kwargs["run_id"], kwargs["cleanup_timeout"])
    except Exception as exc:  # noqa: BLE001 - report any API failure plainly, exit "incomplete"
        click.echo(f"kaic: cleanup incomplete: {kube.describe_error(exc)}", err=True)
        sys.exit(ExitCode.INCOMPLETE)
    for item in deleted:
        click.echo(f"deleted {item}")
    click.echo(f"kaic: removed {len(deleted)} object(s)", err=True)
