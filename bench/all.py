"""Every benchmark in one run, each printing its figures beside its baseline.

    .venv/bin/python bench/all.py

startup.py (light commands vs a bare click + rich command), quick_mode.py (quick mode vs `kubectl get nodes -o
json` at 5,000 DRA nodes) and full_run.py (a full run's wall time vs its slowest probe and the sum of its
probes, on the reference cluster). The two cluster benchmarks start and stop their own local clusters, one
after the other; run it where the tests run (the reference cluster's real node needs root).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = ("startup.py", "quick_mode.py", "full_run.py")


def main() -> None:
    failed = []
    for name in BENCHMARKS:
        print(f"\n== bench/{name}", flush=True)
        if subprocess.run([sys.executable, str(Path(__file__).with_name(name))], check=False).returncode:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
