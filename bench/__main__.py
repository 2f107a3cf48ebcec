"""`make bench` / `python -m bench [name ...] [options]`: run benchmarks, write docs/benchmarks/.

Arguments that name a benchmark choose which run (all when none is named); every
other argument is passed on to each chosen benchmark, e.g.
``python -m bench forecasting --quick``.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("forecasting", "biometric", "pharmacogenomics", "orchestrator", "capacity")


def main(argv: list[str]) -> int:
    names = [arg for arg in argv if arg in BENCHMARKS]
    options = [arg for arg in argv if arg not in BENCHMARKS]
    failures = 0
    for name in names or list(BENCHMARKS):
        module = importlib.import_module(f"bench.{name}")
        print(f"== bench.{name}", flush=True)
        failures += int(module.main(options) != 0)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
