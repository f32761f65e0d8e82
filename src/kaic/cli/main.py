"""The `kaic` command line: the root group, its config file, and where each command lives.

A command's module is imported only when that command is used, so `kaic profiles ...` loads neither the run
machinery nor the signing commands; heavy modules (kubernetes client, pytest, jsonschema) load inside
commands.
"""

from __future__ import annotations

from pathlib import Path

import click

from kaic import __version__
from kaic.cli.errors import CONFIG_ERROR, CONFIG_KEY, InputError, KaicGroup

# Where each command lives, in the order help lists them: a run's life, then its results, then the rest.
COMMANDS = {
    "run": "kaic.cli.run:run",
    "plan": "kaic.cli.run:plan",
    "status": "kaic.cli.incluster:status",
    "logs": "kaic.cli.incluster:logs",
    "retrieve": "kaic.cli.incluster:retrieve",
    "delete": "kaic.cli.incluster:delete",
    "results": "kaic.cli.run:results",
    "diff": "kaic.cli.diff:diff",
    "sign": "kaic.cli.signing:sign",
    "verify": "kaic.cli.signing:verify",
    "submission": "kaic.cli.submission:submission",
    "keys": "kaic.cli.signing:keys",
    "profiles": "kaic.cli.profiles:profiles",
    "images": "kaic.cli.images:images",
    "cleanup": "kaic.cli.run:cleanup",
    "cluster": "kaic.cli.cluster:cluster",
}


@click.group(
    "kaic",
    cls=KaicGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.version_option(__version__, prog_name="kaic")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="KAIC_CONFIG",
    help="Config file of flag defaults [env: KAIC_CONFIG; default ~/.config/kaic/config.yaml].",
)
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """kaic: Kubernetes AI Conformance, checked by behaviour, reported for CI and CNCF submissions."""
    from kaic.cli import config as config_mod

    try:
        ctx.default_map = config_mod.load(config, main)
        ctx.meta[CONFIG_KEY] = config or config_mod.default_path()
    except config_mod.ConfigError as exc:
        ctx.meta[CONFIG_ERROR] = InputError(str(exc))  # raised by the command itself: its --help still works
