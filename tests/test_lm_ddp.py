"""Data parallel distillation: 2 CPU processes (torchrun, gloo) train the same student as 1 process."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_command() -> list[str]:
    """The torchrun command of the README's "More than one process" section."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### More than one process") :]
    line = next(ln for ln in section.splitlines() if ln.startswith("OMP_NUM_THREADS=1 torchrun "))
    return shlex.split(line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=240)


def with_out(args: list[str], out: Path) -> list[str]:
    i = args.index("--out")
    return [*args[: i + 1], str(out), *args[i + 2 :]]


def launch(cmd: list[str], nproc: int) -> list[str]:
    """``cmd`` (``OMP_NUM_THREADS=1 torchrun ... -m kl_core.lm ARGS``) with this Python's launcher on a free port."""
    assert cmd[:2] == ["OMP_NUM_THREADS=1", "torchrun"], cmd
    rest = cmd[2:]
    i = rest.index("--master-port")
    rest = [*rest[: i + 1], str(free_port()), *rest[i + 2 :]]
    j = rest.index("--nproc-per-node")
    rest[j + 1] = str(nproc)
    return [sys.executable, "-m", "torch.distributed.run", *rest]


def states(folder: Path, methods: list[str]) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for m in methods:
        with np.load(folder / f"{m}.npz") as z:
            out[m] = {k: z[k] for k in z.files if k != "__config__"}
    return out


def test_two_processes_train_the_one_process_student(tmp_path):
    cmd = readme_command()
    args = cmd[cmd.index("kl_core.lm") + 1 :]
    assert "--shards" in args and "--nproc-per-node" in cmd
    methods = args[args.index("--methods") + 1].split(",")
    two = run(launch(with_out(cmd, tmp_path / "two"), 2))
    assert two.returncode == 0, two.stderr[-2000:]
    one = run([sys.executable, "-m", "kl_core.lm", *with_out(args, tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-2000:]
    a, b = states(tmp_path / "one", methods), states(tmp_path / "two", methods)
    for m in methods:
        assert a[m].keys() == b[m].keys()
        for k in a[m]:
            np.testing.assert_allclose(b[m][k], a[m][k], atol=1e-5, rtol=0, err_msg=f"{m} {k}")

    # the printed table (rank 0 only) is the same, but for timing columns
    def table(text: str) -> list[str]:
        return [re.sub(r"\s+\S+\s+\S+$", "", ln) for ln in text.splitlines()[3:5]]

    assert table(two.stdout) == table(one.stdout) and two.stdout.count("saved ") == len(methods)
    # training moved the student away from its initialisation (the comparison could fail)
    import json

    from kl_core.lm.model import LMConfig, TinyLM

    with np.load(tmp_path / "one" / f"{methods[0]}.npz") as z:
        config = LMConfig(**json.loads(str(z["__config__"])))
    seed = int(args[args.index("--seed") + 1])
    init = {k: v.numpy() for k, v in TinyLM(config, seed=seed).state_dict().items()}
    for m in methods:
        assert max(float(np.abs(a[m][k] - init[k]).max()) for k in init) > 1e-3, m


def test_hf_students_match_across_processes(tmp_path):
    pytest.importorskip("transformers")
    from safetensors.numpy import load_file

    sys.path.insert(0, str(ROOT / "tests"))
    from test_lm_hf import make_model

    make_model(tmp_path / "teacher", n_embd=32, seed=1, init=0.5)
    make_model(tmp_path / "student", n_embd=16, seed=2, tokenizer=False)
    (tmp_path / "p.txt").write_text("the cat\nthe dog sat\n")
    args = [
        "--teacher", str(tmp_path / "teacher"), "--student", str(tmp_path / "student"), "--prompts",
        str(tmp_path / "p.txt"), "--methods", "on_policy_sampled", "--steps", "4", "--eval-every", "4",
        "--batch-size", "8", "--shards", "2", "--length", "3", "--eval-samples", "4", "--device", "cpu",
    ]  # fmt: skip
    port = str(free_port())
    two = run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", port,
               "-m", "kl_core.lm", *args, "--out", str(tmp_path / "two")])  # fmt: skip
    assert two.returncode == 0, two.stderr[-2000:]
    one = run([sys.executable, "-m", "kl_core.lm", *args, "--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-2000:]
    a = load_file(str(tmp_path / "one" / "on_policy_sampled" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "on_policy_sampled" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], atol=1e-5, rtol=0, err_msg=k)


def test_shards_must_divide_among_processes(monkeypatch):
    import torch

    from kl_core.lm import parallel

    monkeypatch.setattr(parallel, "rank_and_size", lambda: (1, 2))
    gens, per_rank = parallel.stream_generators(5, 4, torch.device("cpu"))
    assert per_rank == 2  # rank 1 of 2 owns streams 2 and 3
    expected = [torch.Generator().manual_seed(parallel.stream_seed(5, s, 4)) for s in (2, 3)]
    assert [torch.rand(3, generator=g).tolist() for g in gens] == [
        torch.rand(3, generator=g).tolist() for g in expected
    ]
    assert parallel.stream_seed(5, 0, 1) == 5  # one stream: the plain single-process generator
    with pytest.raises(ValueError, match=r"shards \(3\) must be a multiple of the number of processes \(2\)"):
        parallel.stream_generators(0, 3, torch.device("cpu"))
