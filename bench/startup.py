"""Startup cost of light kaic commands, side by side with a bare click + rich command.

    .venv/bin/python bench/startup.py [--runs 15]
    PYTHONPATH=src .venv/bin/python bench/startup.py    # this checkout's kaic rather than the installed one

Runs each command alternately (so machine load hits both alike) and prints medians and the ratio.
Also shows `import kubernetes` alone, the cost the light commands must avoid. Bytecode caches are written
(PYTHONDONTWRITEBYTECODE is dropped) as an installed kaic has them: else every kaic module is compiled on
every start while click and rich load theirs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

BASELINE = (
    "import click, rich.console\n"
    "@click.command()\n"
    "def hello():\n"
    "    'A bare click + rich command.'\n"
    "    rich.console.Console().print('hi')\n"
    "hello(['--help'])\n"
)

COMMANDS = {
    "baseline click+rich --help": [sys.executable, "-c", BASELINE],
    "kaic --help": [sys.executable, "-m", "kaic", "--help"],
    "kaic profiles list": [sys.executable, "-m", "kaic", "profiles", "list"],
    "kaic profiles show ai-v1.0": [sys.executable, "-m", "kaic", "profiles", "show", "ai-v1.0"],
    "kaic plan": [sys.executable, "-m", "kaic", "plan"],
    "kaic images list": [sys.executable, "-m", "kaic", "images", "list"],
    "import kubernetes (reference)": [sys.executable, "-c", "import kubernetes"],
}


ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for name, cmd in COMMANDS.items():
        once(cmd)  # warm the page and bytecode caches
    for _ in range(runs):
        for name, cmd in COMMANDS.items():
            samples[name].append(once(cmd))
    base = statistics.median(samples["baseline click+rich --help"])
    print(f"{'command':<32} {'median':>9} {'ratio':>7}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<32} {median * 1000:>7.1f}ms {median / base:>6.2f}x")


if __name__ == "__main__":
    main()
