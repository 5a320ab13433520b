"""One colour per role (Okabe–Ito, colour-blind safe) and the human labels of every divergence kind.

A colour means one thing everywhere in KL Lab: the teacher is always grey, a forward-KL student
always blue, a reverse-KL student always vermillion, in the app, the exports and the README.
"""

from __future__ import annotations

from typing import Any

from kl_core.divergences import resolve

__all__ = ["ROLE_COLORS", "color_for", "label_for", "rgba", "mix"]

# Okabe & Ito (2008), "Color Universal Design", plus two of Paul Tol's muted colours (tv, akl)
# for the kinds beyond Okabe–Ito's seven hues; none is pure black or white, so every colour
# reads on both light and dark backgrounds.
ROLE_COLORS: dict[str, str] = {
    "teacher": "#999999",
    "forward_kl": "#0072B2",
    "reverse_kl": "#D55E00",
    "jsd": "#009E73",
    "jsd_scaled": "#44AA99",
    "alpha": "#CC79A7",
    "skew_forward_kl": "#56B4E9",
    "skew_reverse_kl": "#E69F00",
    "tv": "#882255",
    "akl": "#117733",
}

# how each parameter is written in a label
_SYMBOLS = {"beta": "β", "alpha": "α", "mu": "μ"}
_NAMES = {
    "forward_kl": "forward KL",
    "reverse_kl": "reverse KL",
    "jsd": "JSD",
    "jsd_scaled": "scaled JSD",
    "alpha": "α-divergence",
    "skew_forward_kl": "skew forward KL",
    "skew_reverse_kl": "skew reverse KL",
    "tv": "total variation",
    "akl": "AKL",
}


def color_for(kind: str) -> str:
    """The hex colour of a role: ``"teacher"`` or a divergence kind.

    Examples:
        >>> color_for("reverse_kl")
        '#D55E00'
    """
    if kind not in ROLE_COLORS:
        raise ValueError(f"unknown role {kind!r}; valid roles: {', '.join(ROLE_COLORS)}")
    return ROLE_COLORS[kind]


def label_for(kind: str, params: dict[str, Any] | None = None) -> str:
    """A human label for a divergence kind with its parameters (defaults filled in).

    Examples:
        >>> label_for("jsd", {})
        'JSD (β=0.5)'
        >>> label_for("skew_reverse_kl", {"alpha": 0.1})
        'skew reverse KL (α=0.1)'
    """
    _, par = resolve(kind, dict(params or {}))
    if not par:
        return _NAMES[kind]
    values = ", ".join(f"{_SYMBOLS.get(name, name)}={value:g}" for name, value in par.items())
    return f"{_NAMES[kind]} ({values})"


def _channels(hex_color: str) -> tuple[int, int, int]:
    """(r, g, b) of ``#RRGGBB`` or ``#RGB``."""
    h = hex_color.lstrip("#") if isinstance(hex_color, str) and hex_color.startswith("#") else ""
    if len(h) == 3:
        h = "".join(c + c for c in h)
    try:
        if len(h) != 6:
            raise ValueError
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    except ValueError:
        raise ValueError(f"colour must be '#RRGGBB' or '#RGB', got {hex_color!r}") from None


def rgba(hex_color: str, alpha: float) -> str:
    """The CSS ``rgba(...)`` string of a hex colour at opacity ``alpha`` in [0, 1].

    Examples:
        >>> rgba("#0072B2", 0.25)
        'rgba(0,114,178,0.25)'
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    r, g, b = _channels(hex_color)
    return f"rgba({r},{g},{b},{alpha:g})"


def mix(start: str, end: str, t: float) -> str:
    """The hex colour a fraction ``t`` in [0, 1] of the way from ``start`` to ``end`` (linear in sRGB).

    Examples:
        >>> mix("#0072B2", "#D55E00", 0.0)
        '#0072B2'
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t!r}")
    a, b = _channels(start), _channels(end)
    return "#" + "".join(f"{round(x + (y - x) * t):02X}" for x, y in zip(a, b))
