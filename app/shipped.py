"""The pages' default views, computed once and shipped in ``assets/pages/``: what a first visitor sees at once.

Every visitor's first view of a page is the same, and for two pages it is slow to compute: the family page's
default fits (9 α values and 8 mixtures, ~2 s on a 2-core machine) and the 2-D lab's final-student summaries
(~2.5 s). ``scripts/make_page_assets.py`` computes them with the very calls the pages make
(:func:`default_calls`: the pages' own argument builders in ``app.model`` on the state of an empty URL) and
stores the results; ``tests/test_shipped.py`` recomputes them, checks that they are equal, and checks that the
pages' default views are served from them. Any other arguments are computed live.

When a change to the fitting, the metrics or the defaults changes these results, the test fails: rerun
``python scripts/make_page_assets.py``.
"""

from __future__ import annotations

import functools
import pickle
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import model

__all__ = ["PATH", "NAMES", "default_calls", "compute", "lookup", "served", "write", "served_count"]

PATH = Path(__file__).resolve().parents[1] / "assets" / "pages" / "defaults.pickle"
FORMAT = ("kl-lab-page-defaults", 1)  # (what the file is, its layout's version)
NAMES = ("sweep_fits", "capacity_fits", "lab_2d_runs", "summaries_2d")  # the app.model calls that can be shipped

served_count: Counter[str] = Counter()  # name -> calls answered from the file in this process (for the tests)


def default_calls() -> list[tuple[str, tuple]]:
    """(``app.model`` function name, arguments) of every shipped call: what the pages compute for an empty URL."""
    state, _ = model.start_state({})
    sweep_args, capacity_args, _ = model.family_calls(state)
    lab_2d_args, _ = model.lab_2d_call(state)
    return [
        ("sweep_fits", sweep_args),
        ("capacity_fits", capacity_args),
        ("lab_2d_runs", lab_2d_args),
        ("summaries_2d", lab_2d_args),  # keyed, like the page's cache, on the fits' arguments alone
    ]


def compute(name: str, args: tuple) -> Any:
    """A fresh computation of one call (``summaries_2d``: of the kept starts of ``lab_2d_runs(*args)``, as the
    2-D lab summarises them)."""
    if name == "summaries_2d":
        return model.summaries_2d(args, model.kept_runs(model.lab_2d_runs(*args)))
    return getattr(model, name)(*args)


def write(path: Path = PATH) -> dict[tuple[str, tuple], Any]:
    """Compute every default call and store the results at ``path``; returns them."""
    results = {}
    for name, args in default_calls():
        if name == "summaries_2d":  # the fits were just computed: summarise those
            results[name, args] = model.summaries_2d(args, model.kept_runs(results["lab_2d_runs", args]))
        else:
            results[name, args] = compute(name, args)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"format": FORMAT, "results": results}, protocol=pickle.HIGHEST_PROTOCOL))
    return results


@functools.cache
def _load(path: Path = PATH) -> dict[tuple[str, tuple], Any]:
    """The shipped results by (name, arguments); empty when there is no file. A file of another format raises."""
    if not path.exists():
        return {}
    data = pickle.loads(path.read_bytes())  # our own file, written by write()
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT[0]} file of version {FORMAT[1]}: run scripts/make_page_assets.py")
    return data["results"]


def lookup(name: str, args: tuple) -> Any | None:
    """The shipped result of ``name(*args)``, or None when those arguments were not shipped."""
    found = _load().get((name, args))
    if found is not None:
        served_count[name] += 1
    return found


def served(name: str, function: Callable) -> Callable:
    """``function`` answering from the shipped results where it can (keyed on its first argument for
    ``summaries_2d``, whose second is the fits themselves)."""

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        key = args[0] if name == "summaries_2d" else args
        found = lookup(name, key)
        return function(*args) if found is None else found

    return call
