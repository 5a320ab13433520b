"""The ``kl-lab identify`` command: which KL does a loss function compute?

    kl-lab identify MODULE:FUNCTION [--args-order teacher,student|student,teacher] [--sampled] [--json]
    kl-lab identify path/to/losses.py:my_loss --json

Imports the user's function (a module on the Python path, or a ``.py`` file) and prints the verdict of
``kl_core.identification.identify``, or its fields as JSON. This runs the user's own code, on the user's
machine; the app never does. Any failure (no such module or function, not callable, the function raises
or returns a non-scalar or NaN) is one line ``kl-lab: error: ...`` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "load_function"]


def load_function(spec: str) -> Any:
    """``"package.module:function"`` or ``"path/to/file.py:function"`` -> the callable (ValueError otherwise)."""
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise ValueError(f"expected MODULE:FUNCTION or path/to/file.py:FUNCTION, got {spec!r}")
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        path = Path(module_part)
        if not path.is_file():
            raise ValueError(f"no such file: {module_part}")
        name = f"_kl_lab_identify_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ValueError(f"cannot import {module_part} as a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            with _on_path(str(path.resolve().parent)):  # the file may import its neighbours
                module_spec.loader.exec_module(module)
        except Exception as err:  # the user's code
            raise ValueError(f"importing {module_part} raised {type(err).__name__}: {err}") from None
    else:
        try:
            with _on_path(os.getcwd()):  # as `python -m` does: the console script has no cwd on sys.path
                module = importlib.import_module(module_part)
        except ModuleNotFoundError as err:
            raise ValueError(f"no module named {err.name!r} (importing {module_part})") from None
        except Exception as err:  # the user's code
            raise ValueError(f"importing {module_part} raised {type(err).__name__}: {err}") from None
    obj: Any = module
    for part in attr.split("."):  # Class.method, e.g. GKDTrainer.generalized_jsd_loss
        if not hasattr(obj, part):
            raise ValueError(f"{module_part} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{module_part}:{attr} is not callable (it is a {type(obj).__name__})")
    return obj


@contextlib.contextmanager
def _on_path(folder: str) -> Iterator[None]:
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def _cmd_identify(args: argparse.Namespace) -> str:
    from kl_core.identification import identify

    fn = load_function(args.function)
    result = identify(
        fn,
        vocab=args.vocab,
        shape=tuple(args.shape),
        seed=args.seed,
        args_order=args.args_order,
        sampled=args.sampled,
        draws=args.draws,
    )
    if args.json:
        return json.dumps({"function": args.function, **result.as_dict()}, indent=2, ensure_ascii=False)
    return f"{args.function}\n{result.verdict}"


def _shape(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers like 2,3, got {text!r}") from None


def add_commands(sub: Any) -> dict[str, Any]:
    """Add ``identify`` to the ``kl-lab`` subparsers; returns {command: handler}."""
    p = sub.add_parser("identify", help="which KL does a loss function compute? (runs your code)")
    p.add_argument("function", help="MODULE:FUNCTION or path/to/file.py:FUNCTION")
    p.add_argument(
        "--args-order",
        choices=("student,teacher", "teacher,student"),
        help="the order of the function's two logits arguments (default: from their names, else student first)",
    )
    p.add_argument(
        "--sampled",
        action="store_true",
        help="a sampled estimate: FUNCTION(student_logits, teacher_logits, tokens), tokens drawn from the student",
    )
    p.add_argument("--vocab", type=int, default=8, help="vocabulary size of the probe logits (default 8)")
    p.add_argument("--shape", type=_shape, default=[2, 3], help="leading shape of the probe logits (default 2,3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draws", type=int, default=1000, help="Monte-Carlo draws per probe with --sampled")
    p.add_argument("--json", action="store_true", help="print the result's fields as JSON")
    return {"identify": _cmd_identify}
