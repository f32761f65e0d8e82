"""The one image map: defaults, per-key overrides, a registry mirror, and `kaic images list`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kaic.areas.images import DEFAULTS, ImageError, for_run, resolve
from kaic.cli.images import images
from kaic.engine.plan import catalog
from kaic.settings import Settings


def test_defaults_are_fully_qualified_and_pinned():
    for key, image in DEFAULTS.items():
        registry, _, rest = image.ref.partition("/")
        assert "." in registry and ":" in rest, key
    assert resolve()["ubuntu"] == "docker.io/library/ubuntu:22.04"


def test_overrides_win_over_the_mirror():
    resolved = resolve({"busybox": "local/bb:1"}, "mirror.example.com/kaic/")
    assert resolved["busybox"] == "local/bb:1"
    assert resolved["ubuntu"] == "mirror.example.com/kaic/library/ubuntu:22.04"
    assert resolved["pause"] == "mirror.example.com/kaic/pause:3.10"
    assert for_run(Settings(images={"pause": "p:1"}))["pause"] == "p:1"


def test_unknown_key_is_refused():
    with pytest.raises(ImageError, match="unknown image key"):
        resolve({"ubuntu-typo": "x"})


def test_every_probe_image_comes_from_the_map():
    used = {image for spec in catalog().values() for image in spec.images}
    assert used and used <= set(DEFAULTS)


def test_images_list_json_and_table():
    runner = CliRunner()
    out = runner.invoke(images, ["list", "-o", "json", "--image", "ubuntu=u:1", "--image-mirror", "m.local"])
    assert out.exit_code == 0, out.output
    rows = {row["key"]: row for row in json.loads(out.output)}
    assert rows["ubuntu"]["image"] == "u:1" and rows["busybox"]["image"] == "m.local/library/busybox:1.36.1"
    assert runner.invoke(images, ["list"]).output.splitlines()[0].startswith("ubuntu")
    bad = runner.invoke(images, ["list", "--image", "nope=x"])
    assert bad.exit_code == 2 and "unknown image key" in bad.output
