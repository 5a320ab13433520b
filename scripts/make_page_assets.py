"""Make the pages' shipped default views in assets/pages/ (app/shipped.py): rerun when a test says they are stale.

    python scripts/make_page_assets.py

Computes, with the calls the pages make for an empty URL, the family page's sweep and capacity fits and
the 2-D lab's fits and final-student summaries, and writes them to ``assets/pages/defaults.pickle``.
tests/test_shipped.py checks that a fresh computation gives the same results. Takes about 10 s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import shipped  # noqa: E402


def main() -> None:
    started = time.perf_counter()
    results = shipped.write()
    size_mb, seconds = shipped.PATH.stat().st_size / 1e6, time.perf_counter() - started
    print(f"wrote {len(results)} results to {shipped.PATH} ({size_mb:.2f} MB) in {seconds:.1f} s")
    for name, args in results:
        print(f"  {name}: {args}")


if __name__ == "__main__":
    main()
