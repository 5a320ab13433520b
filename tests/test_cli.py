"""The kl-lab command: tables, JSON, and one-line errors with exit status 2."""

import json
import math
import subprocess
import sys
import time
from pathlib import Path

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


# -- hostile input (issue 11): one line naming the flag and its range, exit 2, before any work -------------

HUGE = "9" * 400


def _one_line_error(capsys, code: int) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("kl-lab: error: "), captured.err
    assert "Traceback" not in captured.err and not captured.out
    return lines[0]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["distill", "--steps", "0"], "--steps must be an integer in [1, 20000], got '0'"),
        (["export", "--frames", "0", "--format", "html"], "--frames must be an integer in [2, 200], got '0'"),
        (["fit", "--preset", "bimodal", "--objective", "forward_kl", "--mu", "0.5"],
         "--mu is not a parameter of forward_kl; the kinds that take it: akl"),
        (["fit", "--preset", "bimodal", "--alpha", "0.5"],
         "--alpha is not a parameter of reverse_kl; the kinds that take it: alpha, skew_forward_kl, skew_reverse_kl"),
        (["divergence", "--teacher", "0:1", "--student", "0:1", "--kind", "tv", "--beta", "0.5"],
         "--beta is not a parameter of tv; the kinds that take it: jsd"),
        (["divergence", "--teacher", "0:1", "--student", "0:1", "--kind", "alpha", "--alpha", "1e6"],
         "--alpha must be in [-10, 10] (a finite number), got '1e6'"),
        (["divergence", "--teacher", "0:1", "--student", "0:1", "--kind", "skew_forward_kl", "--alpha", "2"],
         "--alpha must be in [0, 1] for skew_forward_kl, got 2"),
        (["divergence", "--teacher", "0:1", "--student", "0:1", "--method", "mc", "--n", "100000000000"],
         "--n must be an integer in [2, 10000000], got '100000000000'"),
        (["divergence", "--teacher", "0:1", "--student", "0:1", "--n", "50"], "--n (Monte-Carlo samples) applies to"),
        (["divergence", "--teacher", "0:1e300", "--student", "0:1e300"], "stds must be > 0, in [0.001, 10000]"),
        (["divergence", "--teacher", "1e308:0:1,1e308:1:1", "--student", "0:1"], "weights must be in [1e-06, 1e+06]"),
        (["divergence", "--teacher", "0.5:-1e300:1,0.5:1e300:1", "--student", "0:1"], "means must be in [-10000"),
        (["divergence", "--teacher", ",".join(["1:0:1"] * 17), "--student", "0:1"], "at most 16 are allowed"),
        (["divergence", "--teacher", "0:1", "--student", "0:1", "--kind", "akl"], "discrete distributions only"),
        (["fit", "--preset", "bimodal", "--steps", "100000", "--inits", "64"],
         "the fit's work (steps x inits x grid points or samples) is 1.31e+10, over the budget of 1e+09"),
        (["fit", "--preset", "bimodal", "--estimator", "mc", "--n", "1000000", "--inits", "64"],
         "--n x --inits (samples held per step) is 6.4e+07, over the budget of 1.05e+06"),
        (["fit", "--preset", "bimodal", "--n", "100"], "--n (Monte-Carlo samples) applies to --estimator mc only"),
        (["fit", "--preset", "bimodal", "--objective", "forward_kl", "--estimator", "mc", "--gradient", "score"],
         "--gradient applies to on-policy Monte Carlo only"),
        (["fit", "--preset", "bimodal", "--teacher", "0:1"], "cannot be used with --preset"),
        (["fit", "--preset", "bimodal", "--seed", str(2**32)], "--seed must be an integer in [0, 4294967295]"),
        (["fit", "--preset", "bimodal", "--lr", "nan"], "--lr must be in (0, 10] (a finite number), got 'nan'"),
        (["fit", "--preset", "bimodal", "--steps", "1e3"], "invalid int value '1e3'; --steps must be an integer in"),
        (["distill", "--steps", "5", "--beta", "0.3"], "--beta is not a parameter of forward_kl, reverse_kl"),
        (["distill", "--methods", "sft,sft"], "--methods lists a method twice"),
        (["distill", "--steps", "20000", "--eval-every", "1"], "at most 1000: use --eval-every >= 20"),
        (["distill", "--steps", "20000", "--n-embd", "1024", "--n-layer", "16"], "over the budget of 2e+04"),
        (["distill", "--device", "tpu"], "--device must be auto, cpu, cuda or cuda:i, got 'tpu'"),
        (["distill", "--n-embd", "33"], "--n-embd must be a multiple of the 2 attention heads"),
        (["export", "--format", "html", "--beta", "0.3"], "--beta needs --objectives listing the kind"),
        (["export", "--format", "html", "--objectives", "forward_kl", "--skew", "0.3"],
         "--skew is a parameter of skew_forward_kl and skew_reverse_kl, which --objectives does not list"),
        (["export", "--format", "gif", "--frames", "200", "--width", "4096", "--height", "4096"],
         "--frames x --width x --height for gif is 3.36e+09, over the budget of 2.5e+08"),
        (["export", "--format", "json", "--steps", HUGE], "--steps must be an integer in [50, 1500], got '9999"),
    ],
)
def test_hostile_flags_are_refused_in_one_line(args, needle, tmp_path, capsys):
    start = time.perf_counter()
    code = main([*args, "--out", str(tmp_path / "x.out")] if args[0] == "export" else args)
    line = _one_line_error(capsys, code)
    assert needle in line
    # refused before the work (the MC one used to allocate 745 GiB); distill first imports torch (seconds)
    assert time.perf_counter() - start < (30.0 if args[0] == "distill" else 5.0)
    assert not list(tmp_path.iterdir())  # nothing written


