"""`make bench`: run every benchmark module here and print their figures side by side.

Each ``bench_*.py`` module exposes ``run(context) -> list of rows`` where a row is
``(figure, measured, target or '', verdict or '')``. Figures are measured in this one run;
ratios compare things measured side by side, never against a stored number.
"""

import importlib
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main():
    only = sys.argv[1:]
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if only:
        modules = [m for m in modules if any(o in m for o in only)]
    if not modules:
        print("make bench: no benchmark module found")
        return 0
    failures = 0
    met, missed = 0, []
    for name in modules:
        module = importlib.import_module(name)
        title = (module.__doc__ or name).strip().splitlines()[0]
        print(f"\n== {name}: {title}", flush=True)
        started = time.perf_counter()
        try:
            rows = module.run(os.environ)
        except Exception as error:  # noqa: BLE001 - report and go on with the other benches
            failures += 1
            print(f"   FAILED: {error!r}")
            import traceback

            traceback.print_exc()
            continue
        width = max(len(row[0]) for row in rows) if rows else 10
        for figure, measured, target, verdict in rows:
            print(f"   {figure:<{width}}  {measured:>14}  {target:<18} {verdict}")
            if verdict == "OK":
                met += 1
            elif verdict:  # MISSED, BELOW TARGET, ABOVE TARGET, MISMATCH, ...
                missed.append(f"{name}: {figure.strip()} ({measured.strip()}, {target.strip()})")
        print(f"   ({time.perf_counter() - started:.0f} s)")
    print(f"\nmake bench: {met} of {met + len(missed)} targets met", end="")
    print(f"; missed: {'; '.join(missed)}" if missed else "", end="")
    print(f"; {failures} benchmark module(s) FAILED" if failures else "")
    # It reports, it never fails: only a module that could not run makes the exit status 1.
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
