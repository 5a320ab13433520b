"""The kl-lab command: tables, JSON, and one-line errors with exit status 2."""

import json
import math
import subprocess
import sys

import pytest

from kl_core.cli import main, parse_mixture


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kl_core.cli", *args], capture_output=True, text=True, timeout=120)


def test_fit_json_reports_the_reverse_kl_optima(capsys):
    assert (
        main(["fit", "--preset", "bimodal", "--objective", "reverse_kl", "--inits", "8", "--seed", "0", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["objective"] == "reverse_kl" and len(out["students"]) == 8
    on_mode = [s for s in out["students"] if s["n_modes_covered"] == 1]
    assert on_mode
    for s in on_mode:
        assert abs(s["mean"]) == pytest.approx(2.984, abs=1e-3) and s["reverse_kl"] == pytest.approx(0.6888, abs=1e-4)


def test_fit_table_and_custom_teacher(capsys):
    assert (
        main(
            [
                "fit",
                "--teacher",
                "0.5:-3:1,0.5:3:1",
                "--student",
                "1:1",
                "--objective",
                "forward_kl",
                "--steps",
                "600",
                "--lr",
                "0.1",
                "--inits",
                "2",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "forward_kl fit, 600 steps, 2 starts" in text and "3.1623" in text and "0.4620" in text


def test_divergence_exact_and_mc(capsys):
    assert main(["divergence", "--teacher", "0:1", "--student", "1:2", "--kind", "forward_kl"]) == 0
    assert float(capsys.readouterr().out.split("=")[1]) == pytest.approx(math.log(2) - 0.25, rel=1e-9)
    assert (
        main(
            [
                "divergence",
                "--teacher",
                "0.5:-3:1,0.5:3:1",
                "--student",
                "0:1",
                "--kind",
                "jsd",
                "--beta",
                "0.5",
                "--method",
                "mc",
                "--n",
                "20000",
                "--seed",
                "1",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "mc" and out["stderr"] > 0 and out["n"] == 20000


def test_presets_listing(capsys):
    assert main(["presets", "--json"]) == 0
    names = [p["name"] for p in json.loads(capsys.readouterr().out)]
    assert "bimodal" in names and "city_tokens" in names


@pytest.mark.parametrize(
    "args,needle",
    [
        (["fit", "--preset", "nope"], "invalid choice"),
        (["fit", "--inits", "abc"], "invalid int value"),
        (["fit", "--preset", "bimodal", "--inits", "0"], "inits must be"),
        (["fit", "--preset", "bimodal", "--objective", "jsd", "--beta", "2"], "beta must be in"),
        (["divergence", "--teacher", "0.5:-3:-1", "--student", "0:1"], "stds must be > 0"),
        (["divergence", "--teacher", "a:b", "--student", "0:1"], "--teacher must hold numbers"),
        (["divergence", "--teacher", "1:2:3:4", "--student", "0:1"], "weight:mean:std"),
        (["fit"], "needs --preset or --teacher"),
        (["--bogus"], "error"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle):
    proc = run(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kl-lab: error:") and needle in lines[0]
    assert "Traceback" not in proc.stderr


def test_parse_mixture():
    g = parse_mixture("0:2", "x")
    assert (g.mean, g.std) == (0.0, 2.0)
    m = parse_mixture("1:-3:1, 3:3:0.5", "x")
    assert m.weights.tolist() == [0.25, 0.75]
