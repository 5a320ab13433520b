"""A seeded fuzzer over every kl-lab subcommand: exit 0, or exit 2 with one line on stderr; never a traceback.

Each case takes a subcommand's cheap valid flags and replaces one or two of them with a hostile value
(huge and tiny numbers, NaN/inf, 400-digit integers, unicode, empty strings, Markdown/HTML, 10 k-character
values, paths that are folders, under a file or unwritable, unknown flags). The valid flags keep any
accepted case cheap (a few fit steps, a JSON export, one distillation step), so a case that is accepted
runs for real and its output is checked too (no NaN). Most cases run in-process through
``kl_core.cli.main``; a handful run the real entry point, ``python -m kl_core.cli``, in a subprocess.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kl_core.cli import main

REPO = Path(__file__).resolve().parents[1]
SECONDS_PER_CASE = 15.0  # generous: the shared CI machine is noisy; a refusal takes milliseconds

HUGE_DIGITS = "9" * 400
NUMBERS = ["1e400", "-1e400", "1e-400", "1e308", "-1e308", "5e-324", HUGE_DIGITS, "-" + HUGE_DIGITS, "nan",
           "-nan", "inf", "-inf", "0", "-0", "-1", "2.5", "1_0", "0x10", "1e3", " 7 ", "+3", "٣"]  # fmt: skip
TEXTS = ["", " ", "π", "é" * 10_000, "x" * 10_000, "\u2028", "line\nbreak", "tab\there", "**bold**",
         "<img src=x onerror=alert(1)>", "[Log in](http://evil.example/login)", "![px](http://h/p.png)",
         "'; DROP TABLE x; --", "%s%n", "{0}", "\\", "--", "-", "-3:1", "😀", "\udcff"]  # fmt: skip
SPECS = ["0:1", "-3:1", "0.5:-3:1,0.5:3:1", "1:2:3:4", "a:b", "0:0", "0:-1", "0:1e-300", "0:1e300",
         "1e300:1", "nan:1", "inf:1", "0:1,", ",,,", "1:0:1," * 40, "1e308:0:1,1e308:1:1", "0.5:-1e300:1,0.5:1e300:1",
         "0:" + HUGE_DIGITS, ":".join(["1"] * 3000), "1:0:1e-3,1:1e4:1e4"]  # fmt: skip
UNKNOWN_FLAGS = [["--bogus"], ["--bogus", "1"], ["--ste", "5"], ["-x"], ["--" + "y" * 5000], ["--json=1"]]
# the losses the identify cases probe: one real (forward KL, batchmean), the others fail in the ways a user's can
LOSSES = """
import torch


def forward(student_logits, teacher_logits):
    t = teacher_logits.log_softmax(-1)
    return (t.exp() * (t - student_logits.log_softmax(-1))).sum() / student_logits.shape[0]


def boom(student_logits, teacher_logits):
    raise RuntimeError("the user's own error")


def nan(student_logits, teacher_logits):
    return (student_logits * float("nan")).sum()


def vector(student_logits, teacher_logits):
    return student_logits.sum(-1)
