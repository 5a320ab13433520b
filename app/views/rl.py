"""Page: reverse KL is RL: gradient estimators, the KL-regularised optimum, k1/k2/k3, PPO with a KL penalty."""

from contextlib import ExitStack

import numpy as np
import pandas as pd
import streamlit as st

from app import export_ui, ui
from app import state as schema
from kl_core import budget, rl
from kl_core.viz.rl import (
    ESTIMATOR_LABELS,
    kl_histogram_figure,
    kl_sweep_figure,
    ppo_figure,
    ppo_kl_figure,
    regularised_figure,
    regularised_rows,
    training_figure,
    variance_figure,
)

cache = st.cache_data(max_entries=32, show_spinner=False)
demo_study, training_curves = cache(rl.demo_study), cache(rl.training_curves)
regularised_fits, ppo_demo = cache(rl.regularised_fits), cache(rl.ppo_demo)
kl_estimator_samples, kl_estimator_sweep = cache(rl.kl_estimator_samples), cache(rl.kl_estimator_sweep)
surrogate_gradients = cache(rl.surrogate_gradients)
MATCH = {"zero": "nothing: 0 in expectation", "reverse_kl": "∇ KL(S‖T), reverse", "forward_kl": "∇ KL(T‖S), forward"}

# the four parts are tabs (and the sidebar's "Part" menu); both write the URL's rl_part
PART_LABELS = dict(schema.FIELDS["rl_part"].labels)  # part -> tab label
PART_OF = {label: part for part, label in PART_LABELS.items()}


def _pair(v) -> str:
    """A gradient as "(-1.000, 0.000)": no numpy brackets ("[-3.171 -0.64 ]"), no -0.000; one style per page."""
    return "(" + ", ".join(f"{round(float(x), 3) + 0.0:.3f}" for x in v) + ")"


def _tab_from_menu() -> None:
    st.session_state["rl_tabs"] = PART_LABELS[st.session_state["w_rl_part"]]


def _menu_from_tab() -> None:
    ui.set_value("rl_part", PART_OF[st.session_state["rl_tabs"]])


state = ui.setup()
exports = {}  # label -> figure, for the Export panel
st.title("Reverse KL is RL")
part = ui.control("rl_part", "select", on_change=_tab_from_menu)
tabs = st.tabs(list(PART_LABELS.values()), key="rl_tabs", default=PART_LABELS[part], on_change=_menu_from_tab)
in_tab = ExitStack()  # the open part's content goes into its tab (only that part is computed)
in_tab.enter_context(tabs[list(PART_LABELS).index(part)])

