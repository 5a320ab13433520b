"""kl_core.fused_tokens: the fused-linear-head token loss against token_divergence on materialised logits."""

import subprocess
import sys
import textwrap

import pytest
import torch
from spec_tools import TOKEN_KIND_PARAMS

import kl_core as kc
from kl_core.divergences import KINDS
from kl_core.fused_tokens import fused_token_divergence
from kl_core.tokens import token_divergence

PARAMS = TOKEN_KIND_PARAMS
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def test_every_kind_has_a_case():
    assert set(PARAMS) == set(KINDS)


def _inputs(dtype, seed=0, b=3, t=5, h=16, v=37, teacher_hidden=False):
    gen = torch.Generator().manual_seed(seed)
    hs = torch.randn(b, t, h, generator=gen, dtype=torch.float64).to(dtype).requires_grad_(True)
    ws = (torch.randn(v, h, generator=gen, dtype=torch.float64) / h**0.5).to(dtype).requires_grad_(True)
    bs = (torch.randn(v, generator=gen, dtype=torch.float64) * 0.1).to(dtype).requires_grad_(True)
    mask = torch.rand(b, t, generator=gen) < 0.7
    if teacher_hidden:
        ht = torch.randn(b, t, h + 3, generator=gen, dtype=torch.float64).to(dtype)
        wt = (torch.randn(v, h + 3, generator=gen, dtype=torch.float64) / h**0.5).to(dtype)
        return hs, ws, bs, ht, wt, mask
    tl = (torch.randn(b, t, v, generator=gen, dtype=torch.float64) * 1.5).to(dtype)
    return hs, ws, bs, tl, mask


def _rel(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / max(float(b.norm()), 1e-300))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", list(PARAMS))
@pytest.mark.parametrize("reduction, temperature", [("batchmean", 1.0), ("mean", 2.0), ("sum", 0.7)])
def test_equals_token_divergence_on_the_materialised_logits(kind, dtype, reduction, temperature):
    hs, ws, bs, tl, mask = _inputs(dtype, seed=len(kind))
    kw = dict(kind=kind, temperature=temperature, mask=mask, reduction=reduction, **PARAMS[kind])
    fused = fused_token_divergence(hs, ws, bs, teacher_logits=tl, chunk_size=4, **kw)
    g_fused = torch.autograd.grad(fused, (hs, ws, bs))
    kw.pop("kind")
    oracle = token_divergence(tl, hs @ ws.T + bs, kind, **kw)
    g_oracle = torch.autograd.grad(oracle, (hs, ws, bs))
    assert fused.dtype == oracle.dtype
    assert fused.item() == pytest.approx(oracle.item(), rel=TOL[dtype], abs=TOL[dtype] * 1e-3)
    for a, b in zip(g_fused, g_oracle):
        assert a.dtype == b.dtype
        assert _rel(a, b) < TOL[dtype]


@pytest.mark.parametrize("kind", ["forward_kl", "jsd", "alpha", "akl"])
def test_teacher_by_its_head_with_gradients_for_both(kind):
    hs, ws, bs, ht, wt, mask = _inputs(torch.float64, seed=5, teacher_hidden=True)
    ht.requires_grad_(True)
    wt.requires_grad_(True)
    bt = torch.zeros(ws.shape[0], dtype=torch.float64, requires_grad=True)
    fused = fused_token_divergence(hs, ws, bs, teacher_hidden=ht, teacher_weight=wt, teacher_bias=bt, kind=kind,
                                   mask=mask, chunk_size=2, temperature=1.5, **PARAMS[kind])  # fmt: skip
    leaves = (hs, ws, bs, ht, wt, bt)
    g_fused = torch.autograd.grad(fused, leaves)
    oracle = token_divergence(ht @ wt.T + bt, hs @ ws.T + bs, kind, mask=mask, temperature=1.5, **PARAMS[kind])
    g_oracle = torch.autograd.grad(oracle, leaves)
    assert fused.item() == pytest.approx(oracle.item(), rel=1e-12)
    for a, b in zip(g_fused, g_oracle):
        assert _rel(a, b) < 1e-12


def test_teacher_logits_that_require_grad_and_no_bias():
    hs, ws, _, tl, mask = _inputs(torch.float64, seed=2)
    tl.requires_grad_(True)
    fused = fused_token_divergence(hs, ws, teacher_logits=tl, kind="jsd", beta=0.5, mask=mask, chunk_size=3)
    oracle = token_divergence(tl, hs @ ws.T, "jsd", beta=0.5, mask=mask)
    for a, b in zip(torch.autograd.grad(fused, (hs, ws, tl)), torch.autograd.grad(oracle, (hs, ws, tl))):
        assert _rel(a, b) < 1e-12