"""
PATHS = "paths"  # a marker: the value comes from the tmp_path-based hostile paths below


def hostile_paths(tmp: Path, folders: bool = True) -> list[str]:
    """Paths that cannot be written (as root, so no permission bits): under a regular file, in /proc or /sys,
    a name too long, empty, a NUL byte; with ``folders``, also a folder and a missing folder (which ``site``
    would create, so they are left out of its pool: building the site takes seconds)."""
    folder = tmp / "a_folder"
    folder.mkdir(exist_ok=True)
    a_file = tmp / "a_file.txt"
    a_file.write_text("x")
    paths = [str(a_file), str(a_file / "under.json"), "/proc/kl-lab-fuzz/x.json", str(tmp / ("n" * 300 + ".json")),
             "", " ", "x\0y.json", "/sys/kl-lab-fuzz.json"]  # fmt: skip
    return paths + ([str(folder), str(tmp / "missing" / "deeper" / "x.json")] if folders else [])


# subcommand -> (cheap valid flags, {flag: pool of hostile values})
def commands(tmp: Path) -> dict[str, tuple[list[str], dict[str, list]]]:
    out = str(tmp / "ok.json")
    kinds = ["forward_kl", "reverse_kl", "jsd", "alpha", "tv", "akl", "skew_forward_kl"]
    return {
        "fit": (
            ["--teacher", "0.5:-3:1,0.5:3:1", "--steps", "5", "--inits", "2"],
            {
                "--teacher": SPECS + TEXTS,
                "--student": SPECS + TEXTS,
                "--preset": ["bimodal", "city_tokens", "ring", "nope", *TEXTS],
                "--objective": kinds + TEXTS,
                "--steps": NUMBERS + ["100000"],
                "--inits": NUMBERS + ["64", "65"],
                "--lr": NUMBERS + ["10", "10.0001"],
                "--estimator": ["mc", "exact", *TEXTS],
                "--gradient": ["score", "pathwise", *TEXTS],
                "--n": NUMBERS + ["1000000"],
                "--beta": NUMBERS,
                "--alpha": NUMBERS + ["1e6", "-10", "10"],
                "--mu": NUMBERS,
                "--seed": NUMBERS + [str(2**32), str(2**32 - 1)],
            },
        ),
        "divergence": (
            ["--teacher", "0.5:-3:1,0.5:3:1", "--student", "0:1"],
            {
                "--teacher": SPECS + TEXTS,
                "--student": SPECS + TEXTS,
                "--kind": kinds + TEXTS,
                "--method": ["mc", "exact", *TEXTS],
                "--n": NUMBERS + ["100000000000", "10000001", "2"],
                "--beta": NUMBERS,
                "--alpha": NUMBERS + ["1e6", "-10"],
                "--mu": NUMBERS,
                "--seed": NUMBERS,
            },
        ),
        "presets": ([], {"--json": [[]]}),
        "export": (
            ["--format", "json", "--out", out],
            {
                "--out": [PATHS],
                "--format": ["json", "xyz", *TEXTS],
                "--preset": ["ring", "city_tokens", *TEXTS],
                "--scenario": [PATHS, "/proc/self/mem", "/dev/zero", str(tmp / "bad.json"), *TEXTS],
                "--objectives": ["forward_kl,magic", "jsd,jsd", ",".join(["tv"] * 5000), *TEXTS],
                "--beta": NUMBERS,
                "--alpha": NUMBERS,
                "--skew": NUMBERS,
                "--steps": NUMBERS + ["49", "1501"],
                "--inits": NUMBERS + ["17"],
                "--lr": NUMBERS,
                "--seed": NUMBERS,
                "--frames": NUMBERS + ["1", "201"],
                "--fps": NUMBERS + ["0.4", "61"],
                "--width": NUMBERS + ["15", "4097"],
                "--height": NUMBERS + ["15"],
            },
        ),
        "site": ([], {"OUT": [PATHS]}),
        # FN, the positional MODULE:FUNCTION (always given: a valid one unless the case draws a hostile one)
        "identify": (
            [],
            {
                "FN": [f"{tmp / 'losses.py'}:{name}" for name in ("forward", "boom", "nan", "vector", "missing")]
                + [f"{tmp / 'broken.py'}:f", f"{tmp / 'a_file.txt'}/x.py:f", "no_such_module_kl:f", "math:sqrt",
                   "math", ":", *TEXTS],  # fmt: skip
                "--args-order": ["teacher,student", "student,teacher", "student", *TEXTS],
                "--sampled": [[]],
                "--vocab": NUMBERS + ["1", "2", "100000"],
                "--shape": ["2,3", "0", "1,1", "100000,100000", "-1,2", *TEXTS],
                "--seed": NUMBERS,
                "--draws": NUMBERS + ["1", "10000000"],
                "--json": [[]],
            },
        ),
        "distill": (
            ["--steps", "1", "--eval-every", "1", "--methods", "sft", "--device", "cpu"],
            {
                "--language": ["klingon", *TEXTS],
                "--methods": ["ppo", "sft,sft", "gkd,", ",", "x" * 10_000, *TEXTS],
                "--steps": NUMBERS + ["20001"],
                "--lr": NUMBERS + ["1.5"],
                "--batch-size": NUMBERS + ["4097"],
                "--eval-every": NUMBERS,
                "--seed": NUMBERS,
                "--device": ["tpu", "cuda:999", "cuda:-1", "cpu:0", *TEXTS],
                "--threads": NUMBERS + ["257"],
                "--context": NUMBERS + ["65"],
                "--n-layer": NUMBERS + ["17"],
                "--n-embd": NUMBERS + ["33", "1025"],
                "--beta": NUMBERS,
                "--alpha": NUMBERS,
                "--lam": NUMBERS,
            },
        ),
    }


def cases(tmp: Path, n: int, seed: int = 0) -> list[list[str]]:
    """``n`` seeded argument lists over every subcommand."""
    rng = random.Random(seed)
    table = commands(tmp)
    paths = hostile_paths(tmp)
    site_paths = hostile_paths(tmp, folders=False)
    (tmp / "bad.json").write_text('{"version": 1, "training": {"steps": 1e400}}')
    weights = {"fit": 4, "divergence": 4, "presets": 1, "export": 4, "site": 1, "distill": 2, "identify": 2}
    (tmp / "losses.py").write_text(LOSSES)
    (tmp / "broken.py").write_text("def f(:\n")
    names = list(weights)
    out = []
    # every flag of every subcommand once (so coverage does not hang on the draw), then seeded draws
    drawn = [(name, [flag]) for name in names for flag in table[name][1]]
    while len(drawn) < n:
        name = rng.choices(names, [weights[k] for k in names])[0]
        drawn.append((name, rng.sample(list(table[name][1]), k=min(len(table[name][1]), rng.choice([1, 1, 2])))))
    for name, flags in drawn[:n]:
        base, pools = table[name]
        argv = [name, *base]
        for flag in flags:
            value = rng.choice(pools[flag])
            if value == PATHS:
                value = rng.choice(site_paths if name == "site" else paths)
            values = value if isinstance(value, list) else [value]
            if flag in ("OUT", "FN"):
                argv += values
            elif rng.random() < 0.2 and values:
                argv.append(f"{flag}={values[0]}")  # the --flag=value spelling
            else:
                argv += [flag, *values]
        if rng.random() < 0.1:
            argv += rng.choice(UNKNOWN_FLAGS)
        if name == "site" and len(argv) == 1:
            argv.append(rng.choice(site_paths))
        if name == "identify" and not any(":" in a and not a.startswith("--") for a in argv[1:]):
            argv.append(f"{tmp / 'losses.py'}:forward")
        out.append(argv)
    return out


def check_outcome(argv: list[str], code: int, out: str, err: str, seconds: float) -> None:
    """The contract: 0 and some output, or 2 and exactly one line ``kl-lab: error: ...``; nothing else."""
    shown = [a[:40] for a in argv]
    assert "Traceback" not in out + err, (shown, err[-2000:])
    assert "Warning" not in err, (shown, err[:500])  # numpy / torch warnings are silenced around the work
    assert seconds < SECONDS_PER_CASE, (shown, seconds)
    if code == 0:
        assert out.strip() and not err.strip(), (shown, err[:500])
        assert not re.search(r"\bnan\b", out, re.IGNORECASE), (shown, out[:500])  # never a NaN printed
    else:
        assert code == 2, (shown, code, err[:500])
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("kl-lab: error: "), (shown, err[:1000])
        assert len(lines[0]) <= 420, (shown, len(lines[0]))  # values echoed short (~40 characters)
        assert HUGE_DIGITS[:60] not in lines[0] and "x" * 60 not in lines[0] and "é" * 60 not in lines[0]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative path a case writes lands here
    return tmp_path


N_CASES = 420


CHUNKS = 6  # the cases run in a few tests, so that a failure points at a smaller batch


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_fuzz_in_process(chunk, in_tmp, capsys, torch_one_thread):
    codes = []
    for argv in cases(in_tmp, N_CASES)[chunk::CHUNKS]:
        start = time.perf_counter()
        code = main(argv)
        seconds = time.perf_counter() - start
        captured = capsys.readouterr()
        check_outcome(argv, code, captured.out, captured.err, seconds)
        codes.append(code)
    # the fuzzer reaches both outcomes: refusals, and hostile values that are in fact valid (and run)
    assert codes.count(2) > len(codes) // 2 and 0 in codes


def test_fuzz_covers_every_subcommand(tmp_path):
    from kl_core.cli import _parser

    _, handlers = _parser()
    all_cases = cases(tmp_path, N_CASES)
    assert {argv[0] for argv in all_cases} == set(handlers)
    for name in handlers:  # every flag of every subcommand is fuzzed at least once
        _, pools = commands(tmp_path)[name]
        fuzzed = {a.split("=")[0] for argv in all_cases if argv[0] == name for a in argv if a.startswith("--")}
        assert set(pools) - {"OUT", "FN"} <= fuzzed, (name, set(pools) - fuzzed)


# -- the real entry point: a subprocess each (a few; each pays the interpreter's start-up) ----------------


def run(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "default"}  # warnings would show, if any
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kl_core.cli", *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)  # fmt: skip
    return proc, time.perf_counter() - start


def test_real_entry_point(tmp_path):
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    refused = [
        ["divergence", "--teacher", "0:1", "--student", "0:1", "--method", "mc", "--n", "100000000000"],
        ["divergence", "--teacher", "0:1e300", "--student", "0:1e300", "--kind", "reverse_kl"],
        ["export", "--format", "json", "--out", str(tmp_path)],
        ["export", "--format", "json", "--out", str(tmp_path / "x.json"), "--steps", HUGE_DIGITS],
        ["site", str(a_file / "site")],
        ["fit", "--preset", "bimodal", "--steps", "100000", "--inits", "64"],
        ["distill", "--steps", "0"],
        ["--bogus"],
        [],
    ]
    for argv in refused:
        proc, seconds = run(*argv, cwd=tmp_path)
        check_outcome(argv, proc.returncode, proc.stdout, proc.stderr, seconds)
        assert proc.returncode == 2, (argv, proc.stderr)
    proc, seconds = run("divergence", "--teacher", "-3:1", "--student", "0:1", "--json", cwd=tmp_path)
    check_outcome(["divergence"], proc.returncode, proc.stdout, proc.stderr, seconds)
    assert proc.returncode == 0 and '"value": 4.5' in proc.stdout  # KL(N(-3,1) || N(0,1)) = 9/2
    proc, _ = run("--help", cwd=tmp_path)
    assert proc.returncode == 0 and all(c in proc.stdout for c in ("fit", "divergence", "export", "site", "distill"))
