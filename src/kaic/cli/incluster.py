"""`kaic run --in-cluster` and the commands that follow such a run: `status`, `logs`, `retrieve`, `delete`.

Exit codes: status, logs and delete 0 when they did their job; retrieve the run's own exit code (as `kaic
run` would have exited), so a pipeline that ends with it gates the same way; an unknown run id, a run of
another cluster or results asked for too early 2; a cluster that cannot be reached or results that fail their
digests 3.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from kaic.cli.errors import InputError, OperationError, named_input_error
from kaic.cli.params import duration_option
from kaic.results.outcomes import ExitCode
from kaic.settings import CLEANUP_TIMEOUT_S, REQUEST_TIMEOUT_S

RUN_ID = click.argument("run_id", metavar="RUN_ID")


def cluster_flags(fn: Callable[..., Any]) -> Callable[..., Any]:
    from kaic.cli.run import cluster_options

    return cluster_options(fn)


def _connect(kwargs: dict[str, Any]) -> Any:
    from kaic.kube import client as kube

    try:
        return kube.connect(
            kwargs["kubeconfig"], kwargs["context"], kwargs["request_timeout"] or REQUEST_TIMEOUT_S
        )
    except kube.KubeconfigError as exc:
        raise named_input_error(exc) from None


@contextmanager
def _api_errors(what: str) -> Iterator[None]:
    """A run id this cluster lacks is bad input (2); an API that fails or refuses is an operation error
    (3)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from kaic.incluster.control import RunNotFound, RunNotReady, RunNotStarted
    from kaic.incluster.store import ResultsError
    from kaic.kube.client import describe_error

    try:
        yield
    except (RunNotFound, RunNotReady) as exc:
        raise InputError(str(exc)) from None
    except (RunNotStarted, ResultsError) as exc:
        raise OperationError(str(exc)) from None
    except (ApiException, HTTPError, OSError) as exc:
        raise OperationError(f"{what}: {describe_error(exc)}") from None


# ---- kaic run --in-cluster ---------------------------------------------------------------------------------


def refusals(kwargs: dict[str, Any]) -> None:
    """Flags an in-cluster run cannot honour, refused before anything is created."""
    from kaic.profile import builtin_names

    if kwargs.get("probe_dirs"):
        raise InputError(
            "--probe-dir: an in-cluster run has kaic's own probes only; run in-house probes locally"
        )
    if kwargs.get("gaie_conformance_dir"):
        raise InputError(
            "--gaie-conformance-dir: the runner image has no Go toolchain; run this probe locally"
        )
    if kwargs["profile"] not in builtin_names():
        raise InputError(
            f"--profile {kwargs['profile']}: an in-cluster run uses the runner image's built-in profiles "
            f"({', '.join(builtin_names())}); run a profile file locally"
        )
    if kwargs.get("rerun_failed"):
        raise InputError(
            "--rerun-failed with --in-cluster: the source folder is on this machine; re-run it locally"
        )
    if kwargs["detach"] and kwargs.get("sign_key"):
        raise InputError(
            "--sign-key with --detach: nothing is on this machine to sign; `kaic retrieve` then `kaic sign`"
        )
    if kwargs["detach"] and kwargs.get("output_dir"):
        raise InputError(
            "--output-dir with --detach: a detached run writes nothing here; give it to `kaic retrieve -d`"
        )


