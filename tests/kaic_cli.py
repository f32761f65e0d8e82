"""The installed `kaic` command in a subprocess, as a user or a pipeline runs it (end-to-end tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def kaic(*args: str | Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`kaic ARGS` with `env` over this process's environment and CI set (plain progress lines)."""
    return subprocess.run(
        [sys.executable, "-m", "kaic", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CI": "true", **env},
        check=False,
    )