if part == "gradients":
    st.sidebar.header("Student and training")
    setting = ui.control("rl_setting", "select")
    for name in ("rl_samples", "rl_steps", "rl_lr"):
        ui.control(name)
    ui.control("rl_seed", "number")
    work_s = budget.seconds_rl("gradients", samples=state["rl_samples"], steps=state["rl_steps"])
    if work_s > budget.BUDGET_S:  # every allowed combination fits today (tests/test_app_fuzz.py): a guard
        ui.error(ValueError(f"these settings would take about {work_s:.0f} s; fewer samples or steps"))
    try:
        study = demo_study(setting, state["rl_seed"], reps=200, n=state["rl_samples"])
        curves = training_curves(setting, state["rl_samples"], state["rl_steps"], state["rl_lr"], state["rl_seed"])
    except ValueError as err:
        ui.error(err)
    n = int(state["rl_samples"])  # the text and table quote the n the training curves use
    j = [int(v) for v in study.sizes].index(n)
    var = dict(zip(study.estimators, study.variance[:, j]))
    st.header("1. Reverse KL is maximum-entropy RL")
    st.markdown(
        f"KL(S‖T) = −E_S[log T(x)] − H(S): minimising it maximises the **reward log T(x)** plus an **entropy "
        "bonus**, the objective of maximum-entropy RL. Its gradient can be estimated from student samples: "
        "*pathwise* differentiates through x = m + s·ε (continuous students only); *score function* "
        "(REINFORCE) weights ∇log S(x) by f(x) = log S(x) − log T(x); the *leave-one-out baseline* subtracts "
        "from each f(xᵢ) the mean of the other samples' f, which keeps it unbiased. At the start "
        f"({'N(−4, 0.5)' if setting == 'gaussian' else 'a bump on the left, 20 arms'}, KL = {curves[0].kl[0]:.3f}) "
        f"with n = {n} samples (the training's) the total variance is "
        + ", ".join(f"{ESTIMATOR_LABELS[e]} {v:.3g}" for e, v in var.items())
        + f"; the baseline divides REINFORCE's variance by {var['score'] / var['score_loo']:.2f}."
    )
    cols = st.columns(2)
    exports["Estimator variance"] = variance_figure(study)
    exports["Training curves"] = training_figure(curves)
    cols[0].plotly_chart(exports["Estimator variance"], key="rl_variance", width="stretch")
    cols[1].plotly_chart(exports["Training curves"], key="rl_training", width="stretch")
    rows = [
        {
            "estimator": ESTIMATOR_LABELS[e],
            f"mean estimate (n={n})": _pair(study.mean[i, j]),
            "exact gradient": _pair(study.exact),
            f"variance (n={n})": float(study.variance[i, j]),
        }
        for i, e in enumerate(study.estimators)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(
        "Final exact KL after training: "
        + ", ".join(f"{ESTIMATOR_LABELS[c.estimator]} {c.kl[-1]:.4f}" for c in curves)
        + f" nats ({study.reps} repetitions per variance point; the same seed for every estimator)."
    )

elif part == "regularised":
    st.sidebar.header("Bandit")
    arms, tilt, beta = ui.control("rl_arms"), ui.control("rl_tilt"), ui.control("rl_beta")
    ui.control("rl_seed", "number")
    try:
        fits = regularised_fits(arms, tilt, beta, 400, 0.05, 64, state["rl_seed"])
    except ValueError as err:
        ui.error(err)
    b, opt = fits.bandit, fits.bandit.log_optimum
    (rl_m, rl_s), (rev_m, rev_s), (fwd_m, fwd_s) = (
        (p[0], np.exp(p[1])) for p in (fits.restricted[k].params[-1] for k in ("rl", "reverse_kl", "forward_kl"))
    )
    st.header("2. KL-regularised RL: the RLHF objective")
    st.markdown(
        f"A policy over {arms} responses, a reference π_ref (two bumps) and a reward r(x) = {tilt:g}·x. "
        "Maximising E_S[r] − β·KL(S‖π_ref) has the exact optimum **π\\* ∝ π_ref·exp(r/β)**, because "
        "E_S[r] − β·KL(S‖π_ref) = −β·KL(S‖π\\*) + β·log Z: the RL objective *is* the reverse KL to π\\*. "
        f"Here β = {beta:g}, log Z = {b.log_normaliser:.3f} and the optimum's value is β·log Z = "
        f"{b.objective(opt):.3f}. A full categorical student reaches π\\* both ways: by sampled policy gradient "
        f"(KL(S‖π\\*) = {rl.table_kl(fits.rl_full, opt):.4f}) and by fitting the reverse KL directly "
        f"(KL = {rl.table_kl(fits.reverse_full, opt):.2e}). A two-parameter student S ∝ exp(−(x − m)²/2s²) cannot, "
        f"and there the direction matters. The RL fit (m = {rl_m:.3f}, s = {rl_s:.3f}) and the reverse-KL fit to "
        f"π\\* (m = {rev_m:.3f}, s = {rev_s:.3f}) are the same student and seek one mode; the forward-KL fit "
        "KL(π\\*‖S), i.e. reward-weighted regression (maximum likelihood on π_ref samples weighted by exp(r/β)), "
        f"covers π\\*'s mass instead (m = {fwd_m:.3f}, s = {fwd_s:.3f})."
    )
    exports["KL-regularised fits"] = regularised_figure(fits)
    st.plotly_chart(exports["KL-regularised fits"], key="rl_regularised", width="stretch")
    st.dataframe(pd.DataFrame(regularised_rows(fits)), hide_index=True, width="stretch")

elif part == "estimators":
    st.sidebar.header("Distributions")
    mu = ui.control("rl_mu")
    n = ui.control("rl_kl_samples")
    ui.control("rl_seed", "number")
    try:
        samples = kl_estimator_samples(mu, n, state["rl_seed"])
        sweep = kl_estimator_sweep(None, 20_000, state["rl_seed"])
        grads = surrogate_gradients(mu, 200_000, state["rl_seed"])
    except ValueError as err:
        ui.error(err)
    moments = rl.kl_estimator_moments(mu)
    st.header("3. The KL estimators k1, k2, k3")
    st.markdown(
        f"From samples x ~ S = N(0, 1) (the student) with r = T(x)/S(x), T = N({mu:g}, 1) (the teacher): "
        "k1 = −log r, k2 = ½(log r)², k3 = (r − 1) − log r (Schulman, *Approximating KL divergence*, writes q for "
        f"S and p for T). The true KL(S‖T) is μ²/2 = {mu * mu / 2:.3f}. In closed form (the histogram's legend gives "
        f"its {n:,} samples' mean and std): k1 is unbiased with std "
        f"{moments['k1'][1]:.3f} (std/mean = 2/μ = {2 / mu:.2f}); k2 has mean {moments['k2'][0]:.3f} (relative bias "
        f"μ²/4 = {mu * mu / 4:.3f}); k3 is unbiased with std {moments['k3'][1]:.3f} = √(e^μ² − 1 − μ²): small when "
        "S and T are close, exploding as they separate."
    )
    cols = st.columns(2)
    exports["k1, k2, k3 histograms"] = kl_histogram_figure(samples)
    exports["Bias and std against separation"] = kl_sweep_figure(sweep, mu)
    cols[0].plotly_chart(exports["k1, k2, k3 histograms"], key="rl_histogram", width="stretch")
    cols[1].plotly_chart(exports["Bias and std against separation"], key="rl_sweep", width="stretch")
    st.subheader("The pitfall: an estimator's gradient is not the gradient of what it estimates")
    st.markdown(
        "Used as a loss on on-policy samples held fixed (detached), each k is differentiated through log S only, "
        "with ∇ log S = g: ∇k1 = g, whose mean is 0; ∇k2 = (log S − log T)·g, whose mean is ∇KL(S‖T); "
        "∇k3 = (1 − r)·g, whose mean is E_S[g] − E_T[g] = ∇KL(T‖S), the *forward* KL's gradient. "
        f"Measured on {200_000:,} samples at the student N(0, 1), parameters (mean, log std):"
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "estimator": k,
                    "unbiased for KL(S‖T)?": "yes" if k != "k2" else f"no (bias {moments['k2'][0] - mu * mu / 2:.3f})",
                    "mean estimate": round(float(grads.mean_kl[i]), 4),
                    "mean ∇ as a loss": f"({grads.mean[i, 0]:.3f} ± {grads.se[i, 0]:.3f}, "
                    f"{grads.mean[i, 1]:.3f} ± {grads.se[i, 1]:.3f})",
                    "matches": MATCH[grads.matches[i]],
                    "exact value": _pair(getattr(grads, grads.matches[i])),
                }
                for i, k in enumerate(rl.KL_ESTIMATORS)
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        f"Exact: ∇KL(S‖T) = {_pair(grads.reverse_kl)}, ∇KL(T‖S) = {_pair(grads.forward_kl)}. "
        "The reverse-KL gradient is E_S[(log S − log T)·g]: "
        "k1 in the *reward* (the InstructGPT penalty) gives it too, which is why the PPO part offers both."
    )

