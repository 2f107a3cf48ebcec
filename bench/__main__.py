"""`make bench` / `python -m bench [name ...]`: run the benchmarks and write docs/benchmarks/."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("forecasting", "biometric", "pharmacogenomics", "orchestrator")


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    failures = 0
    for name in chosen:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError:
            print(f"bench.{name}: not present, skipped")
            continue
        print(f"== bench.{name}")
        failures += int(module.main([]) != 0)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
