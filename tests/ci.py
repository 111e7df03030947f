"""Whether the suite runs under CI: THE one definition, for tests/conftest.py and tests/run.sh.

Under CI no test may skip because a service is missing, and the OpenStack tests always run. CI systems
set ``CI`` to ``true``, ``1`` or ``yes`` (any case). ``python -m tests.ci`` exits 0 under CI, 1 otherwise.
"""

from __future__ import annotations

import os
import sys


def in_ci(environ: dict[str, str] | None = None) -> bool:
    return (environ if environ is not None else os.environ).get("CI", "").strip().lower() in ("1", "true", "yes")


if __name__ == "__main__":
    sys.exit(0 if in_ci() else 1)
