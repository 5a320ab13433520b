"""Checked command-line flags and work budgets for every ``kl-lab`` subcommand: ranges, short echoes, one line.

Every flag is validated at the command line, before any work starts: a bad value is refused with one
line that names the flag and its allowed range, and echoes at most ~40 characters of what was given.
The parser's own errors (unknown flag, missing argument) are one line too. :func:`fit_work` estimates
what a fit costs, so that a command can refuse work past its budget before starting it.

    >>> import argparse
    >>> p = Parser(prog="kl-lab")
    >>> _ = p.add_argument("--steps", type=integer("--steps", 0, 100))
    >>> p.parse_args(["--steps", "7"]).steps
    7
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from kl_core.distributions import Distribution, GaussianMixture

__all__ = [
    "ECHO_CHARS",
    "FIT_WORK_BUDGET",
    "Parser",
    "choice",
    "check_budget",
    "components",
    "fit_work",
    "integer",
    "number",
    "one_line",
    "out_file",
    "path_error",
    "path_text",
    "print_line",
    "probe_writable",
    "seed",
    "short",
]

ECHO_CHARS = 40  # at most this many characters of a user's value are echoed in an error
LINE_CHARS = 400  # an error line is cut to this length
MAX_INT_DIGITS = 30  # a longer integer is refused before it is parsed (no 400-digit parse, no 4300-digit limit)
SEED_MAX = 2**32 - 1
FIT_WORK_BUDGET = 1e9  # fit: steps x inits x cost of one step, in ~5-30 ns units (measured): ~5-30 s of one core
_LONG_DIGITS = re.compile(r"\d{%d,}" % (ECHO_CHARS + 1))  # noqa: UP031 - braces
_LONG_WORD = re.compile(r"[^\s']{%d,}" % (2 * ECHO_CHARS))  # noqa: UP031
_LONG_QUOTED = re.compile(r"'([^'\n]{%d,})'" % (ECHO_CHARS + 1))  # noqa: UP031


def short(value: Any, limit: int = ECHO_CHARS) -> str:
    """``repr`` of ``value`` cut to ``limit`` characters (then "…"); newlines and control characters escaped.

    >>> short("x" * 100, 5)
    "'xxxxx…'"
    """
    text = value if isinstance(value, str) else str(value)
    cut = text[:limit]
    return repr(cut)[:-1] + "…" + repr(cut)[-1] if len(text) > limit else repr(cut)


def one_line(message: str) -> str:
    """``message`` as one printable line: control characters escaped; long quoted values, digit runs and
    words cut to ~40 characters; the whole cut to :data:`LINE_CHARS`."""
    message = _LONG_DIGITS.sub(lambda m: m.group(0)[:ECHO_CHARS] + "…", message)
    message = _LONG_QUOTED.sub(lambda m: "'" + m.group(1)[:ECHO_CHARS] + "…'", message)
    message = _LONG_WORD.sub(lambda m: m.group(0)[:ECHO_CHARS] + "…", message)  # argparse echoes unknown flags bare
    message = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in message)
    return message if len(message) <= LINE_CHARS else message[: LINE_CHARS - 1] + "…"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line ``kl-lab: error: ...`` on stderr, exit status 2.

    A value that starts with a minus and a digit (``--teacher -3:1``, ``--alpha -2e0``) is a value, not an
    unknown option: no ``kl-lab`` flag starts that way.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")  # argparse's own: only plain "-3" or "-.5"

    def error(self, message: str) -> NoReturn:
        # "argument --steps: --steps must be ..." (a type's message names its flag) -> "--steps must be ..."
        message = re.sub(r"^argument ([^:]+): (\1 )", r"\2", message)
        self.exit(2, f"kl-lab: error: {one_line(message)}\n")


def _range(low: float, high: float, low_open: bool = False, high_open: bool = False) -> str:
    return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def integer(flag: str, low: int, high: int, *, check_range: bool = True):
    """An argparse ``type``: an integer in [low, high] (digits only: no "1e3", no 400-digit numbers).

    ``check_range=False`` parses only (the range is then checked later, e.g. by a Scenario, whose message
    names the field); the message for an unparsable value still gives the range.
    """
    allowed = f"an integer in [{low}, {high}]"

    def parse(text: str) -> int:
        body = text.strip()
        digits = body[1:] if body[:1] in "+-" else body
        if not (digits.isascii() and digits.isdigit()):
            raise argparse.ArgumentTypeError(f"invalid int value {short(text)}; {flag} must be {allowed}")
        if len(digits) > MAX_INT_DIGITS or (check_range and not low <= int(body) <= high):
            raise argparse.ArgumentTypeError(f"{flag} must be {allowed}, got {short(text)}")
        return int(body)

    parse.__name__ = flag  # argparse names the type in some messages
    return parse


def number(flag: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False,
           check_range: bool = True):  # fmt: skip
    """An argparse ``type``: a finite number in the given closed or open range (``check_range``: as
    :func:`integer`; a NaN or an infinity is refused either way)."""
    interval = _range(low, high, low_open, high_open)

    def parse(text: str) -> float:
        try:
            value = float(text) if len(text) <= 64 else math.nan  # no 60 KB float() parses
        except ValueError:
            message = f"invalid float value {short(text)}; {flag} must be a number in {interval}"
            raise argparse.ArgumentTypeError(message) from None
        ok_low = value > low if low_open else value >= low
        ok_high = value < high if high_open else value <= high
        if not math.isfinite(value) or (check_range and not (ok_low and ok_high)):
            raise argparse.ArgumentTypeError(f"{flag} must be in {interval} (a finite number), got {short(text)}")
        return value

    parse.__name__ = flag
    return parse


def seed(flag: str = "--seed"):
    """An argparse ``type``: a seed, an integer in [0, 2**32 - 1]."""
    return integer(flag, 0, SEED_MAX)


def choice(flag: str, options: Sequence[str]):
    """An argparse ``type``: one of ``options`` (the error lists them and echoes a short value)."""
    options = tuple(options)

    def parse(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(f"invalid choice: {short(text)} (choose from {', '.join(options)})")
        return text

    parse.__name__ = flag
    return parse


def path_text(flag: str):
    """An argparse ``type``: a file-system path (non-empty, no NUL byte, at most 4096 characters)."""

    def parse(text: str) -> str:
        if not text.strip() or "\0" in text or len(text) > 4096:
            message = f"{flag} must be a path of 1 to 4096 characters, no NUL byte, got {short(text)}"
            raise argparse.ArgumentTypeError(message)
        return text

    parse.__name__ = flag
    return parse


def check_budget(what: str, work: float, budget: float, hint: str) -> None:
    """ValueError when ``work`` exceeds ``budget``; the message gives both and how to get under it."""
    if not work <= budget:
        raise ValueError(f"{what} is {work:.3g}, over the budget of {budget:.3g}; {hint}")


def path_error(flag: str, path: Any, err: OSError) -> ValueError:
    """The one-line error for an OSError on ``path`` given by ``flag`` (no path echoed past ~40 characters)."""
    return ValueError(f"{flag}: cannot use {short(str(path))}: {err.strerror or type(err).__name__}")


def out_file(flag: str, path: str) -> Path:
    """``path`` as a file to write: refused (ValueError naming ``flag``) when it is a directory or its folder
    is missing or not a folder."""
    out = Path(path)
    try:
        if out.is_dir():
            raise ValueError(f"{flag} {short(path)} is a directory; give a file name")
        if not out.parent.is_dir():
            raise ValueError(f"{flag}: the folder {short(str(out.parent))} does not exist (or is not a folder)")
    except OSError as err:  # e.g. a name too long for the file system
        raise path_error(flag, path, err) from None
    return out


def probe_writable(flag: str, path: Path) -> None:
    """ValueError naming ``flag`` unless ``path`` can be opened for writing (checked before the work, then
    the probe is removed again if it created the file)."""
    try:
        existed = path.exists()
        with open(path, "ab"):
            pass
        if not existed:
            os.unlink(path)
    except OSError as err:
        raise path_error(flag, path, err) from None


def print_line(text: str, stream: Any = None) -> None:
    """Print ``text`` even where the stream cannot encode it (a path with undecodable bytes)."""
    stream = sys.stdout if stream is None else stream
    try:
        print(text, file=stream)
    except UnicodeEncodeError:
        print(text.encode("utf-8", "backslashreplace").decode("utf-8"), file=stream)


def components(d: Distribution) -> int:
    """Mixture components of ``d`` (1 for a Gaussian or a table)."""
    return int(getattr(d, "n_components", 1))


def _grid_points(teacher: Distribution, student: Distribution) -> int:
    """An estimate of the exact fit's grid size, as ``fit`` sizes it (its default and cap per axis; finer
    for a narrow teacher over a wide box) or the table size of a discrete teacher."""
    if teacher.is_discrete:
        return int(np.prod(teacher.shape))
    _, mt, ct = teacher.components()  # (K, d), (K, d, d)
    _, ms, cs = student.components()
    d = mt.shape[1]
    sd_t = np.sqrt(np.diagonal(ct, axis1=1, axis2=2))
    sd_s = np.sqrt(np.diagonal(cs, axis1=1, axis2=2))
    mean = np.atleast_1d(np.asarray(teacher.mean, float))
    spread = np.sqrt(np.atleast_1d(np.diag(np.atleast_2d(teacher.cov))))
    low = np.min([(mt - 6 * sd_t).min(0), mean - 7 * spread, (ms - 8 * sd_s).min(0)], axis=0)
    high = np.max([(mt + 6 * sd_t).max(0), mean + 7 * spread, (ms + 8 * sd_s).max(0)], axis=0)
    finest = (1.0 / np.sqrt(np.diagonal(np.linalg.inv(ct), axis1=1, axis2=2))).min(0)
    default, cap, per_std = (2048, 20_000, 4.0) if d == 1 else (128, 400, 2.0)
    needed = np.ceil((high - low) * per_std / finest) + 1
    return int(np.prod(np.clip(needed, default, cap)))


def fit_work(teacher: Distribution, student: Distribution, steps: int, inits: int, estimator: str, n: int) -> float:
    """The fit's work in ~5-30 ns units (measured on one core): steps x starts x (grid points, plus 8 x samples
    x components for Monte Carlo), x 2 per component of a mixture student (its gradient is dearer), x 2 in 2-D.
    """
    per_point = 2 * components(student) if isinstance(student, GaussianMixture) else 1
    per_point *= 2 if not student.is_discrete and student.dim == 2 else 1
    per_step = _grid_points(teacher, student) * per_point
    if estimator == "mc":
        per_step += 8 * n * (components(teacher) + components(student)) * min(per_point, 2)
    return float(steps) * inits * per_step