def run_in_cluster(opts: Any, kwargs: dict[str, Any], key: Any) -> None:
    """Launch the runner; unless detached, follow its log, retrieve its results into the output folder, sign
    them here, remove the run's objects and exit with the run's exit code."""
    from kaic.areas.images import resolve
    from kaic.engine.plan import PlanError, plan_for, plan_only
    from kaic.engine.rbac import role_object
    from kaic.engine.run import new_run_id
    from kaic.incluster import control, objects
    from kaic.profile import ProfileError, choose_version

    refusals(kwargs)
    cluster = _connect(kwargs)
    opts.run_id = new_run_id()
    click.echo(f"kaic: {cluster.connecting()}", err=True)
    with _api_errors(f"cluster {cluster.server()}"):
        version = cluster.get("/version")
    detected = f"{version.get('major', '')}.{version.get('minor', '')}"
    try:  # the plan the runner will make once it has asked the server its version, as a local run does
        plan, _ = plan_only(opts)
        chosen, _ = choose_version(plan.profile, detected, opts.kubernetes_version)
        plan = plan if chosen == plan.version else plan_for(plan.profile, opts, chosen)
    except (PlanError, ProfileError) as exc:
        raise named_input_error(exc) from None
    server = urlsplit(cluster.server())
    runner = objects.Runner(
        image=kwargs["runner_image"] or resolve(opts.settings.images, opts.settings.image_mirror)["runner"],
        node_selector=kwargs["runner_node_selector"],
        tolerations=tuple(kwargs["runner_toleration"]),
        api_server=(server.hostname or "", str(server.port or 443))
        if kwargs["runner_host_network"]
        else None,
        results_ttl_s=int(kwargs["results_ttl"]),
    )
    with _api_errors("launching the runner"):
        control.launch(cluster, opts.run_id, role_object(plan), json.dumps(opts.to_json()), runner)
    run_id = opts.run_id
    click.echo(
        f"kaic: run {run_id} launched in namespace {objects.namespace(run_id)} ({runner.image}; "
        f"{plan.profile.id}, checklist {plan.version}, mode {plan.mode}, {len(plan.probes)} probes)",
        err=True,
    )
    if kwargs["detach"]:
        if kwargs["output"] == "json":
            click.echo(json.dumps({"run": run_id, "namespace": objects.namespace(run_id)}))
        click.echo(
            f"kaic: detached; it goes on in the cluster: `kaic status {run_id}`, `kaic logs {run_id} -f`, "
            f"`kaic retrieve {run_id}`, then `kaic delete {run_id}`",
            err=True,
        )
        return
    try:
        with _api_errors(f"following run {run_id}"):
            for line in control.log_lines(cluster, run_id, follow=True):
                click.echo(line, err=True)
            current = _settled(cluster, run_id)
    except KeyboardInterrupt:
        click.echo(
            f"\nkaic: stopped following; run {run_id} goes on in the cluster: `kaic status {run_id}`",
            err=True,
        )
        sys.exit(ExitCode.INCOMPLETE)
    if current.manifest is None:
        raise OperationError(
            f"run {run_id} {current.phase}: {current.detail}; remove it with `kaic delete {run_id}`"
        )
    out_dir = _retrieve_into(cluster, run_id, kwargs.get("output_dir"))
    with _api_errors(f"removing run {run_id}"):  # the results are safe here: leave nothing in the cluster
        control.delete(cluster, run_id, kwargs["cleanup_timeout"] or CLEANUP_TIMEOUT_S)
    from kaic.cli.errors import load_report
    from kaic.cli.run import conclude

    conclude(out_dir, load_report(out_dir), ExitCode(current.manifest["exitCode"]), key, kwargs, None)


def _settled(cluster: Any, run_id: str) -> Any:
    """The run's state once the runner has ended (its log ends a moment before its results are read)."""
    import time

    from kaic.incluster import control

    while (current := control.state(cluster, run_id)).phase in ("pending", "running"):
        time.sleep(control.POLL_S)
    return current


def _retrieve_into(cluster: Any, run_id: str, output_dir: Path | None) -> Path:
    from kaic.engine.run import RunError, default_output_dir, prepare_output_dir, release_output_dir
    from kaic.incluster import control

    folder = output_dir or default_output_dir(run_id)
    try:
        made = prepare_output_dir(folder)
    except RunError as exc:
        raise named_input_error(exc) from None
    try:
        with _api_errors(f"retrieving run {run_id}"):
            control.retrieve(cluster, run_id, folder)
    except BaseException:
        release_output_dir(folder, made)
        raise
    return folder


