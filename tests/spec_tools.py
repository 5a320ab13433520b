"""Reading the plotly charts an AppTest run drew: shared by the app tests (not a test module)."""

from __future__ import annotations

import base64
import json

import numpy as np
from streamlit.testing.v1 import AppTest


def figures(at: AppTest) -> list[dict]:
    """Every chart of the run, as plotly's JSON spec."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def decode(arr) -> np.ndarray:
    """A spec's array as floats: plotly's base64 typed array (``{"dtype", "bdata"}``) or a plain list."""
    if isinstance(arr, dict) and "bdata" in arr:
        return np.frombuffer(base64.b64decode(arr["bdata"]), arr["dtype"]).astype(float)
    return np.asarray(arr, dtype=float)


def traces(fig: dict, role: str, **match) -> list[dict]:
    """The traces whose ``meta`` has this role (and the given keys)."""
    return [
        t
        for t in fig["data"]
        if (t.get("meta") or {}).get("role") == role and all(t["meta"].get(k) == v for k, v in match.items())
    ]


def assert_clean(at: AppTest) -> None:
    """No exception and no error element on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


# one parameter setting per token-level kind, away from the special cases (shared by the token-loss tests)
TOKEN_KIND_PARAMS = {
    "forward_kl": {},
    "reverse_kl": {},
    "jsd": {"beta": 0.3},
    "jsd_scaled": {"beta": 0.3},
    "alpha": {"alpha": -0.5},
    "skew_forward_kl": {"alpha": 0.2},
    "skew_reverse_kl": {"alpha": 0.2},
    "tv": {},
    "akl": {"mu": 0.5},
}