def test_per_position_weights_recompute_the_chunks():
    """reduction='none' with a non-uniform upstream gradient takes the recomputing backward."""
    hs, ws, bs, tl, mask = _inputs(torch.float64, seed=3)
    weights = torch.rand(3, 5, dtype=torch.float64)
    fused = fused_token_divergence(hs, ws, bs, teacher_logits=tl, kind="reverse_kl", mask=mask, reduction="none")
    oracle = token_divergence(tl, hs @ ws.T + bs, "reverse_kl", mask=mask, reduction="none")
    assert torch.allclose(fused, oracle, rtol=1e-12, atol=0)
    g_f = torch.autograd.grad((fused * weights).sum(), (hs, ws, bs))
    g_o = torch.autograd.grad((oracle * weights).sum(), (hs, ws, bs))
    for a, b in zip(g_f, g_o):
        assert _rel(a, b) < 1e-12


def test_num_items_in_batch_micro_batches_add_up():
    hs, ws, bs, tl, mask = _inputs(torch.float64, seed=4, b=4)
    full = fused_token_divergence(hs, ws, bs, teacher_logits=tl, kind="jsd", mask=mask, reduction="mean")
    g_full = torch.autograd.grad(full, (ws, bs))
    n, total, acc = int(mask.sum()), 0.0, [torch.zeros_like(ws), torch.zeros_like(bs)]
    for i in range(4):
        part = fused_token_divergence(hs[i : i + 1], ws, bs, teacher_logits=tl[i : i + 1], kind="jsd",
                                      mask=mask[i : i + 1], reduction="sum", num_items_in_batch=n)  # fmt: skip
        total += part.item()
        for a, g in zip(acc, torch.autograd.grad(part, (ws, bs))):
            a += g
    assert total == pytest.approx(full.item(), rel=1e-12)
    for a, b in zip(acc, g_full):
        assert _rel(a, b) < 1e-12


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_are_computed_in_float32(dtype):
    hs, ws, bs, tl, mask = _inputs(dtype, seed=6)
    fused = fused_token_divergence(hs, ws, bs, teacher_logits=tl, kind="forward_kl", mask=mask)
    assert fused.dtype == torch.float32
    g = torch.autograd.grad(fused, (hs, ws, bs))
    assert [x.dtype for x in g] == [dtype] * 3
    # the float32 computation on the same (rounded) inputs
    h32, w32, b32 = (x.detach().float().requires_grad_(True) for x in (hs, ws, bs))
    oracle = token_divergence(tl.float(), h32 @ w32.T + b32, "forward_kl", mask=mask)
    assert fused.item() == pytest.approx(oracle.item(), rel=1e-6)
    for a, b in zip(g, torch.autograd.grad(oracle, (h32, w32, b32))):
        assert _rel(a, b.to(dtype)) < 1e-6


def test_empty_batch_and_all_masked():
    hs, ws, bs, tl, mask = _inputs(torch.float32, b=0)
    out = fused_token_divergence(hs, ws, bs, teacher_logits=tl, kind="jsd")
    assert out.item() == 0.0
    g = torch.autograd.grad(out, (ws,))[0]
    assert bool((g == 0).all())
    hs, ws, bs, tl, _ = _inputs(torch.float32)
    out = fused_token_divergence(hs, ws, bs, teacher_logits=tl, mask=torch.zeros(3, 5, dtype=torch.bool),
                                 reduction="mean")  # fmt: skip
    assert out.item() == 0.0
    assert bool((torch.autograd.grad(out, (hs,))[0] == 0).all())


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(teacher_logits=None), "exactly one of teacher_logits or teacher_hidden"),
        (dict(teacher_hidden=torch.zeros(3, 5, 4)), "exactly one of teacher_logits or teacher_hidden"),
        (dict(teacher_logits=torch.zeros(3, 5, 36)), r"teacher_logits must have shape \(3, 5, 37\)"),
        (dict(student_weight=torch.zeros(37, 15)), r"student_weight must have shape \(V >= 1, 16\)"),
        (dict(student_bias=torch.zeros(36)), r"student_bias must be None or a floating-point tensor of shape \(37,\)"),
        (dict(teacher_weight=torch.zeros(37, 16)), "teacher_weight and teacher_bias go with teacher_hidden"),
        (dict(temperature=0.0), "temperature must be a number"),
        (dict(reduction="batch_mean"), "reduction must be one of"),
        (dict(mask=torch.ones(3, 4, dtype=torch.bool)), r"mask must have shape \(3, 5\)"),
        (dict(num_items_in_batch=3), 'needs reduction="sum"'),
        (dict(kind="kl"), "unknown divergence kind"),
        (dict(chunk_size=0), "chunk_size must be an integer >= 1"),
    ],
)
def test_bad_arguments_name_the_parameter(change, match):
    kw = dict(student_hidden=torch.zeros(3, 5, 16), student_weight=torch.zeros(37, 16), student_bias=None,
              teacher_logits=torch.zeros(3, 5, 37))  # fmt: skip
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        fused_token_divergence(kw.pop("student_hidden"), kw.pop("student_weight"), kw.pop("student_bias"), **kw)


