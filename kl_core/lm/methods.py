"""Distillation methods: one loss function each, and the registry ``METHODS``.

Every method has the signature::

    loss = method(teacher, student, prompts, *, length, generator, temperature=1.0, **params)

``teacher`` and ``student`` map ids (B, T) to logits (B, T, V) (any ``torch.nn.Module``), ``prompts``
is a (B, P) LongTensor, ``length`` the number of answer tokens to sample, ``generator`` the
``torch.Generator`` that draws them (at ``temperature``). The loss is a scalar, summed over the
answer tokens and averaged over the batch ("batchmean": per sequence). Every full-vocabulary loss is
``kl_core.tokens.token_divergence`` on the answer positions (teacher = p, student = q).

Where the answers come from -- the teacher (off-policy: a fixed "dataset" of teacher samples) or the
student (on-policy) -- is what separates the methods as much as the divergence:

=====================  =======================  ==========================================================
method                 answers sampled from     loss
=====================  =======================  ==========================================================
``sft``                teacher                  -sum_t log S(y_t): maximum likelihood; its expectation is the
                                                sequence-level forward KL plus the teacher's entropy
``forward_kl``         teacher                  sum_t KL(T || S) over the full vocabulary at each prefix;
                                                expectation = sequence-level forward KL (chain rule)
``reverse_kl``         student                  sum_t KL(S || T) at each prefix; its value estimates the
                                                sequence-level reverse KL, its gradient ignores how the
                                                student's choice of prefix changes later terms (as in GKD)
``on_policy_sampled``  student                  REINFORCE on the sampled tokens only, reward
                                                r_t = log T(y_t) - log S(y_t) (below)
``gkd``                student w.p. ``lam``,    generalized JSD(beta) per token (Agarwal et al. 2024, TRL's
                       else teacher             GKDTrainer: ``lmbda``, ``beta``)
``skew_forward_kl``    student w.p. ``lam``     KL(T || alpha T + (1 - alpha) S) per token (DistiLLM, Ko et al.
                       (default 0: teacher)     2024); alpha = 0 is ``forward_kl``
``skew_reverse_kl``    student w.p. ``lam``     KL(S || alpha S + (1 - alpha) T) per token; alpha = 0 is
                       (default 1: student)     ``reverse_kl``
=====================  =======================  ==========================================================

``on_policy_sampled`` uses the **reward-to-go** ``G_t = sum_{s >= t} r_s`` by default (then the
gradient is an unbiased estimate of the gradient of the *sequence-level* reverse KL:
``grad KL(S||T) = -E_S[sum_t grad log S(y_t) G_t]``) and a **leave-one-out baseline** (the mean
``G_t`` of the other sequences of the batch at the same position), which lowers the variance without
bias. ``reward_to_go=False`` gives the per-token reward ``r_t`` alone (lower variance, biased: it
ignores what a token does to later ones). The returned value is the Monte-Carlo (k1) estimate of the
sequence-level reverse KL, ``mean_b sum_t (log S - log T)(y_t)``; its gradient is the REINFORCE one
(the surrogate is added as ``s - s.detach()``).

In GKD "teacher data" are ground-truth outputs of a dataset; with a synthetic teacher they are its
samples. The coin that picks student or teacher answers is drawn from ``generator`` once per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from kl_core.divergences import resolve
from kl_core.lm.sampling import answer_logits, generate
from kl_core.tokens import token_divergence

__all__ = ["Method", "Objective", "METHODS", "resolve_method", "method_loss"]


@dataclass(frozen=True)
class Objective:
    """What a method minimises in expectation: sum over answer positions of the token divergence ``kind``,
    on prefixes from the student with probability ``lam`` and from the teacher otherwise."""

    kind: str
    params: dict[str, float] = field(default_factory=dict)
    lam: float = 0.0


def _sample(
    teacher: nn.Module,
    student: nn.Module,
    prompts: Tensor,
    length: int,
    generator: torch.Generator,
    temperature: float,
    lam: float,
) -> Tensor:
    """Answers from the student with probability ``lam`` (one coin per batch), else from the teacher."""
    if lam >= 1.0:
        on_policy = True
    elif lam <= 0.0:
        on_policy = False
    else:
        on_policy = bool(torch.rand((), generator=generator, device=generator.device) < lam)
    return generate(student if on_policy else teacher, prompts, length, generator=generator, temperature=temperature)


def _token_loss(
    teacher: nn.Module, student: nn.Module, x: Tensor, prompt_length: int, kind: str, **params: float
) -> Tensor:
    with torch.no_grad():
        t_logits = answer_logits(teacher, x, prompt_length)  # (B, L, V)
    s_logits = answer_logits(student, x, prompt_length)  # (B, L, V)
    return token_divergence(t_logits, s_logits, kind, reduction="batchmean", **params)


def sft(
    teacher: nn.Module,
    student: nn.Module,
    prompts: Tensor,
    *,
    length: int,
    generator: torch.Generator,
    temperature: float = 1.0,
) -> Tensor:
    """Maximum likelihood on teacher samples: -mean_b sum_t log S(y_t | y_<t)."""
    x = generate(teacher, prompts, length, generator=generator, temperature=temperature)
    logp = torch.log_softmax(answer_logits(student, x, prompts.shape[1]), -1)  # (B, L, V)
    return -logp.gather(-1, x[:, prompts.shape[1] :, None]).squeeze(-1).sum(-1).mean()


def forward_kl(
    teacher: nn.Module,
    student: nn.Module,
    prompts: Tensor,
    *,
    length: int,
    generator: torch.Generator,
    temperature: float = 1.0,
) -> Tensor:
    """Token-level KL(T || S) over the full vocabulary on teacher-sampled prefixes."""
    x = generate(teacher, prompts, length, generator=generator, temperature=temperature)
    return _token_loss(teacher, student, x, prompts.shape[1], "forward_kl")


def reverse_kl(
    teacher: nn.Module,
    student: nn.Module,
    prompts: Tensor,
    *,
    length: int,
    generator: torch.Generator,
    temperature: float = 1.0,
) -> Tensor:
    """On-policy: token-level KL(S || T) over the full vocabulary on student-sampled prefixes."""
    x = generate(student, prompts, length, generator=generator, temperature=temperature)
    return _token_loss(teacher, student, x, prompts.shape[1], "reverse_kl")


def on_policy_sampled(
    teacher: nn.Module,
    student: nn.Module,
    prompts: Tensor,
    *,
    length: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    reward_to_go: bool = False,
    baseline: bool = True,
) -> Tensor:
    """REINFORCE with per-token reward log T(y_t) - log S(y_t) on the sampled token only (module docstring)."""
    P = prompts.shape[1]
    x = generate(student, prompts, length, generator=generator, temperature=temperature)
    tokens = x[:, P:, None]  # (B, L, 1)
    log_s = torch.log_softmax(answer_logits(student, x, P), -1).gather(-1, tokens).squeeze(-1)  # (B, L)
    with torch.no_grad():
        log_t = torch.log_softmax(answer_logits(teacher, x, P), -1).gather(-1, tokens).squeeze(-1)  # (B, L)
        reward = log_t - log_s  # (B, L)
        ret = reward.flip(1).cumsum(1).flip(1) if reward_to_go else reward  # (B, L)
        B = ret.shape[0]
        if baseline and B > 1:
            ret = ret - (ret.sum(0, keepdim=True) - ret) / (B - 1)  # leave-one-out mean
        kl_k1 = -reward.sum(1).mean()  # Monte-Carlo sequence-level KL(S || T)
    surrogate = -(ret * log_s).sum(1).mean()
    return surrogate - surrogate.detach() + kl_k1


def gkd(
    teacher: nn.Module,
    student: nn.Module,
    prompts: Tensor,
    *,
    length: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    beta: float = 0.5,
    lam: float = 0.5,
) -> Tensor:
    """Generalized JSD(beta) per token; the batch is student-generated with probability ``lam``."""
    x = _sample(teacher, student, prompts, length, generator, temperature, lam)
    return _token_loss(teacher, student, x, prompts.shape[1], "jsd", beta=beta)


def skew_forward_kl(
    teacher: nn.Module,
    student: nn.Module,
    prompts: Tensor,
    *,
    length: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    alpha: float = 0.1,
    lam: float = 0.0,
) -> Tensor:
    """Skew forward KL, KL(T || alpha T + (1 - alpha) S), per token (DistiLLM)."""
    x = _sample(teacher, student, prompts, length, generator, temperature, lam)
    return _token_loss(teacher, student, x, prompts.shape[1], "skew_forward_kl", alpha=alpha)


def skew_reverse_kl(
    teacher: nn.Module,
    student: nn.Module,
    prompts: Tensor,
    *,
    length: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    alpha: float = 0.1,
    lam: float = 1.0,
) -> Tensor:
    """Skew reverse KL, KL(S || alpha S + (1 - alpha) T), per token (DistiLLM)."""
    x = _sample(teacher, student, prompts, length, generator, temperature, lam)
    return _token_loss(teacher, student, x, prompts.shape[1], "skew_reverse_kl", alpha=alpha)


@dataclass(frozen=True)
class Method:
    """A registered method: its loss function, default parameters, a one-line description and its objective."""

    fn: Callable[..., Tensor]
    defaults: dict[str, Any]
    description: str
    objective: Callable[[dict[str, Any]], Objective]  # params -> what the method minimises in expectation

    def __iter__(self):  # unpacks as (fn, defaults, description)
        return iter((self.fn, self.defaults, self.description))


METHODS: dict[str, Method] = {
    "sft": Method(
        sft,
        {},
        "maximum likelihood on teacher samples (sequence-level forward KL, Monte Carlo)",
        lambda p: Objective("forward_kl", {}, 0.0),
    ),
    "forward_kl": Method(
        forward_kl,
        {},
        "full-vocabulary token KL(T||S) on teacher samples (mode-covering)",
        lambda p: Objective("forward_kl", {}, 0.0),
    ),
    "reverse_kl": Method(
        reverse_kl,
        {},
        "full-vocabulary token KL(S||T) on student samples (on-policy, mode-seeking)",
        lambda p: Objective("reverse_kl", {}, 1.0),
    ),
    "on_policy_sampled": Method(
        on_policy_sampled,
        {"reward_to_go": False, "baseline": True},
        "REINFORCE, reward log T - log S of the sampled tokens (sequence-level reverse KL)",
        lambda p: Objective("reverse_kl", {}, 1.0),
    ),
    "gkd": Method(
        gkd,
        {"beta": 0.5, "lam": 0.5},
        "generalized JSD(beta); student samples with probability lam, else teacher (TRL GKD)",
        lambda p: Objective("jsd", {"beta": p["beta"]}, p["lam"]),
    ),
    "skew_forward_kl": Method(
        skew_forward_kl,
        {"alpha": 0.1, "lam": 0.0},
        "KL(T || aT + (1-a)S) per token (DistiLLM); student samples with probability lam",
        lambda p: Objective("skew_forward_kl", {"alpha": p["alpha"]}, p["lam"]),
    ),
    "skew_reverse_kl": Method(
        skew_reverse_kl,
        {"alpha": 0.1, "lam": 1.0},
        "KL(S || aS + (1-a)T) per token (DistiLLM); student samples with probability lam",
        lambda p: Objective("skew_reverse_kl", {"alpha": p["alpha"]}, p["lam"]),
    ),
}


def resolve_method(name: str, params: Mapping[str, Any] | None = None) -> tuple[Method, dict[str, Any]]:
    """Look up a method and validate its parameters (defaults filled in); ValueError names what is wrong."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    method = METHODS[name]
    params = dict(params or {})
    unknown = set(params) - set(method.defaults)
    if unknown:
        allowed = ", ".join(method.defaults) or "none"
        raise ValueError(f"{name}: unknown parameter(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    out = {**method.defaults, **params}
    for key, value in out.items():
        if isinstance(method.defaults[key], bool):
            if not isinstance(value, bool):
                raise ValueError(f"{name}: {key} must be True or False, got {value!r}")
        elif key == "lam":
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name}: lam must be in [0, 1], got {value!r}")
            out[key] = float(value)
    obj = method.objective(out)
    resolve(obj.kind, obj.params)  # validates beta / alpha against the divergence registry
    return method, out


def method_loss(
    name: str,
    teacher: nn.Module,
    student: nn.Module,
    prompts: Tensor,
    *,
    length: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    **params: Any,
) -> Tensor:
    """``METHODS[name]`` with validated parameters: the loss of one batch."""
    method, par = resolve_method(name, params)
    return method.fn(teacher, student, prompts, length=length, generator=generator, temperature=temperature, **par)