else:
    st.sidebar.header("Bandit")
    arms, tilt, beta = ui.control("rl_arms"), ui.control("rl_tilt"), ui.control("rl_beta")
    st.sidebar.header("PPO")
    penalty = ui.control("rl_penalty", "select")
    for name in ("rl_updates", "rl_batch", "rl_epochs", "rl_clip", "rl_ppo_lr"):
        ui.control(name)
    ui.control("rl_seed", "number")
    work_s = budget.seconds_rl("ppo", updates=state["rl_updates"], batch=state["rl_batch"], epochs=state["rl_epochs"])
    if work_s > budget.BUDGET_S:  # every allowed combination fits today (tests/test_app_fuzz.py): a guard
        ui.error(ValueError(f"these settings would take about {work_s:.0f} s; fewer updates, samples or epochs"))
    try:
        run = ppo_demo(
            arms,
            tilt,
            beta,
            penalty,
            state["rl_updates"],
            state["rl_batch"],
            state["rl_epochs"],
            state["rl_clip"],
            state["rl_ppo_lr"],
            state["rl_seed"],
        )
    except ValueError as err:
        ui.error(err)
    how = {
        "exact": "β·KL(π‖π_ref) computed exactly on the table and differentiated",
        "k1_reward": "−β·log(π_old(x)/π_ref(x)) added to each sample's reward (InstructGPT, TRL)",
        "k3_loss": "β·k3 on the samples, r = π_ref(x)/π(x), as a loss (GRPO)",
    }[penalty]
    b = run.bandit
    st.header("4. PPO with a KL penalty on a bandit")
    st.markdown(
        f"A softmax policy over {arms} responses starts at π_ref. Each update samples {state['rl_batch']} responses "
        f"from the old policy; advantages are rewards minus the leave-one-out mean; {state['rl_epochs']} epochs of 4 "
        f"minibatches descend PPO's clipped surrogate (ε = {state['rl_clip']:g}) plus the KL penalty: {how}. "
        f"After {state['rl_updates']} updates KL(π‖π\\*) = {run.kl_optimum[-1]:.4f} (from {run.kl_optimum[0]:.3f}) "
        f"and KL(π‖π_ref) = {run.kl_reference[-1]:.3f} (π\\* has {rl.table_kl(b.log_optimum, b.log_reference):.3f}); "
        f"{100 * run.clip_fraction[-1]:.0f}% of the last update's sample-gradients were clipped. "
        + (
            "Careful: k3's gradient as a loss is the *forward* KL's, so PPO settles where E[r] − β·KL(π_ref‖π) "
            f"is largest (KL to that point {run.kl_target[-1]:.4f}), not at π\\*."
            if penalty == "k3_loss"
            else "Both the exact penalty and k1 in the reward have π\\* as their fixed point "
            "(E[(log π − log π_ref)·∇log π] = ∇KL(π‖π_ref)); what remains is sampling noise: Adam's steps do not "
            "shrink with the gradient."
        )
    )
    exports["PPO policy"] = ppo_figure(run)
    exports["PPO KL curves"] = ppo_kl_figure(run)
    st.plotly_chart(exports["PPO policy"], key="rl_ppo", width="stretch")
    st.plotly_chart(exports["PPO KL curves"], key="rl_ppo_kl", width="stretch")
in_tab.close()
export_ui.export_panel(exports, f"rl_{part}")
ui.finish()