def test_nan_hidden_states_raise():
    hs, ws, bs, tl, _ = _inputs(torch.float32)
    with torch.no_grad():
        hs[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="student_logits contain NaN"):
        fused_token_divergence(hs, ws, bs, teacher_logits=tl)


def test_exported_lazily_at_top_level():
    assert kc.fused_token_divergence is fused_token_divergence
    assert "fused_token_divergence" in kc.__all__


# ----------------------------------------------------------------------------------------------
# Memory: no (B·T, V) tensor is ever allocated
# ----------------------------------------------------------------------------------------------


def _largest_allocation(fn) -> int:
    """The largest number of elements of any tensor an aten op creates while ``fn`` runs (forward + backward)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for o in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(o, torch.Tensor):
                    # a view shares storage: count only the storage the op owns
                    Largest.largest = max(Largest.largest, o.untyped_storage().nbytes() // o.element_size())
            return out

    with Largest():
        fn()
    return Largest.largest


@pytest.mark.parametrize("kind", ["forward_kl", "jsd", "alpha", "akl"])
def test_no_tensor_of_bt_times_v_elements_is_allocated(kind):
    bt, h, v = 512, 32, 2048  # B·T·V = 2**20; a chunk of 64 positions is 2**17
    gen = torch.Generator().manual_seed(1)
    hs = torch.randn(bt, h, generator=gen, requires_grad=True)
    ws = torch.randn(v, h, generator=gen, requires_grad=True)
    ht, wt = torch.randn(bt, h, generator=gen), torch.randn(v, h, generator=gen)

    def fused():
        loss = fused_token_divergence(hs, ws, teacher_hidden=ht, teacher_weight=wt, kind=kind, chunk_size=64,
                                      **PARAMS[kind])  # fmt: skip
        loss.backward()

    def unfused():  # the test can fail: the materialised loss allocates (B·T, V) tensors
        loss = token_divergence(ht @ wt.T, hs @ ws.T, kind, **PARAMS[kind])
        loss.backward()

    assert _largest_allocation(unfused) >= bt * v
    largest = _largest_allocation(fused)
    assert largest <= 4 * 64 * v, largest  # a few chunk rows (the akl sort holds 2 chunk-sized buffers)
    assert largest < bt * v // 4


def test_peak_resident_memory_is_a_fraction_of_the_unfused_loss():
    """In fresh subprocesses: the rise of the peak resident set (VmHWM) over the inputs, fused vs unfused."""
    code = textwrap.dedent(
        """
        import sys, torch
        from kl_core.fused_tokens import fused_token_divergence
        from kl_core.tokens import token_divergence
        torch.manual_seed(0)
        bt, h, v = 4096, 64, 8192  # logits 128 MB each; chunks of 64 positions, 2 MB
        hs = torch.randn(bt, h, requires_grad=True); ws = torch.randn(v, h, requires_grad=True)
        tl = torch.randn(bt, v)
        def status(field):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak resident set (VmHWM) restarts from the current one
        before = status("VmRSS")
        if sys.argv[1] == "fused":
            fused_token_divergence(hs, ws, teacher_logits=tl, kind="jsd", chunk_size=64).backward()
        else:
            token_divergence(tl, hs @ ws.T, "jsd").backward()
        print(status("VmHWM") - before)
        """
    )
    rise = {}
    for mode in ("fused", "unfused"):
        out = subprocess.run(
            [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True, timeout=300
        )
        rise[mode] = int(out.stdout.strip().splitlines()[-1]) * 1024
    assert rise["unfused"] > 2 * 128 * 2**20  # at least the logits and their gradient
    # measured 0.1-0.21 (allocator reuse varies between runs); the unfused loss is 1 by definition
    assert rise["fused"] < 0.3 * rise["unfused"], rise