# ---- status, logs, retrieve, delete -----------------------------------------------------------------------


@click.command()
@click.argument("run_id", metavar="[RUN_ID]", required=False)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@cluster_flags
def status(run_id: str | None, output: str, **kwargs: Any) -> None:
    """An in-cluster run's phase, probes done of total and outcomes so far; without RUN_ID, every run here."""
    from kaic.incluster import control

    cluster = _connect(kwargs)
    with _api_errors(f"cluster {cluster.server()}"):
        ids = [run_id] if run_id else control.runs(cluster)
        states = [control.state(cluster, i) for i in ids]
    if output == "json":
        click.echo(json.dumps([_as_dict(s) for s in states], indent=2))
        return
    if not states:
        click.echo(f"no in-cluster runs on {cluster.server()}")
        return
    for current in states:
        click.echo(_line(current))


def _as_dict(current: Any) -> dict[str, Any]:
    done = current.status
    return {
        "run": current.run_id,
        "phase": current.phase,
        "detail": current.detail,
        "created": current.created,
        "probes": {
            "done": done.get("done", 0),
            "total": done.get("total", 0),
            "outcomes": done.get("outcomes", {}),
        },
        "exitCode": (current.manifest or {}).get("exitCode"),
    }


def _line(current: Any) -> str:
    data = _as_dict(current)
    probes = data["probes"]
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(probes["outcomes"].items()))
    text = f"{current.run_id}  {current.phase:<8}  {probes['done']}/{probes['total']} probes"
    text += f" ({counts})" if counts else ""
    if data["exitCode"] is not None:
        text += f"  exit {data['exitCode']}: `kaic retrieve {current.run_id}`"
    return text + (f"  {current.detail}" if current.detail and current.phase != "finished" else "")


@click.command()
@RUN_ID
@click.option("-f", "--follow", is_flag=True, help="Keep printing as the runner writes, until it ends.")
@cluster_flags
def logs(run_id: str, follow: bool, **kwargs: Any) -> None:
    """The runner's log: the same progress lines and summary a local run prints."""
    from kaic.incluster import control

    cluster = _connect(kwargs)
    with _api_errors(f"reading run {run_id}'s log"):
        for line in control.log_lines(cluster, run_id, follow):
            click.echo(line)


@click.command()
@RUN_ID
@click.option(
    "--output-dir",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    help="New or empty folder for the results [default: ./kaic-results-<UTC time>-<run id>].",
)
@cluster_flags
def retrieve(run_id: str, output_dir: Path | None, **kwargs: Any) -> None:
    """Fetch a finished in-cluster run's results folder, every file checked against the digest the runner
    recorded; exits with the run's own exit code."""
    from kaic.incluster import control

    cluster = _connect(kwargs)
    with _api_errors(f"cluster {cluster.server()}"):
        control.state(cluster, run_id)  # an unknown run fails before a folder is made
    folder = _retrieve_into(cluster, run_id, output_dir)
    from kaic.cli.errors import load_report

    report = load_report(folder)
    click.echo(f"kaic: run {run_id}: {report.verdict.get('summary', '')}", err=True)
    click.echo(f"results: {folder}", err=True)
    sys.exit(int(report.verdict["exitCode"]))


@click.command()
@RUN_ID
@duration_option(
    "--cleanup-timeout", seconds=CLEANUP_TIMEOUT_S, help="How long to wait for the namespace to go."
)
@cluster_flags
def delete(run_id: str, cleanup_timeout: float, **kwargs: Any) -> None:
    """Remove everything an in-cluster run created: its namespace (runner, results), ClusterRole and binding,
    and whatever its probes left if it was cut short."""
    from kaic.incluster import control

    cluster = _connect(kwargs)
    with _api_errors(f"removing run {run_id}"):
        deleted = control.delete(cluster, run_id, cleanup_timeout)
    for item in deleted:
        click.echo(f"deleted {item}")
    click.echo(f"kaic: removed run {run_id}", err=True)
