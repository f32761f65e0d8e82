"""Where kaic's shipped data folders (`profiles/`, `conformance/`) live.

They sit at the top of the repository but the wheel force-includes them inside the package, so an installed
kaic finds them next to its modules and a source checkout (or editable install) finds them two levels up.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The shipped folder `name`: inside the installed package if there, else at the checkout's root."""
    for candidate in (_PACKAGE / name, _PACKAGE.parents[1] / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"kaic's {name}/ folder is missing from {_PACKAGE} and {_PACKAGE.parents[1]}")
