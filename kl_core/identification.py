"""Which KL does a loss compute? Identify a distillation loss from its values and gradients on random logits.

``identify(loss_fn)`` calls the user's loss on seeded random logits (several shapes, logit scales and
masks), takes its gradient with respect to the student logits by autograd, and compares value and
gradient with every registry kind computed by ``kl_core.tokens.token_divergence``. It fits, per kind:

* the kind's parameter (β of ``jsd``, α of ``alpha`` and the skew kinds, μ of ``akl``): a coarse grid,
  then a bounded 1-D search (``scipy.optimize.minimize_scalar``); AKL's μ is only identifiable up to an
  interval (its head/tail split is a step function of μ), which is reported;
* the reduction: ``sum``, ``mean`` (over unmasked tokens), ``batchmean`` (sum / first axis),
  ``elementwise_mean`` (sum / (tokens × vocabulary), ``F.kl_div``'s ``"mean"``) or ``none`` (one value per
  position); several probe shapes and masks tell them apart;
* the temperature handling: ``none`` (τ = 1), ``divided`` (both logits divided by a fitted τ) or
  ``divided_t2`` (the same, times τ²).

A value that differs from a kind only by a term that does not depend on the student (the cross-entropy
form ``−Σ T log S = KL(T‖S) + H(T)``) is recognised: each probe is evaluated at two students with the same
teacher, and the difference of the values is compared.

Calling conventions (the probe passes exactly these; float64 tensors):

* deterministic (default): ``loss_fn(student_logits, teacher_logits)`` or the reverse order
  (``args_order``; detected from the parameter names, else student first, as in TRL and ``F.kl_div``);
  logits have shape ``(*shape, vocab)``. If the function has a parameter named ``mask`` it receives a
  boolean ``(*shape)`` mask (True = counted); one named ``labels`` receives token ids with ``-100`` where
  a position is masked (the Hugging Face convention).
* sampled (``sampled=True``): ``loss_fn(student_logits, teacher_logits, tokens)``, where ``tokens`` (long,
  ``shape``) are drawn from ``softmax(student_logits)`` independently at every position, without gradient:
  an on-policy estimate such as ``k1``, ``k3`` or the per-token reward ``log T − log S`` in a policy
  gradient. It is identified through its expectation and its expected gradient, estimated by Monte Carlo
  over ``draws`` calls, with tolerances from the standard errors.

This runs the caller's own code; the app never calls it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize, minimize_scalar
from scipy.stats import chi2
from torch import Tensor

from kl_core.divergences import KINDS, kl_direction
from kl_core.tokens import token_divergence

__all__ = ["identify", "Identification", "Candidate", "REDUCTIONS", "TEMPERATURE_HANDLING", "ARGS_ORDERS"]

REDUCTIONS = ("mean", "batchmean", "sum", "elementwise_mean", "none")  # preference order on ties
TEMPERATURE_HANDLING = ("none", "divided", "divided_t2")
ARGS_ORDERS = ("student,teacher", "teacher,student")
TOLERANCE = 1e-4  # relative residual below which a deterministic loss matches (float32 losses reach ~1e-6)
_PLAIN = ("forward_kl", "reverse_kl", "tv")  # kinds without a parameter: preferred when several match
_PARAM_RANGE = {  # the fitted parameter's search interval
    "jsd": ("beta", 0.0, 1.0),
    "alpha": ("alpha", -2.0, 3.0),
    "skew_forward_kl": ("alpha", 0.0, 0.99),
    "skew_reverse_kl": ("alpha", 0.0, 0.99),
    "akl": ("mu", 1e-3, 1.0),
}
_TAU_RANGE = (0.1, 10.0)
_GRID = 21


@dataclass(frozen=True)
class Candidate:
    """One registry kind at its best fit: parameter, reduction, temperature handling and residuals.

    Residuals are relative (‖loss − kind‖ / ‖kind‖, root mean square over probes). For a sampled loss,
    ``value_noise`` and ``gradient_noise`` are the Monte-Carlo standard errors on the same scale, and a
    residual matches when it is within the chi-square bound set by them.
    """

    kind: str
    params: Mapping[str, float]
    params_range: Mapping[str, tuple[float, float]]  # parameter values that fit equally well
    reduction: str
    temperature: str  # one of TEMPERATURE_HANDLING
    tau: float
    value_residual: float
    offset_residual: float  # residual of value differences between two students (teacher-only terms cancel)
    gradient_residual: float
    value_noise: float = 0.0
    gradient_noise: float = 0.0
    value_matches: bool = False
    offset_matches: bool = False
    gradient_matches: bool = False

    @property
    def matched(self) -> bool:
        return self.gradient_matches and (self.value_matches or self.offset_matches)

    @property
    def score(self) -> float:
        """What ranks the nearest kinds: the worse of gradient and (offset-tolerant) value residual."""
        return max(self.gradient_residual, min(self.value_residual, self.offset_residual))


@dataclass(frozen=True)
class Identification:
    """What a loss computes. ``verdict`` and ``link`` are sentences generated from these fields."""

    matched: bool
    kind: str | None  # the matched kind (sampled: the kind whose gradient the expected gradient is)
    params: Mapping[str, float]
    params_range: Mapping[str, tuple[float, float]]
    reduction: str | None
    temperature: str | None
    tau: float | None
    value_form: str | None  # "exact" | "plus_teacher_term" (cross-entropy form) | None
    value_residual: float | None  # of the values, or of their differences when value_form is "plus_teacher_term"
    gradient_residual: float | None
    candidates: tuple[Candidate, ...]  # best fit of every kind, nearest first
    args_order: str  # one of ARGS_ORDERS
    args_order_source: str  # "stated" | "parameter names" | "assumed"
    mask_argument: str | None  # "mask" | "labels" | None: how the probe passed masks
    sampled: bool = False
    draws: int = 0
    gradient_noise: float | None = None  # sampled: the Monte-Carlo standard error on gradient_residual's scale
    value_kind: str | None = None  # sampled: the kind the expectation equals, if any
    value_params: Mapping[str, float] = field(default_factory=dict)
    zero_gradient: bool = False  # the (expected) gradient w.r.t. the student logits is zero

    @property
    def link(self) -> str | None:
        """The lab page that shows the matched kind's behaviour (URL path and query)."""
        kind = self.kind if self.kind is not None else self.value_kind
        params = self.params if self.kind is not None else self.value_params
        return None if kind is None else lab_link(kind, params)

    @property
    def verdict(self) -> str:
        return _verdict(self)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, the verdict and the link included."""

        def cand(c: Candidate) -> dict[str, Any]:
            return {
                "kind": c.kind,
                "params": dict(c.params),
                "params_range": {k: list(v) for k, v in c.params_range.items()},
                "reduction": c.reduction,
                "temperature": c.temperature,
                "tau": c.tau,
                "value_residual": c.value_residual,
                "offset_residual": c.offset_residual,
                "gradient_residual": c.gradient_residual,
                "value_noise": c.value_noise,
                "gradient_noise": c.gradient_noise,
                "matched": c.matched,
            }

        return {
            "matched": self.matched,
            "kind": self.kind,
            "params": dict(self.params),
            "params_range": {k: list(v) for k, v in self.params_range.items()},
            "reduction": self.reduction,
            "temperature": self.temperature,
            "tau": self.tau,
            "value_form": self.value_form,
            "value_residual": self.value_residual,
            "gradient_residual": self.gradient_residual,
            "args_order": self.args_order,
            "args_order_source": self.args_order_source,
            "mask_argument": self.mask_argument,
            "sampled": self.sampled,
            "draws": self.draws,
            "gradient_noise": self.gradient_noise,
            "value_kind": self.value_kind,
            "value_params": dict(self.value_params),
            "zero_gradient": self.zero_gradient,
            "verdict": self.verdict,
            "link": self.link,
            "candidates": [cand(c) for c in self.candidates],
        }


# ----------------------------------------------------------------------------------------------
# Words: every sentence is built from the fields above.
# ----------------------------------------------------------------------------------------------

_KIND_WORDS = {
    "forward_kl": (
        "forward KL, KL(teacher‖student): mode-covering",
        "the student will spread its mass over every answer the teacher gives, and between them when it "
        "cannot fit them all",
    ),
    "reverse_kl": (
        "reverse KL, KL(student‖teacher): mode-seeking",
        "the student will pick one answer and drop the others",
    ),
    "jsd": (
        "the generalized Jensen-Shannon divergence of GKD, β·KL(T‖M) + (1−β)·KL(S‖M) with M = βT + (1−β)S, "
        "β = {beta:.3f}: between forward KL (β = 0) and reverse KL (β = 1)",
        "the student covers the teacher's answers like forward KL for small β and commits to one like reverse KL "
        "for large β",
    ),
    "alpha": (
        "the α-divergence (Amari) with α = {alpha:.3f}: α → 1 is forward KL, α → 0 reverse KL",
        "α ≥ 1 covers the teacher's answers, α ≤ 0 is zero-forcing and commits to one",
    ),
    "skew_forward_kl": (
        "skew forward KL (DistiLLM), KL(T‖αT + (1−α)S) with α = {alpha:.3f}",
        "the student covers the teacher's answers like forward KL, with its gradient bounded where the student "
        "has little mass",
    ),
    "skew_reverse_kl": (
        "skew reverse KL (DistiLLM), KL(S‖αS + (1−α)T) with α = {alpha:.3f}",
        "the student commits to the teacher's likely answers like reverse KL, with its gradient bounded where the "
        "teacher has little mass",
    ),
    "tv": (
        "total variation, ½·Σ|T − S|",
        "the student matches probabilities where they differ most and ignores how small ones are",
    ),
    "akl": (
        "adaptive KL (AKL, Wu et al. 2024) with μ = {mu:.3f}: forward KL on the teacher's head, reverse KL on its "
        "tail, weighted by their gaps",
        "the student covers the teacher's most likely answers and drops its unlikely ones",
    ),
}

_REDUCTION_WORDS = {
    "sum": "Summed over tokens (the value grows with the batch and the sequence length)",
    "mean": "Per token, averaged over {counted} tokens",
    "batchmean": "Summed over tokens and divided by the batch size, the first axis (F.kl_div's 'batchmean'), "
    "so longer sequences weigh more",
    "elementwise_mean": "Divided by tokens × vocabulary (F.kl_div's 'mean'), so it is 1/V of the per-token divergence",
    "none": "One value per position, not reduced",
}


def _num(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


def describe_kind(kind: str, params: Mapping[str, float]) -> tuple[str, str]:
    """(what it is, what it does to the student) for a kind and its parameters, in words."""
    direction = kl_direction(kind, dict(params))
    if direction is not None:
        kind = f"{direction}_kl"
    what, means = _KIND_WORDS[kind]
    return what.format(**params), means


def short_name(kind: str, params: Mapping[str, float]) -> str:
    """``"reverse KL"``, ``"jsd (β = 0.300)"``: a kind in two words."""
    direction = kl_direction(kind, dict(params))
    if direction is not None:
        return f"{direction} KL"
    greek = {"beta": "β", "alpha": "α", "mu": "μ"}
    return kind + "".join(f" ({greek[k]} = {v:.3f})" for k, v in params.items())


def lab_link(kind: str, params: Mapping[str, float]) -> str:
    """The app page and URL state that show ``kind``: the 1-D lab, or the token lab for AKL.

    Parameter names and ranges are app/state.py's fields (tests/test_identify.py checks them there).
    """
    direction = kl_direction(kind, dict(params))
    if direction is not None:
        return f"/lab?objectives={direction}_kl"
    if kind == "jsd":
        return f"/lab?objectives=jsd&beta={_clip(params['beta'], 0.0, 1.0)}"
    if kind == "alpha":
        return f"/lab?objectives=alpha&alpha={_clip(params['alpha'], -2.0, 3.0)}"
    if kind in ("skew_forward_kl", "skew_reverse_kl"):
        return f"/lab?objectives={kind}&skew={_clip(params['alpha'], 0.0, 0.95)}"
    if kind == "akl":
        return f"/tokens?tok_objectives=akl&tok_mu={_clip(params['mu'], 0.05, 1.0)}"
    return f"/lab?objectives={kind}"


def _clip(x: float, lo: float, hi: float) -> str:
    return f"{min(max(x, lo), hi):.2f}"


def _temperature_words(handling: str, tau: float) -> str:
    if handling == "none":
        return "no temperature (τ = 1)"
    if handling == "divided":
        return f"temperature τ = {tau:.3f} applied to both logits, no T² factor"
    return f"temperature τ = {tau:.3f} applied to both logits, times τ² = {tau * tau:.3f}"


def _verdict(r: Identification) -> str:
    first, second = r.args_order.split(",")
    order = f"fn({first}_logits, {second}_logits" + (", tokens)" if r.sampled else ")")
    source = {"stated": "as stated", "parameter names": "from its parameter names", "assumed": "assumed"}
    lines = []
    if r.sampled:
        lines.append(_sampled_verdict(r))
    elif r.matched:
        what, means = describe_kind(r.kind, r.params)
        counted = "unmasked" if r.mask_argument else "all"
        lines.append(f"This is {what}.")
        lines.append(
            f"{_REDUCTION_WORDS[r.reduction].format(counted=counted)}; {_temperature_words(r.temperature, r.tau)}."
        )
        if r.value_form == "plus_teacher_term":
            lines.append(
                "Its value is that divergence plus a term that depends only on the teacher (the cross-entropy "
                "form, e.g. −Σ T log S = KL(T‖S) + H(T)): the same gradient, so it trains the same."
            )
        lines.append(f"What it means: {means}.")
        if r.kind == "akl":
            lo, hi = r.params_range["mu"]
            lines.append(f"μ is identified up to [{lo:.3f}, {hi:.3f}) on these probes.")
        value = "value" if r.value_form == "exact" else "value differences"
        lines.append(f"Relative residual: {value} {_num(r.value_residual)}, gradient {_num(r.gradient_residual)}.")
    else:
        zero = " Its gradient w.r.t. the student logits is zero." if r.zero_gradient else ""
        lines.append("No kind matches." + zero)
        lines.append("Nearest: " + "; ".join(_nearest_words(c) for c in r.candidates[:3]) + ".")
    if r.link is not None:
        lines.append(f"See it in the lab: {r.link}")
    lines.append(f"Read as {order} ({source[r.args_order_source]}).")
    return "\n".join(lines)


def _nearest_words(c: Candidate) -> str:
    name = c.kind + "".join(f" {k}={v:.3f}" for k, v in c.params.items())
    temp = "" if c.temperature == "none" else f", τ={c.tau:.3f}" + (" ×τ²" if c.temperature == "divided_t2" else "")
    return (
        f"{name} ({c.reduction}{temp}) off by {_num(c.gradient_residual)} in gradient, "
        f"{_num(min(c.value_residual, c.offset_residual))} in value"
    )


def _sampled_verdict(r: Identification) -> str:
    lines = [f"A sampled estimate, identified through its expectation over {r.draws} draws of the tokens."]
    if r.zero_gradient:
        lines.append("Its expected gradient w.r.t. the student logits is zero: as a loss it trains nothing.")
    elif r.kind is not None:
        what, means = describe_kind(r.kind, r.params)
        counted = "unmasked" if r.mask_argument else "all"
        lines.append(f"Its expected gradient is that of {what}.")
        lines.append(f"{_REDUCTION_WORDS[r.reduction].format(counted=counted)}; tokens drawn at τ = 1.")
        lines.append(f"What it means: {means}.")
    else:
        lines.append("Its expected gradient matches no kind.")
    if r.value_kind is not None:
        vwhat, _ = describe_kind(r.value_kind, r.value_params)
        lines.append(f"Its expected value is {vwhat}.")
        if r.kind is not None and (r.value_kind, dict(r.value_params)) != (r.kind, dict(r.params)):
            trains, reports = short_name(r.kind, r.params), short_name(r.value_kind, r.value_params)
            lines.append(
                f"Value and gradient disagree: training follows the gradient, so it minimises {trains} "
                f"while reporting {reports}."
            )
    else:
        lines.append("Its expected value is no kind's value (a surrogate: only its gradient means something).")
    if r.gradient_residual is not None:
        lines.append(
            f"Relative residual of the expected gradient: {_num(r.gradient_residual)}, Monte-Carlo standard "
            f"error {_num(r.gradient_noise)} on the same scale."
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Probes and calls
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Segment:
    """One evaluated (probe, student) pair inside the flat (M, V) reference batch."""

    probe: int
    lo: int
    hi: int
    lead: tuple[int, ...]
    count: int  # counted (unmasked) positions


class _Probes:
    """Seeded logits: per probe a teacher and two students (same teacher), flattened into one batch."""

    def __init__(self, vocab: int, shape: tuple[int, ...], seed: int, with_mask: bool, sampled: bool = False) -> None:
        gen = torch.Generator().manual_seed(seed)
        if len(shape) >= 2:
            b, t, rest = shape[0], shape[1], tuple(shape[2:])
            leads = [shape, (b + 1, max(t - 1, 1), *rest), (1, t + 2, *rest), (2 * b, 4 * t, *rest)]
        elif len(shape) == 1:
            leads = [shape, (shape[0] + 2,), (max(shape[0] - 1, 1),), (8 * shape[0],)]
        else:
            leads = [(), (), (), ()]
        # logit scales: flat, peaked, near-uniform next-token distributions, and a larger probe whose many
        # head/tail edges pin AKL's μ down. Sampled estimates get milder ones (the importance ratios T/S of k3
        # are heavy-tailed on peaked distributions) and skip the large probe (draws x positions calls).
        scales = (1.0, 1.5, 0.5) if sampled else (1.0, 3.0, 0.5, 1.5)
        leads = leads[: len(scales)]
        self.vocab = vocab
        self.leads = [tuple(int(x) for x in lead) for lead in leads]
        self.teachers: list[Tensor] = []
        self.students: list[tuple[Tensor, Tensor]] = []
        self.masks: list[Tensor] = []
        for i, (lead, scale) in enumerate(zip(self.leads, scales)):
            teacher = scale * torch.randn(*lead, vocab, generator=gen, dtype=torch.float64)
            s_a = scale * torch.randn(*lead, vocab, generator=gen, dtype=torch.float64)
            s_b = s_a + torch.randn(*lead, vocab, generator=gen, dtype=torch.float64)
            mask = torch.ones(lead, dtype=torch.bool)
            if with_mask and i > 0 and mask.numel() > 1:
                mask = torch.rand(lead, generator=gen) < 0.6
                flat = mask.reshape(-1)
                flat[0], flat[-1] = True, False  # at least one counted and one masked position
            self.teachers.append(teacher)
            self.students.append((s_a, s_b))
            self.masks.append(mask)
        self.segments: list[_Segment] = []
        teachers, students, masks = [], [], []
        lo = 0
        for i, lead in enumerate(self.leads):
            n = math.prod(lead)
            for s in self.students[i]:
                self.segments.append(_Segment(i, lo, lo + n, lead, int(self.masks[i].sum())))
                teachers.append(self.teachers[i].reshape(n, vocab))
                students.append(s.reshape(n, vocab))
                masks.append(self.masks[i].reshape(n))
                lo += n
        self.flat_teacher = torch.cat(teachers)  # (M, V)
        self.flat_student = torch.cat(students)  # (M, V)
        self.flat_mask = torch.cat(masks)  # (M,)

    def divisor(self, seg: _Segment, reduction: str) -> float:
        if reduction == "sum":
            return 1.0
        if reduction == "mean":
            return float(max(seg.count, 1))
        if reduction == "batchmean":
            return float(seg.lead[0]) if seg.lead else 1.0
        if reduction == "elementwise_mean":
            return float(max(seg.count, 1) * self.vocab)
        raise AssertionError(reduction)


def _name(fn: Callable) -> str:
    fn = getattr(fn, "func", fn)  # functools.partial
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _parameters(fn: Callable) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []


def _detect_order(fn: Callable) -> tuple[str, str]:
    """(order, source) from the names of the first two parameters; student first if they say nothing."""
    names = [p.name.lower() for p in _parameters(fn)[:2]]
    student_words = ("student", "input", "pred", "output", "logits", "model")
    teacher_words = ("teacher", "target", "ref")

    def role(name: str) -> str | None:
        if name in ("s", "q") or "student" in name or name.endswith("_s") or name.startswith("s_"):
            return "student"  # y_s, s_logits (RepDistiller's DistillKL(y_s, y_t))
        if name == "t" or any(w in name for w in teacher_words) or name.endswith("_t") or name.startswith("t_"):
            return "teacher"
        if any(w in name for w in student_words):
            return "student"
        return None

    roles = [role(n) for n in names]
    if len(roles) == 2:
        if roles[0] == "teacher" or roles[1] == "student":
            if roles[0] != "student" and roles[1] != "teacher":
                return "teacher,student", "parameter names"
        if roles[0] == "student" or roles[1] == "teacher":
            if roles[0] != "teacher" and roles[1] != "student":
                return "student,teacher", "parameter names"
    return "student,teacher", "assumed"


def _mask_argument(fn: Callable) -> str | None:
    names = {p.name for p in _parameters(fn)}
    if "mask" in names:
        return "mask"
    if "labels" in names:
        return "labels"
    return None


class _Caller:
    """Calls the user's loss with the probe's conventions and turns every failure into one ValueError."""

    def __init__(self, fn: Callable, order: str, mask_argument: str | None, vocab: int, seed: int) -> None:
        self.fn, self.order, self.mask_argument, self.vocab = fn, order, mask_argument, vocab
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.name = _name(fn)

    def extra(self, mask: Tensor) -> dict[str, Tensor]:
        if self.mask_argument == "mask":
            return {"mask": mask.clone()}
        if self.mask_argument == "labels":
            ids = torch.randint(0, self.vocab, tuple(mask.shape), generator=self.gen)
            return {"labels": torch.where(mask, ids, -100)}
        return {}

    def __call__(self, student: Tensor, teacher: Tensor, mask: Tensor, tokens: Tensor | None = None):
        """(value (numel 1 or lead) as float64, gradient w.r.t. the student logits) of one call."""
        s = student.clone().requires_grad_(True)
        t = teacher.clone()
        args = [s, t] if self.order == "student,teacher" else [t, s]
        if tokens is not None:
            args.append(tokens)
        try:
            out = self.fn(*args, **self.extra(mask))
        except Exception as err:  # the user's code: any failure is reported in one line
            hint = ""
            if isinstance(err, TypeError) and tokens is None and "argument" in str(err):
                hint = " (a sampled estimate takes (student_logits, teacher_logits, tokens): use sampled=True)"
            raise ValueError(f"{self.name} raised {type(err).__name__}: {err}{hint}") from None
        if not isinstance(out, Tensor):
            raise ValueError(
                f"{self.name} returned {type(out).__name__}, not a torch tensor: there is no gradient to compare"
            )
        lead = tuple(student.shape[:-1])
        if tuple(out.shape) == (*lead, self.vocab):
            raise ValueError(
                f"{self.name} returned one value per vocabulary entry, shape {tuple(out.shape)} (F.kl_div's "
                f"reduction='none' is elementwise): return a scalar or sum it over the last axis"
            )
        if out.dim() != 0 and tuple(out.shape) != lead and out.numel() != 1:
            raise ValueError(
                f"{self.name} returned a tensor of shape {tuple(out.shape)}; expected a scalar or one value per "
                f"position {lead}"
            )
        if not bool(torch.isfinite(out.detach()).all()):
            raise ValueError(
                f"{self.name} returned a non-finite value (NaN or inf) on logits of shape {tuple(s.shape)}"
            )
        grad = None
        if out.requires_grad:
            try:
                (grad,) = torch.autograd.grad(out.sum(), s, allow_unused=True)
            except RuntimeError as err:  # e.g. an in-place edit of a tensor autograd saved, inside the user's code
                raise ValueError(f"the gradient of {self.name}'s result failed: {err}".replace("\n", " ")) from None
        grad = torch.zeros_like(s) if grad is None else grad.detach().to(torch.float64)
        if not bool(torch.isfinite(grad).all()):
            raise ValueError(f"{self.name}'s gradient w.r.t. the student logits is not finite (NaN or inf)")
        value = out.detach().to(torch.float64)
        per_position = out.dim() > 0 and tuple(out.shape) == lead
        return (value if per_position else value.reshape(())), grad


# ----------------------------------------------------------------------------------------------
# The comparison
# ----------------------------------------------------------------------------------------------


class _Observed:
    """The user's values and gradients on every segment (sampled: their means and standard errors)."""

    def __init__(self, values: list[Tensor], grads: list[Tensor], value_se=None, grad_se=None) -> None:
        self.values = values  # per segment: () or (lead,)
        self.grads = grads  # per segment: (n, V)
        self.value_se = value_se
        self.grad_se = grad_se
        self.per_position = values[0].dim() > 0


