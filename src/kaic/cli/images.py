"""`kaic images list`: the images a run would pull, after overrides, for mirroring into air-gapped
registries."""

from __future__ import annotations

import json

import click

from kaic.areas.images import DEFAULTS, ImageError, resolve
from kaic.cli.errors import InputError
from kaic.cli.params import key_value_pairs


@click.group()
def images() -> None:
    """The probe images and how to override them."""


@images.command("list")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--image", "overrides", multiple=True, callback=key_value_pairs, help="Override one image: KEY=REF."
)
@click.option("--image-mirror", help="Registry prefix replacing every default image's registry.")
def list_command(output: str, overrides: dict[str, str], image_mirror: str | None) -> None:
    """Every image key, its default and the reference a run would use."""
    try:
        resolved = resolve(overrides, image_mirror)
    except ImageError as exc:
        raise InputError(str(exc)) from exc
    rows = [
        {"key": key, "image": resolved[key], "default": image.ref, "purpose": image.purpose}
        for key, image in DEFAULTS.items()
    ]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["key"]) for r in rows)
    for row in rows:
        click.echo(f"{row['key']:<{width}}  {row['image']}  ({row['purpose']})")
