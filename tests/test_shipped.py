"""The pages' shipped default views (app/shipped.py) and the app's caches.

The shipped results must equal a fresh computation (else: ``python scripts/make_page_assets.py``), the
pages' default views must be served from them, and every ``st.cache_data`` / ``st.cache_resource`` in
app/ must be bounded.
"""

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import shipped
from kl_core.fitting import Trajectory
from kl_core.metrics import StudentSummary
from kl_core.viz import Run

ROOT = Path(__file__).resolve().parents[1]
STALE = "stale shipped results: run python scripts/make_page_assets.py"


def assert_same(shipped_value, fresh, where: str = "result") -> None:
    """Equal structure, equal strings and flags, numbers equal to 1e-9 (a fresh fit on another machine may
    differ in the last bits; a change of the code moves them far more)."""
    if isinstance(fresh, Trajectory):
        assert isinstance(shipped_value, Trajectory), where
        for name in ("objective", "objective_params", "estimator", "gradient", "sampler", "optimizer", "seed"):
            assert getattr(shipped_value, name) == getattr(fresh, name), f"{where}.{name}: {STALE}"
        assert shipped_value.reasons == fresh.reasons, f"{where}.reasons: {STALE}"
        assert shipped_value.param_names == fresh.param_names, f"{where}.param_names: {STALE}"
        np.testing.assert_array_equal(shipped_value.dropped, fresh.dropped, err_msg=f"{where}: {STALE}")
        for name in ("params", "loss"):
            np.testing.assert_allclose(
                getattr(shipped_value, name), getattr(fresh, name), rtol=1e-9, atol=1e-12, err_msg=f"{where}: {STALE}"
            )
        assert repr(shipped_value.teacher) == repr(fresh.teacher), f"{where}.teacher: {STALE}"
    elif isinstance(fresh, (Run, StudentSummary)):
        assert type(shipped_value) is type(fresh), where
        for field in dataclasses.fields(fresh):
            assert_same(getattr(shipped_value, field.name), getattr(fresh, field.name), f"{where}.{field.name}")
    elif isinstance(fresh, dict):
        assert isinstance(shipped_value, dict) and list(shipped_value) == list(fresh), f"{where}: {STALE}"
        for key in fresh:
            assert_same(shipped_value[key], fresh[key], f"{where}[{key!r}]")
    elif isinstance(fresh, (list, tuple)):
        assert type(shipped_value) is type(fresh) and len(shipped_value) == len(fresh), f"{where}: {STALE}"
        for i, (a, b) in enumerate(zip(shipped_value, fresh)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(fresh, float) and not isinstance(fresh, bool):
        assert shipped_value == pytest.approx(fresh, rel=1e-9, abs=1e-12), f"{where}: {STALE}"
    else:
        assert shipped_value == fresh, f"{where}: {STALE}"


def test_every_default_view_is_shipped_and_equals_a_fresh_computation():
    calls = shipped.default_calls()
    results = shipped._load()
    assert sorted(results) == sorted(calls), STALE  # the pages' defaults are exactly what is shipped
    fits = {}
    for name, args in calls:
        if name == "summaries_2d":  # summarise the fits computed just above, as the page does
            fresh = shipped.model.summaries_2d(args, shipped.model.kept_runs(fits[args]))
        else:
            fresh = shipped.compute(name, args)
        if name == "lab_2d_runs":
            fits[args] = fresh
        assert_same(results[name, args], fresh, name)


def test_the_default_views_are_served_from_the_shipped_results():
    shipped.served_count.clear()
    for page in ("family.py", "lab_2d.py"):  # each page's script on its own: a first visit with an empty URL
        at = AppTest.from_file(str(ROOT / "app" / "views" / page), default_timeout=120).run()
        assert not at.exception, at.exception
    assert set(shipped.served_count) == set(shipped.NAMES)


def test_a_shipped_file_of_another_format_is_refused(tmp_path):
    path = tmp_path / "defaults.pickle"
    path.write_bytes(shipped.pickle.dumps({"format": ("something else", 1), "results": {}}))
    with pytest.raises(ValueError, match="make_page_assets"):
        shipped._load(path)
    assert shipped._load(tmp_path / "missing.pickle") == {}  # no file: everything is computed live


def _cache_calls(tree: ast.AST):
    """(line, decorator or call node) of every st.cache_data / st.cache_resource use in a module."""
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            targets = node.decorator_list
        elif isinstance(node, ast.Call):
            targets = [node]
        for target in targets:
            func = target.func if isinstance(target, ast.Call) else target
            if isinstance(func, ast.Attribute) and func.attr in ("cache_data", "cache_resource"):
                yield target


@pytest.mark.parametrize("path", sorted((ROOT / "app").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cache_in_the_app_is_bounded(path):
    """An unbounded cache keyed on user input grows with every new value a visitor tries. A cache_resource
    of a function without arguments holds one entry and needs no bound."""
    tree = ast.parse(path.read_text())
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    for target in _cache_calls(tree):
        keywords = {k.arg for k in target.keywords} if isinstance(target, ast.Call) else set()
        func = target.func if isinstance(target, ast.Call) else target
        if func.attr == "cache_resource" and "max_entries" not in keywords:
            decorated = [f for f in functions.values() if target in f.decorator_list]
            if decorated and not decorated[0].args.args:  # a singleton
                continue
        assert "max_entries" in keywords, f"{path.name}:{target.lineno}: st.{func.attr} without max_entries"