class _Comparer:
    """Residuals of one (kind, parameter, τ) against the observations, over reductions and T² handling.

    Everything is computed on the flat (M, V) batch with per-segment sums (``np.bincount``): one
    ``token_divergence`` call per (kind, parameter, τ), then a few array operations per reduction.
    """

    def __init__(self, probes: _Probes, observed: _Observed, sampled: bool) -> None:
        self.probes, self.obs, self.sampled = probes, observed, sampled
        self.cache: dict[tuple, list[Candidate]] = {}
        segs = probes.segments
        self.n = len(segs)
        self.seg = np.concatenate([np.full(s.hi - s.lo, k) for k, s in enumerate(segs)])  # (M,) segment of a row
        self.counted = probes.flat_mask.numpy()  # (M,)
        self.divisors = {r: np.array([probes.divisor(s, r) for s in segs]) for r in REDUCTIONS[:-1]}
        self.g_obs = torch.cat(observed.grads).numpy()  # (M, V)
        # rows of the first and second student of each probe, aligned position by position
        self.rows_a = np.concatenate([np.arange(s.lo, s.hi) for s in segs[0::2]])
        self.rows_b = np.concatenate([np.arange(s.lo, s.hi) for s in segs[1::2]])
        self.pair = self.seg[self.rows_a] // 2
        if observed.per_position:
            self.v_obs = np.where(self.counted, torch.cat(observed.values).numpy(), 0.0)  # (M,)
        else:
            self.v_obs = torch.stack(observed.values).numpy()  # (segments,)
        if sampled:
            join = torch.cat if observed.per_position else torch.stack
            se = join(observed.value_se).numpy()
            self.v_var = self._segsum(np.where(self.counted, se, 0.0) ** 2) if observed.per_position else se**2
            self.g_var = self._segsum((torch.cat(observed.grad_se).numpy() ** 2).sum(1))
            dof_v = int(self.counted.sum()) if observed.per_position else self.n
            dof_g = self.g_obs.size
            self.bound_v = chi2.ppf(0.9999, dof_v) / dof_v  # pooled chi-square per degree of freedom
            self.bound_g = chi2.ppf(0.9999, dof_g) / dof_g

    def _segsum(self, x: np.ndarray, index: np.ndarray | None = None, n: int | None = None) -> np.ndarray:
        index = self.seg if index is None else index
        return np.bincount(index, weights=x, minlength=self.n if n is None else n)

    def reference(self, kind: str, params: dict[str, float], tau: float) -> tuple[np.ndarray, np.ndarray]:
        """Per-position values (M,) (masked: 0) and the gradient of their sum w.r.t. the student logits (M, V)."""
        p = self.probes
        s = p.flat_student.clone().requires_grad_(True)
        v = token_divergence(p.flat_teacher, s, kind, temperature=tau, mask=p.flat_mask, reduction="none", **params)
        (g,) = torch.autograd.grad(v.sum(), s)
        return v.detach().numpy(), g.detach().numpy()

    def candidates(self, kind: str, params: dict[str, float], tau: float) -> list[Candidate]:
        """Every (reduction, temperature handling) of this kind and parameter, best first."""
        key = (kind, tuple(sorted(params.items())), tau)
        if key in self.cache:
            return self.cache[key]
        values, grads = self.reference(kind, params, tau)
        reductions = ("none",) if self.obs.per_position else REDUCTIONS[:-1]
        factors = [("none" if abs(tau - 1.0) < 1e-9 else "divided", 1.0)]
        if abs(tau - 1.0) >= 1e-9:
            factors.append(("divided_t2", tau * tau))
        out = [
            self._candidate(kind, params, tau, red, handling, factor, values, grads)
            for red in reductions
            for handling, factor in factors
        ]
        out.sort(key=lambda c: (c.score, REDUCTIONS.index(c.reduction)))
        self.cache[key] = out
        return out

    def _candidate(self, kind, params, tau, red, handling, factor, values, grads) -> Candidate:
        scale = np.full(self.n, factor) if red == "none" else factor / self.divisors[red]  # (segments,)
        g_pred = scale[self.seg][:, None] * grads  # (M, V)
        g_err = self._segsum(((self.g_obs - g_pred) ** 2).sum(1))
        g_ref = self._segsum((g_pred**2).sum(1))
        if red == "none":
            pred = factor * values  # (M,)
            v_err, v_ref = self._segsum((self.v_obs - pred) ** 2), self._segsum(pred**2)
            d_obs = self.v_obs[self.rows_b] - self.v_obs[self.rows_a]
            d_pred = pred[self.rows_b] - pred[self.rows_a]
            o_err = self._segsum((d_obs - d_pred) ** 2, self.pair, self.n // 2)
            o_ref = self._segsum(d_pred**2, self.pair, self.n // 2)
        else:
            pred = scale * self._segsum(values)  # (segments,)
            v_err, v_ref = (self.v_obs - pred) ** 2, pred**2
            d_obs, d_pred = self.v_obs[1::2] - self.v_obs[0::2], pred[1::2] - pred[0::2]
            o_err, o_ref = (d_obs - d_pred) ** 2, d_pred**2
        v_res, o_res, g_res = _rel(v_err, v_ref), _rel(o_err, o_ref), _rel(g_err, g_ref)
        if self.sampled:
            v_noise, g_noise = _rel(self.v_var, v_ref), _rel(self.g_var, g_ref)
            v_ok = v_res**2 <= self.bound_v * v_noise**2 + TOLERANCE**2
            g_ok = g_res**2 <= self.bound_g * g_noise**2 + TOLERANCE**2
            o_ok = False
        else:
            v_noise = g_noise = 0.0
            v_ok, o_ok, g_ok = v_res <= TOLERANCE, o_res <= TOLERANCE, g_res <= TOLERANCE
        return Candidate(
            kind=kind,
            params=dict(params),
            params_range={k: (x, x) for k, x in params.items()},
            reduction=red,
            temperature=handling,
            tau=float(tau),
            value_residual=v_res,
            offset_residual=o_res,
            gradient_residual=g_res,
            value_noise=v_noise,
            gradient_noise=g_noise,
            value_matches=bool(v_ok),
            offset_matches=bool(o_ok),
            gradient_matches=bool(g_ok),
        )


def _rel(err: np.ndarray, ref: np.ndarray) -> float:
    """Root mean square over segments of a relative residual (‖err‖ / ‖ref‖ per segment)."""
    terms = np.sqrt(np.maximum(err, 0.0)) / np.maximum(np.sqrt(ref), 1e-12)
    return float(np.sqrt(np.mean(terms**2)))


# ----------------------------------------------------------------------------------------------
# Fitting a kind's parameter and τ
# ----------------------------------------------------------------------------------------------


def _fit_kind(cmp: _Comparer, kind: str, tau: float, objective: Callable[[Candidate], float]) -> Candidate:
    """The best candidate of ``kind`` at temperature ``tau`` over its parameter."""
    if kind not in _PARAM_RANGE:
        return min(cmp.candidates(kind, {}, tau), key=objective)
    name, lo, hi = _PARAM_RANGE[kind]

    def best(x: float) -> Candidate:
        return min(cmp.candidates(kind, {name: float(x)}, tau), key=objective)

    grid = np.linspace(lo, hi, _GRID)
    scores = [objective(best(x)) for x in grid]
    i = int(np.argmin(scores))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    if kind == "akl":
        return _fit_akl(cmp, tau, best, objective, a, b, grid[i])
    res = minimize_scalar(lambda x: objective(best(x)), bounds=(a, b), method="bounded", options={"xatol": 1e-9})
    found = best(float(res.x))
    for edge in (lo, hi, grid[i]):  # a bounded search never evaluates its end points (β = 0 and 1 are exact kinds)
        c = best(float(edge))
        if objective(c) < objective(found):
            found = c
    return found


def _fit_akl(cmp: _Comparer, tau: float, best, objective, a: float, b: float, start: float) -> Candidate:
    """AKL's value is a step function of μ (its head/tail split moves at the teacher's cumulative sums)."""
    p = cmp.probes
    probs = torch.softmax(p.flat_teacher[p.flat_mask] / tau, dim=-1)
    cums = torch.cumsum(torch.sort(probs, dim=-1, descending=True).values, dim=-1)
    cums = cums[:, 1:].reshape(-1).numpy()  # the top token is always in the head: its sum is no edge
    edges = np.unique(np.concatenate([[a, b], cums[(cums > a) & (cums < b)]]))
    mids = (edges[:-1] + edges[1:]) / 2 if len(edges) > 1 else np.array([start])
    scored = [(objective(best(m)), k) for k, m in enumerate(mids)]
    mu = float(mids[min(scored)[1]])
    # the flat interval around μ is between neighbouring cumulative sums (the grid points are no edges)
    below, above = cums[cums <= mu], cums[cums > mu]
    lo_edge = float(below.max()) if below.size else 0.0
    hi_edge = float(min(above.min(), 1.0)) if above.size else 1.0
    found = best((lo_edge + hi_edge) / 2)
    return Candidate(**{**found.__dict__, "params_range": {"mu": (lo_edge, hi_edge)}})


def _fit_tau(cmp: _Comparer, kind: str, start: Candidate, objective) -> Candidate:
    """Joint fit of τ (and the parameter) for each (reduction, T² handling) separately.

    The residual's basin in τ is narrow on peaked probes, and taking the best reduction at every τ makes
    the landscape full of kinks, so: a dense log-τ grid (× a coarse parameter grid), then a bounded
    search (or Nelder-Mead with the parameter) from the three best grid points, the combination held fixed.
    """
    log_lo, log_hi = math.log(_TAU_RANGE[0]), math.log(_TAU_RANGE[1])
    name = _PARAM_RANGE[kind][0] if kind in _PARAM_RANGE else None
    thetas = [None] if name is None else list(np.linspace(*_PARAM_RANGE[kind][1:], 6))
    grid: list[Candidate] = []
    for log_tau in np.linspace(log_lo, log_hi, 41):
        for th in thetas:
            grid.extend(cmp.candidates(kind, {} if name is None else {name: float(th)}, float(math.exp(log_tau))))
    grid = [c for c in grid if c.temperature != "none"]
    found = min([start, *grid], key=objective)
    seen: set[tuple[str, str]] = set()
    for c in sorted(grid, key=objective):
        combo = (c.reduction, c.temperature)
        if combo in seen:
            continue
        seen.add(combo)
        if len(seen) > 3:
            break

        def fixed(x: np.ndarray, combo: tuple[str, str] = combo) -> Candidate:
            tau = float(math.exp(min(max(x[0], log_lo), log_hi)))
            params = {} if name is None else {name: float(np.clip(x[1], *_PARAM_RANGE[kind][1:]))}
            return next(k for k in cmp.candidates(kind, params, tau) if (k.reduction, k.temperature) == combo)

        x0 = [math.log(c.tau)] + ([] if name is None else [c.params[name]])
        if name is None:
            res = minimize_scalar(
                lambda x: objective(fixed(np.array([x]))),
                bounds=(x0[0] - 0.12, x0[0] + 0.12),
                method="bounded",
                options={"xatol": 1e-10},
            )
            x = np.array([res.x])
        else:
            step = (_PARAM_RANGE[kind][2] - _PARAM_RANGE[kind][1]) / 5
            simplex = np.array([x0, [x0[0] + 0.1, x0[1]], [x0[0], x0[1] + step / 2]])
            res = minimize(
                lambda x: objective(fixed(x)),
                x0,
                method="Nelder-Mead",
                options={"initial_simplex": simplex, "xatol": 1e-9, "fatol": 1e-14, "maxiter": 200},
            )
            x = res.x
        found = min((found, fixed(x)), key=objective)
    if kind == "akl" and found.temperature != "none":  # μ is a step function: its interval at the fitted τ
        found = min((found, _fit_kind(cmp, kind, found.tau, objective)), key=objective)
    return found


def _snap(cmp: _Comparer, c: Candidate, objective) -> Candidate:
    """The fit with τ and the parameter rounded to 3 decimals, when that fits at least as well (τ = 2, not 1.99999)."""
    if c.kind == "akl":  # μ is an interval already
        return c
    tau = round(c.tau, 3)
    params = {k: round(v, 3) for k, v in c.params.items()}
    for k in cmp.candidates(c.kind, params, tau):
        if (k.reduction, k.temperature) == (c.reduction, c.temperature) and objective(k) <= objective(c):
            return k
    return c


def _pick(cands: list[Candidate], matches: Callable[[Candidate], bool]) -> Candidate | None:
    """The simplest matching candidate: a plain kind before a parametrised one, then the smallest residual."""
    ok = [c for c in cands if matches(c)]
    if not ok:
        return None
    return min(ok, key=lambda c: (c.kind not in _PLAIN, kl_direction(c.kind, dict(c.params)) is None, c.score))


# ----------------------------------------------------------------------------------------------
# The entry point
# ----------------------------------------------------------------------------------------------


def identify(
    loss_fn: Callable[..., Tensor],
    *,
    vocab: int = 8,
    shape: tuple[int, ...] = (2, 3),
    seed: int = 0,
    args_order: str | None = None,
    sampled: bool = False,
    draws: int = 1000,
) -> Identification:
    """Which registry divergence, reduction and temperature handling ``loss_fn`` computes.

    Args:
        loss_fn: ``loss_fn(student_logits, teacher_logits)`` returning a scalar tensor or one value per
            position (or, with ``sampled=True``, ``loss_fn(student_logits, teacher_logits, tokens)``; see the
            module docstring, also for the ``mask`` / ``labels`` keyword it may take).
        vocab: vocabulary size of the probe logits (>= 3).
        shape: the logits' leading shape, e.g. ``(B, T)``; the probes also use two variants of it.
        seed: seeds the probe logits (and the sampled tokens).
        args_order: ``"student,teacher"`` or ``"teacher,student"``; None detects it from the parameter names
            (student first if they say nothing).
        sampled: identify a sampled (on-policy) estimate through its expectation and expected gradient.
        draws: Monte-Carlo draws of the tokens per probe when ``sampled`` (>= 50).

    Returns:
        An :class:`Identification`; its ``verdict`` says what the loss is in words.

    Example:
        >>> import torch.nn.functional as F
        >>> r = identify(lambda s, t: F.kl_div(s.log_softmax(-1), t.softmax(-1), reduction="batchmean"))
        >>> r.kind, r.reduction, r.temperature
        ('forward_kl', 'batchmean', 'none')
    """
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if not (isinstance(vocab, int) and 3 <= vocab <= 4096):
        raise ValueError(f"vocab must be an integer in [3, 4096], got {vocab!r}")
    shape = tuple(shape)
    if not (len(shape) <= 4 and all(isinstance(x, int) and 1 <= x <= 64 for x in shape)):
        raise ValueError(f"shape must be up to 4 integers in [1, 64] (the logits without V), got {shape!r}")
    if not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if args_order is None:
        order, source = _detect_order(loss_fn)
    elif args_order in ARGS_ORDERS:
        order, source = args_order, "stated"
    else:
        raise ValueError(f"args_order must be one of {', '.join(ARGS_ORDERS)}, got {args_order!r}")
    if sampled and not (isinstance(draws, int) and 50 <= draws <= 100_000):
        raise ValueError(f"draws must be an integer in [50, 100000], got {draws!r}")
    mask_argument = _mask_argument(loss_fn)
    probes = _Probes(vocab, shape, seed, with_mask=mask_argument is not None, sampled=sampled)
    caller = _Caller(loss_fn, order, mask_argument, vocab, seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the probes are tiny: extra intra-op threads only contend (restored below)
    try:
        with torch.enable_grad():
            return _run(caller, probes, order, source, mask_argument, sampled, draws, seed)
    finally:
        torch.set_num_threads(threads)


def _run(caller, probes, order, source, mask_argument, sampled, draws, seed) -> Identification:
    observed = _observe_sampled(caller, probes, draws, seed) if sampled else _observe(caller, probes)
    cmp = _Comparer(probes, observed, sampled)
    if sampled:
        return _identify_sampled(cmp, observed, order, source, mask_argument, draws)
    return _identify_deterministic(cmp, observed, order, source, mask_argument)


def _observe(caller: _Caller, probes: _Probes) -> _Observed:
    values, grads = [], []
    for k, seg in enumerate(probes.segments):  # segments come in pairs: (student a, student b) per probe
        i = seg.probe
        v, g = caller(probes.students[i][k % 2], probes.teachers[i], probes.masks[i])
        values.append(v.reshape(-1) if v.dim() else v)
        grads.append(g.reshape(-1, probes.vocab))
    if len({v.dim() for v in values}) != 1:
        raise ValueError(f"{caller.name} returned a scalar on some probe shapes and one value per position on others")
    return _Observed(values, grads)


def _observe_sampled(caller: _Caller, probes: _Probes, draws: int, seed: int) -> _Observed:
    gen = torch.Generator().manual_seed(seed + 2)
    values, grads, value_se, grad_se = [], [], [], []
    for k, seg in enumerate(probes.segments):
        i = seg.probe
        student = probes.students[i][k % 2]
        probs = torch.softmax(student, dim=-1).reshape(-1, probes.vocab)
        vs, gs = [], []
        for _ in range(draws):
            tokens = torch.multinomial(probs, 1, replacement=True, generator=gen).reshape(seg.lead)
            v, g = caller(student, probes.teachers[i], probes.masks[i], tokens)
            vs.append(v.reshape(-1) if v.dim() else v)
            gs.append(g.reshape(-1))
        if len({tuple(v.shape) for v in vs}) != 1:
            raise ValueError(f"{caller.name} returned tensors of different shapes on the same probe")
        v_all, g_all = torch.stack(vs), torch.stack(gs)  # (draws,) or (draws, positions); (draws, positions * V)
        values.append(v_all.mean(0))
        value_se.append(v_all.std(0) / math.sqrt(draws))
        grads.append(g_all.mean(0).reshape(-1, probes.vocab))
        grad_se.append((g_all.std(0) / math.sqrt(draws)).reshape(-1, probes.vocab))
    if len({v.dim() for v in values}) != 1:
        raise ValueError(f"{caller.name} returned a scalar on some probe shapes and one value per position on others")
    return _Observed(values, grads, value_se, grad_se)


def _identify_deterministic(cmp, observed, order, source, mask_argument) -> Identification:
    def objective(c: Candidate) -> float:  # fitted on gradient and value together; ties to the simpler reduction
        return c.gradient_residual + min(c.value_residual, c.offset_residual)

    zero = all(float(g.abs().max()) == 0.0 for g in observed.grads)
    best = {kind: _fit_kind(cmp, kind, 1.0, objective) for kind in KINDS}
    choice = _pick(list(best.values()), lambda c: c.matched)
    if choice is None and not zero:  # τ ≠ 1: fit the temperature too (no τ gives a kind a zero gradient)
        best = {kind: _fit_tau(cmp, kind, c, objective) for kind, c in best.items()}
        choice = _pick(list(best.values()), lambda c: c.matched)
    if choice is not None:
        choice = _snap(cmp, choice, objective)
    candidates = tuple(sorted(best.values(), key=lambda c: c.score))
    if choice is None:
        return Identification(
            matched=False, kind=None, params={}, params_range={}, reduction=None, temperature=None, tau=None,
            value_form=None, value_residual=None, gradient_residual=None, candidates=candidates,
            args_order=order, args_order_source=source, mask_argument=mask_argument, zero_gradient=zero,
        )  # fmt: skip
    kind, params = choice.kind, dict(choice.params)
    direction = kl_direction(kind, params)
    if direction is not None:  # jsd β = 0, alpha α = 1, skew α = 0 ... are plain KL
        kind, params = f"{direction}_kl", {}
    return Identification(
        matched=True, kind=kind, params=params, params_range=dict(choice.params_range) if params else {},
        reduction=choice.reduction, temperature=choice.temperature, tau=choice.tau,
        value_form="exact" if choice.value_matches else "plus_teacher_term",
        value_residual=choice.value_residual if choice.value_matches else choice.offset_residual,
        gradient_residual=choice.gradient_residual, candidates=candidates,
        args_order=order, args_order_source=source, mask_argument=mask_argument,
    )  # fmt: skip


def _identify_sampled(cmp, observed, order, source, mask_argument, draws) -> Identification:
    def by_gradient(c: Candidate) -> float:
        return c.gradient_residual

    def by_value(c: Candidate) -> float:
        return c.value_residual

    best_g = {kind: _fit_kind(cmp, kind, 1.0, by_gradient) for kind in KINDS}
    best_v = {kind: _fit_kind(cmp, kind, 1.0, by_value) for kind in KINDS}
    g_choice = _pick(list(best_g.values()), lambda c: c.gradient_matches)
    v_choice = _pick(list(best_v.values()), lambda c: c.value_matches)
    # zero expected gradient: within the same chi-square bound of 0
    g_sq = sum(float((g**2).sum()) for g in observed.grads)
    se_sq = sum(float((s**2).sum()) for s in observed.grad_se)
    zero = g_sq <= cmp.bound_g * se_sq + 1e-24
    if zero:
        g_choice = None
    candidates = tuple(sorted(best_g.values(), key=by_gradient))

    def plain(c: Candidate | None) -> tuple[str | None, dict[str, float]]:
        if c is None:
            return None, {}
        direction = kl_direction(c.kind, dict(c.params))
        return (f"{direction}_kl", {}) if direction is not None else (c.kind, dict(c.params))

    kind, params = plain(g_choice)
    value_kind, value_params = plain(v_choice)
    return Identification(
        matched=g_choice is not None, kind=kind, params=params,
        params_range=dict(g_choice.params_range) if params else {},
        reduction=None if g_choice is None else g_choice.reduction,
        temperature=None if g_choice is None else g_choice.temperature,
        tau=None if g_choice is None else g_choice.tau,
        value_form=None, value_residual=None if v_choice is None else v_choice.value_residual,
        gradient_residual=None if g_choice is None else g_choice.gradient_residual,
        candidates=candidates, args_order=order, args_order_source=source, mask_argument=mask_argument,
        sampled=True, draws=draws, gradient_noise=None if g_choice is None else g_choice.gradient_noise,
        value_kind=value_kind, value_params=value_params, zero_gradient=zero,
    )  # fmt: skip