def test_echoed_values_are_cut_to_about_40_characters(capsys):
    for argv in (
        ["fit", "--objective", "x" * 60_000],
        ["fit", "--steps", HUGE],
        ["divergence", "--teacher", "q" * 60_000, "--student", "0:1"],
        ["presets", "--" + "y" * 60_000],
        ["export", "--out", "z" * 60_000 + ".json"],
    ):
        line = _one_line_error(capsys, main(argv))
        assert len(line) < 300 and "x" * 41 not in line and "y" * 41 not in line, line


def test_control_characters_stay_on_one_line(capsys):
    for value in ("a\nb", "a\u2028b", "a\x85b", "a\rb"):
        line = _one_line_error(capsys, main(["fit", "--objective", value]))
        assert "invalid choice" in line


def test_values_starting_with_a_minus_are_values(capsys):
    assert main(["divergence", "--teacher", "-3:1", "--student", "0:1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["value"] == pytest.approx(4.5, rel=1e-9)  # (0 - (-3))^2 / 2
    assert main(["fit", "--preset", "bimodal", "--objective", "alpha", "--alpha", "-0.5", "--steps", "2"]) == 0


def test_outputs_that_cannot_be_written_are_refused_before_the_work(tmp_path, capsys):
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    cases = [
        (["export", "--format", "json", "--out", str(folder)], "is a directory"),
        (["export", "--format", "html", "--out", str(a_file / "x.html")], "does not exist (or is not a folder)"),
        (["export", "--format", "html", "--out", "/proc/kl-lab-test/x.html"], "does not exist (or is not a folder)"),
        (["export", "--format", "json", "--out", "/proc/kl-lab-test.json"], "--out: cannot use '/proc/kl-lab-te"),
        (["export", "--format", "json", "--out", str(tmp_path / ("n" * 300 + ".json"))], "File name too long"),
        (["export", "--scenario", str(folder), "--out", str(tmp_path / "x.json")], "--scenario: no such file"),
        (["export", "--scenario", "/proc/self/mem", "--out", str(tmp_path / "x.json")], "--scenario: cannot use"),
        (["site", str(a_file / "site")], "OUT: cannot use"),
        (["site", str(a_file)], "exists and is not a directory"),
        (["site", "/proc/kl-lab-test"], "OUT: cannot use '/proc/kl-lab-test'"),
        (["site", ""], "OUT must be a path of 1 to 4096 characters"),
    ]
    for argv, needle in cases:
        start = time.perf_counter()
        assert needle in _one_line_error(capsys, main(argv)), argv
        assert time.perf_counter() - start < 5.0, argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file.txt", "folder"]


def test_a_scenario_whose_fits_exceed_the_budget_is_refused(tmp_path, capsys):
    from kl_core.scenario import OBJECTIVES, Scenario

    heavy = Scenario(student="mixture", components=4, objectives=tuple((k, ()) for k in OBJECTIVES), steps=1500,
                     inits=16)  # fmt: skip
    saved = tmp_path / "heavy.json"
    saved.write_text(heavy.to_json())
    line = _one_line_error(capsys, main(["export", "--scenario", str(saved), "--out", str(tmp_path / "x.html")]))
    assert "the scenario's fits' work" in line and "over the budget of 1e+09" in line
    assert main(["export", "--scenario", str(saved), "--out", str(tmp_path / "ok.json")]) == 0  # no fits in JSON


def test_an_impossible_value_from_the_quadrature_is_refused(monkeypatch, capsys):
    import kl_core.cli as cli

    argv = ["divergence", "--teacher", "0:1", "--student", "1:1", "--kind", "tv"]
    monkeypatch.setattr(cli, "divergence", lambda *a, **k: 1.033)  # what 18 narrow components gave (issue 11)
    assert "tv came out as 1.033, outside its possible range [0, 1]" in _one_line_error(capsys, main(argv))
    monkeypatch.setattr(cli, "divergence", lambda *a, **k: math.nan)
    assert "tv came out as NaN" in _one_line_error(capsys, main(argv))


def test_failures_of_the_work_are_one_line_and_warnings_are_silenced(monkeypatch, capsys):
    import warnings

    import numpy as np

    import kl_core.cli as cli

    argv = ["divergence", "--teacher", "0:1", "--student", "1:1"]

    def noisy(*args, **kwargs):
        warnings.warn("numpy would print this", RuntimeWarning, stacklevel=1)
        np.float64(1e308) * 10.0  # numpy's "overflow encountered": silenced
        return 0.5

    monkeypatch.setattr(cli, "divergence", noisy)
    assert main(argv) == 0
    assert capsys.readouterr().err == ""
    for error, needle in [
        (OverflowError("int too large to convert to float"), "a number overflowed for these inputs"),
        (MemoryError(), "out of memory"),
        (np.linalg.LinAlgError("Matrix is not positive definite"), "Matrix is not positive definite"),
        (RuntimeError("x" * 10_000), "internal error (RuntimeError: xxxx"),
        (OSError(28, "No space left on device", "/tmp/x"), "cannot read or write '/tmp/x': No space left on device"),
    ]:

        def fail(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(cli, "divergence", fail)
        assert needle in _one_line_error(capsys, main(argv))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "divergence", interrupted)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C keeps Python's default behaviour
        main(argv)


def test_help_exits_0_and_argparse_errors_exit_2(capsys):
    assert main(["--help"]) == 0 and "distill" in capsys.readouterr().out
    assert "the following arguments are required" in _one_line_error(capsys, main([]))
    assert "invalid choice: 'nope'" in _one_line_error(capsys, main(["nope"]))


def test_distill_language_names_match_the_library():
    from kl_core.distill_cli import LANGUAGE_NAMES
    from kl_core.lm.languages import LANGUAGES

    assert LANGUAGE_NAMES == tuple(LANGUAGES)


def test_short_and_one_line():
    from kl_core.cli_args import one_line, short

    assert short("abc") == "'abc'" and short("x" * 100) == "'" + "x" * 40 + "…'"
    assert one_line("got " + "7" * 400) == "got " + "7" * 40 + "…"
    assert one_line("a\nb\u2028c") == "a\\nb\\u2028c"
    assert one_line("y" * 10_000) == "y" * 40 + "…"
    assert len(one_line("word " * 1000)) == 400


def test_the_readme_states_the_limits_the_code_enforces():
    from kl_core import cli, distill_cli
    from kl_core.cli_args import FIT_WORK_BUDGET
    from kl_core.viz import export_cli

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Limits of every `kl-lab` command") :][:2500]
    assert (cli.MAX_COMPONENTS, cli.MAX_SPEC_CHARS, cli.ALPHA_RANGE) == (16, 4096, (-10.0, 10.0))
    assert (cli.MEAN_LIMIT, cli.STD_RANGE, cli.WEIGHT_RANGE) == (1e4, (1e-3, 1e4), (1e-6, 1e6))
    assert f"steps ≤ {cli.FIT_STEPS_MAX:,}, inits ≤ {cli.FIT_INITS_MAX}" in section
    assert cli.FIT_SAMPLES_MAX == 10**6 and cli.FIT_SAMPLE_BUDGET == 2**20 and FIT_WORK_BUDGET == 1e9
    assert cli.MC_SAMPLES_MAX == 10**7 and cli.MC_MEMORY_BUDGET == 4 * 10**7
    assert f"`--frames` in [2, {export_cli.MAX_FRAMES}]" in section and export_cli.PIXEL_BUDGET == 2.5e8
    assert f"steps in [1, {distill_cli.STEPS_MAX:,}], at most {distill_cli.MAX_EVALUATIONS} evaluations" in section
    d = distill_cli
    assert f"batch ≤ {d.BATCH_MAX}, context ≤ {d.CONTEXT_MAX}, layers ≤ {d.LAYERS_MAX}" in section
    assert f"width ≤ {distill_cli.WIDTH_MAX}" in section and f"≤ {distill_cli.WORK_BUDGET:,} units" in section
