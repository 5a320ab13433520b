"""The guided lesson: eight steps from "what is distillation" to small language models, computed live.

Each :class:`Step` holds its text and explanation as templates whose numbers are filled from a
live kl_core computation (``step.facts()``), a predict-then-reveal question, and a figure built
from the same computation. The app's "Start here" page and the static site (:mod:`kl_core.site`)
both render these steps, so a number in the text is always the number the figure shows. The lesson
opens with the remark that started it (:func:`opening`) and closes with a recap built from the
learner's answers (:func:`recap`).

Teacher = p, student = q throughout, in the text and in the figures (:data:`NOTATION`);
forward KL = KL(p‖q), reverse KL = KL(q‖p).

Examples:
    >>> from kl_core.lesson import STEPS
    >>> STEPS[2].key, STEPS[2].choices[STEPS[2].answer]
    ('reverse', 'On the right bump, narrow')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any

import numpy as np
import plotly.graph_objects as go

from kl_core.distributions import Gaussian
from kl_core.divergences import divergence
from kl_core.fitting import fit
from kl_core.landscape import landscape
from kl_core.metrics import LOW_DENSITY, low_density_mass, summarize
from kl_core.presets import get_preset
from kl_core.rl import PPORun, ppo_demo
from kl_core.viz import Run, animation_1d, motion_steps, sweep_figure
from kl_core.viz.lesson import candidates_figure, first_frame, pair_bars_figure, rlhf_figure

__all__ = ["Step", "STEPS", "get_step", "N_STEPS", "Opening", "opening", "Recap", "RecapRow", "recap", "ONE_LINE"]

Facts = Mapping[str, Any]

# the settings of every 1-D fit in the lesson: the 1-D lab's defaults, so its page shows the same numbers
TEACHER = "bimodal"  # 0.5 N(-3, 1) + 0.5 N(3, 1); its preset student N(2, 1) is start 0
STEPS_1D, LR, INITS, SEED = 400, 0.05, 8, 0
N_FRAMES = 40  # frames per animation: smooth enough, and keeps each figure well under 1 MB
MC_SAMPLES = 256  # samples per step of the Monte-Carlo (on-/off-policy) fits
BETAS = tuple(round(float(b), 4) for b in np.linspace(0.0, 1.0, 9))  # the swept JSD β values
TOKENS = "city_tokens"
NOTATION = ("p", "q")  # (teacher, student) letters in the lesson's text and in its figures' titles
# PPO on the RL page's default bandit (app/state.py's rl_* defaults), so "Explore" shows the same run
PPO = dict(arms=24, tilt=1.0, beta=0.5, updates=100, batch=128, epochs=4, clip=0.2, lr=0.02, seed=0)


@dataclass(frozen=True)
class Step:
    """One step of the lesson: text, a question with one right answer, an explanation and a figure.

    ``body`` and ``why`` are markdown templates (``str.format`` fields) filled from
    ``compute()``, a cached live kl_core computation; ``draw`` builds the figure from the same
    facts, ``draw_preview`` the picture shown before the answer (default: the figure's first frame).
    """

    key: str  # short stable name (the site's file name)
    title: str
    body: str  # markdown template, e.g. "the student's mean is {rev_mean:+.2f}"
    question: str
    choices: tuple[str, ...]
    answer: int  # index into choices
    why: str  # markdown template of the explanation shown after answering
    compute: Callable[[], Facts] = field(repr=False)
    draw: Callable[[Facts], go.Figure] = field(repr=False)
    draw_preview: Callable[[Facts], go.Figure] | None = field(default=None, repr=False)
    links: tuple[tuple[str, str], ...] = ()  # (app page file stem, label): where to explore further
    outcome: str = ""  # one-line template of what happened (the recap's "what happened" column)
    draw_extra: Callable[[Facts], go.Figure] | None = field(default=None, repr=False)  # a second figure
    extra_outcome: str = ""  # one-line template of what the second figure shows (its caption)
    preview_alt: str = "The starting point, before training."  # what the "before" picture shows (its caption)

    def __post_init__(self) -> None:
        if len(self.choices) < 2:
            raise ValueError(f"step {self.key!r} needs at least two choices, got {len(self.choices)}")
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(f"step {self.key!r}: answer must be in [0, {len(self.choices) - 1}], got {self.answer}")

    def facts(self) -> Facts:
        """The live numbers (and fitted objects) of this step, computed once per process."""
        return self.compute()

    def text(self) -> str:
        """The step's markdown, its numbers filled in."""
        return self.body.format_map(self.facts())

    def explanation(self) -> str:
        """What happened and why (markdown, numbers filled in)."""
        return self.why.format_map(self.facts())

    def result(self) -> str:
        """What happened, in one line (numbers filled in)."""
        return self.outcome.format_map(self.facts())

    def figure(self) -> go.Figure:
        """The step's figure (animated ones show their last frame; Play replays them)."""
        return self.draw(self.facts())

    def extra_result(self) -> str:
        """What the second figure shows, in one line (numbers filled in; empty without one)."""
        return self.extra_outcome.format_map(self.facts())

    def extra_figure(self) -> go.Figure | None:
        """The step's second figure, shown after the explanation (None if it has none)."""
        return None if self.draw_extra is None else self.draw_extra(self.facts())

    def preview(self) -> go.Figure:
        """The picture before the answer: the starting point, without the result."""
        if self.draw_preview is not None:
            return self.draw_preview(self.facts())
        return first_frame(self.figure(), keep_controls=False)

    def is_correct(self, choice: int) -> bool:
        return choice == self.answer


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def _frozen(**facts: Any) -> Facts:
    return MappingProxyType(facts)


def _num(x: float, digits: int = 2) -> float:
    """Rounded, without a negative zero (so "+0.00", never "-0.00", for a student centred at 0)."""
    return round(float(x), digits) + 0.0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _shape() -> dict[str, float]:
    """The two-bump teacher's bumps and the preset's start, for the text."""
    preset = get_preset(TEACHER)
    _, means, covs = preset.teacher.components()
    return {
        "m_left": _num(means[0, 0], 1),
        "m_right": _num(means[1, 0], 1),
        "bump_std": _num(math.sqrt(covs[1, 0, 0]), 1),
        "start_mean": _num(preset.student.mean),
        "start_std": _num(preset.student.std),
        "low_density": LOW_DENSITY,
    }


def _where(summary) -> str:
    """Where one 1-D student sits against the two-bump teacher, in words."""
    if summary.n_modes_covered == 1:
        return "on the left bump" if summary.dominant_mode == 0 else "on the right bump"
    return "wide, covering both bumps" if summary.n_modes_covered == 2 else "between the bumps"


def _placement(summaries: list) -> tuple[int, int, int]:
    """(left bump, right bump, between) counts of 1-D students against the two-bump teacher: covering only
    the left mode, only the right one, or not one alone (both, wide between them; or none, in the gap)."""
    left = sum(1 for s in summaries if s.modes_covered == (0,))
    right = sum(1 for s in summaries if s.modes_covered == (1,))
    return left, right, sum(1 for s in summaries if s.n_modes_covered != 1)


# ----------------------------------------------------------------------------------------------
# The live computations (cached: the page, the site and the tests share one result per process)
# ----------------------------------------------------------------------------------------------


@cache
def _bimodal(objective: str, inits: int) -> tuple[Any, list]:
    """The 1-D lab's default experiment: one fit of the two-bump teacher, and each final student's summary."""
    preset = get_preset(TEACHER)
    traj = fit(preset.teacher, preset.student, objective, steps=STEPS_1D, lr=LR, inits=inits, seed=SEED)
    return traj, [summarize(preset.teacher, s) for s in traj.final]


@cache
def _distillation() -> Facts:
    teacher = get_preset(TEACHER).teacher
    wide = Gaussian(float(teacher.mean), math.sqrt(teacher.variance))  # the moment-matched Gaussian
    _, means, covs = teacher.components()
    narrow = Gaussian(float(means[1, 0]), math.sqrt(covs[1, 0, 0]))  # exactly the right bump
    kls = [(divergence(teacher, q, "forward_kl"), divergence(teacher, q, "reverse_kl")) for q in (wide, narrow)]
    return _frozen(
        **_shape(),
        teacher=teacher,
        a=wide,
        b=narrow,
        a_mean=_num(wide.mean),
        a_std=_num(wide.std),
        b_mean=_num(narrow.mean),
        b_std=_num(narrow.std),
        a_fwd=kls[0][0],
        a_rev=kls[0][1],
        b_fwd=kls[1][0],
        b_rev=kls[1][1],
        kls=tuple(kls),
        fwd_pick="A" if kls[0][0] < kls[1][0] else "B",
        rev_pick="A" if kls[0][1] < kls[1][1] else "B",
    )


@cache
def _forward_facts() -> Facts:
    traj, summaries = _bimodal("forward_kl", INITS)
    teacher = get_preset(TEACHER).teacher
    s0 = summaries[0]
    covering = sum(1 for s in summaries if s.n_modes_covered == 2)  # "end covering both bumps"
    return _frozen(
        **_shape(),
        teacher=teacher,
        traj=traj,
        inits=INITS,
        steps=STEPS_1D,
        fwd_mean=_num(s0.mean),
        fwd_std=_num(s0.std),
        teacher_mean=_num(teacher.mean),
        teacher_std=_num(math.sqrt(teacher.variance)),
        fwd_gap=s0.low_density_mass,
        fwd_cover=covering,
        stds_low=_num(min(s.std for s in summaries)),
        stds_high=_num(max(s.std for s in summaries)),
    )


@cache
def _reverse_facts() -> Facts:
    traj, (s0,) = _bimodal("reverse_kl", 1)
    fwd_traj, fwd_summaries = _bimodal("forward_kl", INITS)
    return _frozen(
        **_shape(),
        teacher=get_preset(TEACHER).teacher,
        traj=traj,
        rev_mean=_num(s0.mean),
        rev_std=_num(s0.std),
        rev_gap=s0.low_density_mass,
        fwd_gap=fwd_summaries[0].low_density_mass,
        rev_kl=s0.reverse_kl,
        rev_fwd=s0.forward_kl,
        ln2=math.log(2.0),
        rev_where=_where(s0),
    )


@cache
def _both_facts() -> Facts:
    teacher = get_preset(TEACHER).teacher
    fwd, fwd_summaries = _bimodal("forward_kl", INITS)
    rev, rev_summaries = _bimodal("reverse_kl", INITS)
    left, right, middle = _placement(rev_summaries)
    parts = [f"{left} on the left bump", f"{right} on the right bump"]
    if middle:
        parts.append(f"{middle} stuck wide between them")
    fwd_minima = landscape(teacher, "forward_kl", n=80).minima
    rev_minima = landscape(teacher, "reverse_kl", n=80).minima
    narrow = [m for m in rev_minima if m.std < 1.5]
    wide = [m for m in rev_minima if m.std >= 1.5]
    rev_min_text = f"one on each bump (loss {narrow[0].value:.3f})" if len(narrow) == 2 else "narrow ones"
    if wide:
        rev_min_text += f", plus a wide one between them (std {wide[0].std:.2f}, loss {wide[0].value:.3f})"
    return _frozen(
        **_shape(),
        teacher=teacher,
        fwd=fwd,
        rev=rev,
        inits=INITS,
        seed=SEED,
        fwd_cover=sum(1 for s in fwd_summaries if s.n_modes_covered == 2),
        rev_left=left,
        rev_right=right,
        rev_middle=middle,
        rev_split=_join(parts),
        n_fwd_min=len(fwd_minima),
        n_rev_min=len(rev_minima),
        rev_minima=rev_min_text,
    )


@cache
def _family_facts() -> Facts:
    preset = get_preset(TEACHER)
    fits = [
        (beta, fit(preset.teacher, preset.student, "jsd", steps=STEPS_1D, lr=LR, inits=1, seed=SEED, beta=beta))
        for beta in BETAS
    ]
    stds = [traj.final[0].std for _, traj in fits]
    means = [traj.final[0].mean for _, traj in fits]
    narrow = [i for i, s in enumerate(stds) if s < 1.5]  # on a bump (each bump has std 1)
    first = narrow[0] if narrow else len(BETAS)
    switches = sum(1 for a, b in zip(stds, stds[1:]) if (a < 1.5) != (b < 1.5))
    return _frozen(
        **_shape(),
        teacher=preset.teacher,
        fits=fits,
        n_values=len(BETAS),
        stds=tuple(stds),
        means=tuple(means),
        switches=switches,
        last_wide=BETAS[first - 1] if first > 0 else math.nan,
        wide_std=_num(stds[first - 1]) if first > 0 else math.nan,
        first_narrow=BETAS[first] if first < len(BETAS) else math.nan,
        narrow_std=_num(stds[first]) if first < len(BETAS) else math.nan,
        narrow_mean=_num(means[first]) if first < len(BETAS) else math.nan,
    )


def _pair_names() -> list[str]:
    first, second = get_preset(TOKENS).labels
    return [f"{a} {b}" for a in first for b in second]


@cache
def _token_fit(objective: str, beta: float | None = None, inits: int | None = None) -> Any:
    preset = get_preset(TOKENS)
    settings = dict(preset.settings)
    if inits is not None:
        settings["inits"] = inits
    params = {} if beta is None else {"beta": beta}
    return fit(preset.teacher, preset.student, objective, seed=SEED, **settings, **params)


@cache
def _tokens_facts() -> Facts:
    preset = get_preset(TOKENS)
    p = preset.teacher.probs  # (3, 3): first token x second token
    names = _pair_names()
    valid = np.eye(3, dtype=bool).ravel()
    fwd, rev = _token_fit("forward_kl"), _token_fit("reverse_kl")
    q_fwd, q_rev = fwd.final[0].table(), rev.final[0].table()
    rev_best = int(np.argmax(q_rev))
    picked = [names[int(np.argmax(q.table()))] for q in rev.final]
    counts = {n: picked.count(n) for n in dict.fromkeys(picked)}
    marg = fwd.final[0].marginals()
    return _frozen(
        teacher=preset.teacher,
        labels=names,
        valid=valid,
        fwd=fwd,
        rev=rev,
        p_ny=p[0, 0],
        p_la=p[1, 1],
        p_sf=p[2, 2],
        floor=p[0, 1],
        teacher_invalid=float(p.ravel()[~valid].sum()),
        fwd_first=", ".join(f"{w} {v:.0%}" for w, v in zip(preset.labels[0], marg[0])),
        fwd_second=", ".join(f"{w} {v:.0%}" for w, v in zip(preset.labels[1], marg[1])),
        fwd_new_angeles=float(q_fwd[0, 1]),
        fwd_invalid=float(q_fwd.ravel()[~valid].sum()),
        fwd_gap=low_density_mass(preset.teacher, fwd.final[0]),
        rev_city=names[rev_best],
        rev_city_p=float(q_rev.ravel()[rev_best]),
        rev_invalid=float(q_rev.ravel()[~valid].sum()),
        inits=rev.inits,
        rev_cities=_join([f"{n} {_count(c, 'time')}" for n, c in counts.items()]),
    )


@cache
def _on_policy_facts() -> Facts:
    preset = get_preset(TEACHER)
    teacher, start = preset.teacher, preset.student
    common = dict(steps=STEPS_1D, lr=LR, inits=1, seed=SEED, estimator="mc", n=MC_SAMPLES)
    off = fit(teacher, start, "forward_kl", sampler="teacher", **common)
    on = fit(teacher, start, "reverse_kl", sampler="student", gradient="score", **common)
    exact, _ = _bimodal("reverse_kl", 1)
    q_on = on.final[0]
    mc = divergence(teacher, q_on, "reverse_kl", method="mc", n=4096, seed=SEED)  # E_q[log q - log p]

    # KL-regularised RL: PPO on the RL page's bandit, the KL penalty as k1 in the reward or k3 as a loss
    k1, k3 = _ppo("k1_reward"), _ppo("k3_loss")
    bandit = k1.bandit
    bound = bandit.beta * bandit.log_normaliser  # the maximum of E[r] - beta KL(pi || pi_ref), at pi*
    return _frozen(
        **_shape(),
        teacher=teacher,
        off=off,
        on=on,
        n=MC_SAMPLES,
        off_mean=_num(off.final[0].mean),
        off_std=_num(off.final[0].std),
        on_mean=_num(q_on.mean),
        on_std=_num(q_on.std),
        rev_mean=_num(exact.final[0].mean),
        rev_std=_num(exact.final[0].std),
        on_where=_where(summarize(teacher, q_on)),
        mc_n=mc.n,
        mc_value=mc.value,
        mc_se=mc.stderr,
        exact=divergence(teacher, q_on, "reverse_kl"),
        k1=k1,
        k3=k3,
        arms=len(bandit.x),
        rl_beta=bandit.beta,
        updates=len(k1.objective) - 1,
        bound=bound,
        k1_objective=float(k1.objective[-1]),
        k3_objective=float(k3.objective[-1]),
        k1_kl=float(k1.kl_optimum[-1]),
        k3_kl=float(k3.kl_optimum[-1]),
        start_kl=float(k1.kl_optimum[0]),
        k3_target_kl=float(k3.kl_target[-1]),
    )


@cache
def _ppo(kl_penalty: str) -> PPORun:
    return ppo_demo(kl_penalty=kl_penalty, **PPO)


def _effective_answers(table: np.ndarray, valid: np.ndarray) -> float:
    """exp(entropy) of the valid answers, renormalised: how many different valid answers, in effect."""
    v = table.ravel()[valid]
    v = v / v.sum()
    return float(np.exp(-np.sum(np.where(v > 0, v * np.log(v), 0.0))))


@cache
def _language_facts() -> Facts:
    preset = get_preset(TOKENS)
    valid = np.eye(3, dtype=bool).ravel()
    tables = [_token_fit("jsd", beta=b, inits=1).final[0].table() for b in BETAS]
    valid_rate = [float(t.ravel()[valid].sum()) for t in tables]
    effective = [_effective_answers(t, valid) for t in tables]
    return _frozen(
        teacher=preset.teacher,
        labels=_pair_names(),
        valid=valid,
        tables=tuple(tables),
        n_values=len(BETAS),
        valid0=valid_rate[0],
        valid1=valid_rate[-1],
        eff0=effective[0],
        eff1=effective[-1],
        eff_teacher=_effective_answers(preset.teacher.probs, valid),
        valid_rate=tuple(valid_rate),
        effective=tuple(effective),
    )


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------


def _candidates(f: Facts, with_kls: bool) -> go.Figure:
    candidates = [("A: wide", f["a"]), ("B: on a bump", f["b"])]
    return candidates_figure(f["teacher"], candidates, f["kls"] if with_kls else None)


def _fits(f: Facts, *runs: Run) -> go.Figure:
    """The 1-D lab's animation of ``runs``, titled in the lesson's notation (p·log(p/q), not T·log(T/S))."""
    return animation_1d(f["teacher"], list(runs), n_frames=N_FRAMES, notation=NOTATION)


def _rlhf(f: Facts) -> go.Figure:
    return rlhf_figure(
        [
            ("PPO, k1 in the reward", "reverse_kl", f["k1"]),
            ("PPO, k3 as a loss", "forward_kl", f["k3"]),
        ]
    )


def _token_bars(f: Facts) -> go.Figure:
    fwd, rev = f["fwd"], f["rev"]
    # frames spread over the students' movement (most of it is early), each named by its real step
    steps = motion_steps([Run("forward_kl", {}, fwd), Run("reverse_kl", {}, rev)], N_FRAMES)
    students = [
        (name, kind, np.array([traj.student(min(int(s), traj.steps), 0).table().ravel() for s in steps]))
        for name, kind, traj in (("forward-KL student", "forward_kl", fwd), ("reverse-KL student", "reverse_kl", rev))
    ]
    return pair_bars_figure(
        f["labels"],
        f["teacher"].probs.ravel(),
        students,
        [str(int(s)) for s in steps],
        prefix="step ",
        valid=f["valid"],
    )


def _beta_bars(f: Facts) -> go.Figure:
    probs = np.array([t.ravel() for t in f["tables"]])
    return pair_bars_figure(
        f["labels"],
        f["teacher"].probs.ravel(),
        [("student q, JSD β", "jsd", probs)],
        [f"{b:g}" for b in BETAS],
        prefix="β = ",
        valid=f["valid"],
        frame_ms=500,
    )


# ----------------------------------------------------------------------------------------------
# The steps
# ----------------------------------------------------------------------------------------------

STEPS: tuple[Step, ...] = (
    Step(
        key="distillation",
        title="What distillation is",
        body=(
            "A big **teacher** p is too slow to serve, so a small **student** q is trained to imitate it: to make a "
            "divergence between p and q small. The usual one is the Kullback–Leibler divergence, "
            "KL(p‖q) = E_p[log p(x) − log q(x)]: zero when q = p, positive otherwise.\n\n"
            "Here the teacher p has two bumps, at {m_left:+g} and {m_right:+g}. The student q is a single "
            "Gaussian, so it **cannot** copy p: it must compromise. Candidate **A** is wide "
            "(mean {a_mean:+.2f}, std {a_std:.2f}); candidate **B** sits on the right bump "
            "(mean {b_mean:+.2f}, std {b_std:.2f})."
        ),
        question="Which candidate is closer to the teacher?",
        choices=("A, the wide one", "B, the one on a bump", "It depends on the order of p and q in the KL"),
        answer=2,
        why=(
            "KL is not symmetric. Measured as **forward KL**, KL(p‖q), A scores {a_fwd:.2f} nats and B "
            "{b_fwd:.2f}: B gives almost no probability to the left bump, where p has half its mass. Measured "
            "as **reverse KL**, KL(q‖p), A scores {a_rev:.2f} and B only {b_rev:.2f} (about ln 2: B is exactly "
            "one half of p, and ignoring the other half costs log 2). Which student you get depends on which "
            "direction you minimise: the rest of this lesson is about that choice."
        ),
        compute=_distillation,
        preview_alt="The teacher p and the two candidate students A and B, before they are scored.",
        draw=lambda f: _candidates(f, True),
        draw_preview=lambda f: _candidates(f, False),
        links=(("theory", "Theory: the definitions"),),
        outcome=(
            "forward KL prefers {fwd_pick} ({a_fwd:.2f} vs {b_fwd:.2f} nats for A vs B), reverse KL prefers "
            "{rev_pick} ({a_rev:.2f} vs {b_rev:.2f}): the order of p and q decides"
        ),
    ),
    Step(
        key="forward",
        title="Forward KL covers",
        body=(
            "**Forward KL**, KL(p‖q) = E_p[log p − log q], averages over the **teacher's** samples. Minimising "
            "it is maximum likelihood on teacher data: classic distillation and SFT on teacher outputs (the "
            "cross-entropy with the teacher's soft labels differs from it only by p's entropy, a constant). "
            "Wherever p > 0 but q ≈ 0, −log q explodes: the student is punished for missing anything the "
            "teacher does.\n\n"
            "Below, {inits} students start at different places (start 0 at {start_mean:+g}) and minimise KL(p‖q) for "
            "{steps} steps. Row 2 shows where the penalty p·log(p/q) comes from."
        ),
        question="Where do the forward-KL students end up?",
        choices=(
            "On one bump each, depending on where each starts",
            "On the left bump, all of them",
            "Wide, in the middle, covering both bumps",
        ),
        answer=2,
        why=(
            "{fwd_cover} of {inits} starts end covering both bumps; start 0 ends at mean {fwd_mean:+.2f}, std "
            "{fwd_std:.2f}, the teacher's own mean and std ({teacher_mean:+.2f}, {teacher_std:.2f}). For a Gaussian "
            "student forward KL is solved by **moment matching**. The price: {fwd_gap:.0%} of the student's mass "
            "lies where the teacher has almost none (below {low_density:.0%} of its peak density), mostly in the "
            "gap between the bumps. Forward KL is **mode-covering**: it keeps everything and blurs it."
        ),
        compute=_forward_facts,
        draw=lambda f: _fits(f, Run("forward_kl", {}, f["traj"])),
        links=(("lab_1d", "1-D lab: try other teachers"),),
        outcome=(
            "{fwd_cover} of {inits} forward-KL starts ended covering both bumps; start 0 at mean {fwd_mean:+.2f}, "
            "std {fwd_std:.2f}"
        ),
    ),
    Step(
        key="reverse",
        title="Reverse KL seeks",
        body=(
            "**Reverse KL** swaps the roles: KL(q‖p) = E_q[log q − log p] averages over the **student's own** "
            "samples. Where q > 0 but p ≈ 0, −log p explodes: the student is punished for putting mass where the "
            "teacher has none, and it costs little to ignore part of the teacher.\n\n"
            "The student starts at mean {start_mean:+.2f}, std {start_std:.2f}, a little right of the middle."
        ),
        question="Where does the reverse-KL student end up?",
        choices=(
            "Wide, in the middle, like forward KL",
            "On the right bump, narrow",
            "On the right, but wide enough to reach the left bump too",
        ),
        answer=1,
        why=(
            "It ends at mean {rev_mean:+.2f}, std {rev_std:.2f}: almost exactly the right bump "
            "(mean {m_right:+g}, std {bump_std:g}). "
            "Only {rev_gap:.1%} of its mass lies where the teacher has almost none (forward KL: {fwd_gap:.0%}). "
            "Its reverse KL is {rev_kl:.3f}, close to ln 2 = {ln2:.3f}: dropping half of the teacher costs only "
            "log 2. Scored by forward KL it would get {rev_fwd:.2f}. Reverse KL is **mode-seeking**: sharp and valid, "
            "but it has dropped a mode."
        ),
        compute=_reverse_facts,
        draw=lambda f: _fits(f, Run("reverse_kl", {}, f["traj"])),
        links=(("landscape", "Loss landscape: why it stops there"),),
        outcome="the reverse-KL student ended {rev_where}: mean {rev_mean:+.2f}, std {rev_std:.2f}",
    ),
    Step(
        key="both",
        title="Side by side: the start decides",
        body=(
            "Same teacher, same {inits} starts (start 0 at {start_mean:+g}, the others random with seed {seed}), both "
            "objectives, one column each. Press Play to watch them train."
        ),
        question=f"What happens to the {INITS} starts?",
        choices=(
            "Under both objectives every start reaches the same answer",
            "Forward KL brings every start to one answer; under reverse KL the answer depends on the start",
            "Reverse KL brings every start to one answer; under forward KL the answer depends on the start",
        ),
        answer=1,
        why=(
            "Forward KL: {fwd_cover} of {inits} starts end covering both bumps. Reverse KL: {rev_split}. "
            "The forward-KL loss over the student's (mean, std) has {n_fwd_min} minimum; the reverse-KL loss has "
            "{n_rev_min}: {rev_minima}. Gradient descent ends in the basin it starts in. So a reverse-KL "
            "student's answer depends on its initialisation: for a language model, on the pretrained model "
            "you start from."
        ),
        compute=_both_facts,
        draw=lambda f: _fits(f, Run("forward_kl", {}, f["fwd"]), Run("reverse_kl", {}, f["rev"])),
        links=(("landscape", "Loss landscape: the basins"), ("lab_1d", "1-D lab")),
        outcome="forward KL: {fwd_cover} of {inits} starts cover both bumps; reverse KL: {rev_split}",
    ),
    Step(
        key="family",
        title="The family in between",
        body=(
            "Forward and reverse KL are the two ends of families of divergences. The generalized Jensen–Shannon "
            "divergence of GKD (on-policy distillation of language models) mixes the two, M = β·p + (1−β)·q, "
            "JSD_β = β·KL(p‖M) + (1−β)·KL(q‖M): β = 0 is forward KL and β = 1 reverse KL (by convention, as "
            "in TRL). Amari's α-divergence does the same as α goes from 1 to 0.\n\n"
            "Below, the student starting at {start_mean:+g} is fitted for {n_values} values of β from 0 to 1; drag the "
            "slider or press Play."
        ),
        question="As β goes from 0 (forward KL) to 1 (reverse KL), how does the fitted student change?",
        choices=(
            "It narrows smoothly, a little more at each β",
            "It stays wide, then jumps onto a bump at some β",
            "It stays wide for every β below 1: only reverse KL itself seeks",
        ),
        answer=1,
        why=(
            "Up to β = {last_wide:g} the student stays wide (std {wide_std:.2f}); from β = {first_narrow:g} on it "
            "sits on a bump (mean {narrow_mean:+.2f}, std {narrow_std:.2f}). In between, the objective has a wide "
            "and a narrow minimum, and which one gradient descent reaches from this start switches abruptly, not "
            "gradually. Where the switch happens depends on the teacher and the start: GKD's β is a dial "
            "between coverage and precision, but not a linear one."
        ),
        compute=_family_facts,
        draw=lambda f: sweep_figure(f["teacher"], f["fits"], "beta"),
        links=(("family", "Divergence family: sweep α or β yourself"),),
        outcome=(
            "wide (std {wide_std:.2f}) up to β = {last_wide:g}, on a bump (std {narrow_std:.2f}) from β = "
            "{first_narrow:g}"
        ),
    ),
    Step(
        key="tokens",
        title="Tokens: New Angeles",
        body=(
            "A language model distils token by token. Take a two-token answer to *name a big US city*: the "
            "teacher says *New York* ({p_ny:.0%}), *Los Angeles* ({p_la:.0%}) or *San Francisco* ({p_sf:.0%}); "
            "each mixed pair such as *New Angeles* gets {floor:.1%}. The student is **factorised**: it picks the "
            "first and the second token independently, q(x₁, x₂) = q₁(x₁)·q₂(x₂). Like a small model, it cannot "
            "represent everything the teacher knows (here: the second word must match the first)."
        ),
        question="Trained with forward KL, how often does the factorised student produce an invalid pair?",
        choices=(
            "Almost never: it learns the valid pairs",
            "Often: most of its answers are invalid pairs",
            "Exactly as often as the teacher does",
        ),
        answer=1,
        why=(
            "Forward KL makes each position match the teacher's marginals (first: {fwd_first}; second: "
            "{fwd_second}), so the student says *New Angeles* {fwd_new_angeles:.1%} of the time and an invalid "
            "pair {fwd_invalid:.0%} of the time (the teacher: {teacher_invalid:.1%}). The reverse-KL student "
            "commits to one city instead: *{rev_city}* with probability {rev_city_p:.1%}, invalid pairs "
            "{rev_invalid:.1%}. Across {inits} starts it picked {rev_cities}: which city depends on the start, "
            "exactly like the bumps."
        ),
        compute=_tokens_facts,
        draw=_token_bars,
        links=(("tokens", "Token lab"),),
        outcome=(
            "forward KL: an invalid pair {fwd_invalid:.0%} of the time; reverse KL: {rev_invalid:.1%}, committed "
            "to {rev_city}"
        ),
    ),
    Step(
        key="on_policy",
        title="Why on-policy distillation and RL are reverse KL",
        body=(
            "How you **sample** decides the direction. Off-policy distillation (SFT) trains on teacher samples "
            "x ∼ p: minimising E_p[−log q(x)] is forward KL. **On-policy distillation** lets the student write "
            "its own x ∼ q; the teacher grades each with log p(x), and the student lowers "
            "E_q[log q(x) − log p(x)], which is by definition **KL(q‖p), reverse KL**. Read it as RL: reward "
            "log p(x), plus an entropy bonus, trained with the policy gradient (REINFORCE, PPO).\n\n"
            "KL-regularised RL (RLHF) has the same shape: maximising E_q[r] − β·KL(q‖π_ref) equals "
            "−β·KL(q‖π*) + β·log Z with π* ∝ π_ref·exp(r/β), so it fits q to π* by **reverse KL**, whatever "
            "the reward. Below, both sampling schemes train the same student from {start_mean:+g}, {n} samples "
            "per step."
        ),
        question=(
            "The on-policy student samples its own x and learns from the teacher's grades with REINFORCE. "
            "Where does it end up?"
        ),
        choices=(
            "Wide, in the middle, like off-policy distillation",
            "On a single bump, like reverse KL",
            "Nowhere in particular: REINFORCE is too noisy to converge",
        ),
        answer=1,
        why=(
            "Off-policy (teacher samples): mean {off_mean:+.2f}, std {off_std:.2f}, the forward-KL answer. "
            "On-policy (REINFORCE): mean {on_mean:+.2f}, std {on_std:.2f}, the reverse-KL answer (exact reverse "
            "KL from the same start: mean {rev_mean:+.2f}, std {rev_std:.2f}). Its on-policy loss, estimated from "
            "{mc_n} of its own samples, is {mc_value:.3f} ± {mc_se:.3f}; the exact KL(q‖p) is {exact:.3f}.\n\n"
            "**RLHF, drawn below.** PPO on a {arms}-response bandit with β = {rl_beta:g} starts at π_ref "
            "(KL(π‖π*) = {start_kl:.3f}). The KL penalty can enter in two ways. With k1 = log(π/π_ref) in the "
            "reward (InstructGPT, TRL), PPO ends at KL(π‖π*) = {k1_kl:.4f}: on π*, the reverse-KL answer, with "
            "objective {k1_objective:.4f} against the maximum β·log Z = {bound:.4f}. With k3 as a loss (GRPO) the "
            "gradient is the *forward* KL's, so PPO ends elsewhere (KL(π‖π*) = {k3_kl:.3f}, objective "
            "{k3_objective:.4f}): it settles where E[r] − β·KL(π_ref‖π) is largest (KL(π‖that point) = "
            "{k3_target_kl:.4f}). "
            "RL with a KL penalty and on-policy distillation are the same reverse-KL problem."
        ),
        compute=_on_policy_facts,
        draw=lambda f: _fits(
            f,
            Run("forward_kl", {}, f["off"], label="off-policy: teacher samples (SFT)"),
            Run("reverse_kl", {}, f["on"], label="on-policy: student samples, REINFORCE"),
        ),
        draw_extra=_rlhf,
        extra_outcome=(
            "PPO from π_ref (KL(π‖π*) = {start_kl:.3f}) for {updates} updates: with k1 in the reward it ends at "
            "KL(π‖π*) = {k1_kl:.4f}, on π*; with k3 as a loss at {k3_kl:.3f}, and its objective falls to "
            "{k3_objective:.4f} below the maximum β·log Z = {bound:.4f}"
        ),
        links=(("rl", "RL connection"),),
        outcome=(
            "on-policy REINFORCE ended {on_where} (mean {on_mean:+.2f}, std {on_std:.2f}); off-policy wide (std "
            "{off_std:.2f})"
        ),
    ),
    Step(
        key="language_models",
        title="What it means for a small language model",
        body=(
            "Back to the remark *this is different from previous distillation, reverse KL*: classic distillation "
            "(soft labels, or SFT on teacher outputs) minimises forward KL; on-policy distillation minimises "
            "reverse KL. Both agree when the student can represent the teacher; the direction matters where the "
            "small student must compromise, which for a small language model is almost everywhere.\n\n"
            "Below, the factorised token student of the New Angeles step, fitted with JSD_β for {n_values} "
            "values of β: from forward KL (β = 0, SFT) to reverse KL (β = 1, on-policy)."
        ),
        question="Going from SFT (β = 0) to on-policy distillation (β = 1), what happens to the student's answers?",
        choices=(
            "More valid and more diverse",
            "Less valid, more diverse",
            "More valid, less diverse",
            "Nothing: both learn the teacher",
        ),
        answer=2,
        why=(
            "At β = 0 the student's answers are valid {valid0:.0%} of the time, spread over {eff0:.1f} effective "
            "cities; at β = 1 they are valid {valid1:.1%} of the time, over {eff1:.2f} effective cities (the "
            "teacher: {eff_teacher:.1f}; effective number = exp(entropy) of the valid answers). That is the "
            "trade: on-policy distillation gives a small model answers the teacher would give, confidently, but "
            "fewer of them (mode-seeking); SFT keeps every answer and mixes them into ones the teacher never "
            "gives (mode-covering). A student big enough to condition the second token on the first needs no "
            "compromise."
        ),
        compute=_language_facts,
        draw=_beta_bars,
        links=(("lm", "Language-model lab"),),
        outcome="from β = 0 to β = 1: valid answers {valid0:.0%} → {valid1:.1%}, effective cities {eff0:.1f} → "
        "{eff1:.2f}",
    ),
)

N_STEPS = len(STEPS)


def get_step(number: int) -> Step:
    """Step ``number`` (1-based, as in the URL's ``lesson_step``)."""
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or not 1 <= number <= N_STEPS:
        raise ValueError(f"lesson step must be an integer in [1, {N_STEPS}], got {number!r}")
    return STEPS[number - 1]


# ----------------------------------------------------------------------------------------------
# The opening question and the closing recap
# ----------------------------------------------------------------------------------------------

REMARK = "this is different from previous distillation: reverse KL"
ONE_LINE = (
    "Classic distillation minimises forward KL(p‖q) on the teacher's outputs, so a small student spreads over "
    "everything the teacher says; on-policy distillation minimises reverse KL(q‖p) on the student's own outputs, "
    "so it commits to what the teacher is sure of and drops the rest."
)
_OPENING = (
    "Someone reading about **on-policy distillation** remarked: *“{remark}.”* What they meant is one precise "
    "difference: **whose samples the loss averages over**.\n\n"
    "- **Previous (classic) distillation** trains the student q on what the **teacher** p produces: its soft "
    "labels, or text it wrote (SFT). The loss averages log p(x) − log q(x) over x ∼ p: that is **forward KL, "
    "KL(p‖q)**. Missing anything the teacher says costs without limit (−log q → ∞), so the student stretches to "
    "cover all of it.\n"
    "- **On-policy distillation** lets the **student** write x ∼ q and the teacher grade each token with log p(x). "
    "The loss averages log q(x) − log p(x) over the student's own samples: **reverse KL, KL(q‖p)**. Saying what "
    "the teacher never would costs without limit; leaving out part of what it says costs little. So the student "
    "commits.\n\n"
    "A student that can copy the teacher exactly reaches q = p either way. A small one cannot, and then the "
    "direction decides what it becomes. In this lesson's numbers: forward KL turns a two-bump teacher into one wide "
    "student (std {fwd_std:.2f}) with {fwd_gap:.0%} of its mass where the teacher has almost none; reverse KL picks "
    "one bump (mean {rev_mean:+.2f}, std {rev_std:.2f}) and drops the other. On tokens, the forward-KL student "
    "says an invalid pair such as *New Angeles* {fwd_invalid:.0%} of the time, the reverse-KL one {rev_invalid:.1%}, "
    "but it only ever names one city. And “RL-style” is literal: reverse KL is an RL objective (reward log p, plus "
    "entropy), which is why RLHF's KL penalty lands on it too (step 7). The {n_steps} steps below show each claim, "
    "computed live."
)


@dataclass(frozen=True)
class Opening:
    """The remark the lesson starts from and its answer (markdown, numbers filled from the steps' facts)."""

    remark: str
    question: str
    answer: str


def opening() -> Opening:
    """The question that started it all, answered with this lesson's live numbers."""
    fwd, rev, tok = _forward_facts(), _reverse_facts(), _tokens_facts()
    facts = {
        "remark": REMARK,
        "n_steps": len(STEPS),
        "fwd_std": fwd["fwd_std"],
        "fwd_gap": fwd["fwd_gap"],
        "rev_mean": rev["rev_mean"],
        "rev_std": rev["rev_std"],
        "fwd_invalid": tok["fwd_invalid"],
        "rev_invalid": tok["rev_invalid"],
    }
    return Opening(
        remark=REMARK,
        question=f"What does “{REMARK}” mean?",
        answer=_OPENING.format_map(facts),
    )


@dataclass(frozen=True)
class RecapRow:
    """One step in the recap: the learner's prediction (None if not answered) against what happened."""

    number: int
    key: str
    title: str
    predicted: str | None
    correct: bool | None
    happened: str


@dataclass(frozen=True)
class Recap:
    """The closing card: every step's prediction vs outcome, the score, the one-line answer, where to go next."""

    rows: tuple[RecapRow, ...]
    answered: int
    correct: int
    one_line: str
    next_steps: tuple[tuple[str, str], ...]  # (app page file stem, label)

    @property
    def score(self) -> str:
        """E.g. "6 of 8 predictions right (8 answered)"."""
        return f"{self.correct} of {len(self.rows)} predictions right ({self.answered} answered)"


def recap(answers: Mapping[str, int]) -> Recap:
    """The recap of a learner's ``answers`` (step key -> chosen index; unanswered steps are left out).

    Where to go next: the pages linked from the steps predicted wrongly (or not answered), in
    lesson order, else the labs that take the lesson further.
    """
    known = {s.key for s in STEPS}
    for key, choice in answers.items():
        if key not in known:
            raise ValueError(f"answers: unknown step {key!r}; valid steps: {', '.join(s.key for s in STEPS)}")
        step = BY_KEY[key]
        if isinstance(choice, bool) or not isinstance(choice, (int, np.integer)) or not 0 <= choice < len(step.choices):
            raise ValueError(f"answers[{key!r}] must be an integer in [0, {len(step.choices) - 1}], got {choice!r}")
    rows = []
    for number, step in enumerate(STEPS, start=1):
        choice = answers.get(step.key)
        rows.append(
            RecapRow(
                number=number,
                key=step.key,
                title=step.title,
                predicted=None if choice is None else step.choices[choice],
                correct=None if choice is None else step.is_correct(int(choice)),
                happened=step.result(),
            )
        )
    missed = [link for row in rows if row.correct is not True for link in BY_KEY[row.key].links]
    further = (("lab_1d", "1-D lab: your own teacher"), ("rl", "RL connection"), ("lm", "Language-model lab"))
    first_link: dict[str, tuple[str, str]] = {}
    for page, label in missed or further:  # one link per page, in lesson order
        first_link.setdefault(page, (page, label))
    next_steps = tuple(first_link.values())[:4]
    return Recap(
        rows=tuple(rows),
        answered=sum(r.correct is not None for r in rows),
        correct=sum(r.correct is True for r in rows),
        one_line=ONE_LINE,
        next_steps=next_steps,
    )


BY_KEY = MappingProxyType({s.key: s for s in STEPS})
