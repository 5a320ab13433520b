"""Page 5, theory: the definitions, the convention, the closed forms, and what each divergence rewards."""

import streamlit as st

from app import ui

ui.setup()
st.title("Theory")
st.markdown(
    "**Convention.** The teacher is $p$ (the target), the student is $q$ (the model being trained). "
    "Arguments are always (teacher, student)."
)
st.subheader("Forward KL: mode-covering")
st.latex(r"\mathrm{KL}(p\,\|\,q) = \int p(x)\,\log\frac{p(x)}{q(x)}\,dx = -\mathbb{E}_{p}[\log q] - H(p)")
st.markdown(
    "Sampled where the **teacher** has mass. Wherever $p > 0$ and $q \\to 0$ the integrand explodes, so "
    "the student must put mass everywhere the teacher does (*zero-avoiding*). Minimising it over $q$ is "
    "maximum likelihood on teacher samples: classic, off-policy distillation. For a Gaussian student it "
    "is solved by **moment matching**: $\\mu_q = \\mathbb{E}_p[x]$, $\\sigma_q^2 = \\mathrm{Var}_p[x]$, "
    "which puts mass between separated modes where the teacher has almost none."
)
st.subheader("Reverse KL: mode-seeking")
st.latex(r"\mathrm{KL}(q\,\|\,p) = \int q(x)\,\log\frac{q(x)}{p(x)}\,dx = -\mathbb{E}_{q}[\log p] - H(q)")
st.markdown(
    "Sampled where the **student** has mass. Wherever $q > 0$ and $p \\to 0$ it explodes, so the student "
    "avoids everything the teacher forbids (*zero-forcing*) and may ignore whole modes: a sharp student "
    "that picks one mode, and which one depends on the initialisation. Read the second form as RL: the "
    "student maximises the reward $\\log p(x)$ on its own samples plus an entropy bonus. That is why "
    "on-policy distillation (the student samples, the teacher grades) and KL-regularised RL (PPO, RLHF, "
    "whose optimum is $\\pi^* \\propto \\pi_{\\text{ref}}\\,e^{r/\\beta}$) land on reverse KL."
)
st.subheader("Closed form for Gaussians")
st.latex(
    r"\mathrm{KL}(\mathcal N(\mu_1,\Sigma_1)\,\|\,\mathcal N(\mu_2,\Sigma_2)) = \tfrac12\Big[\operatorname{tr}"
    r"(\Sigma_2^{-1}\Sigma_1) + (\mu_2-\mu_1)^\top\Sigma_2^{-1}(\mu_2-\mu_1) - d + \ln\tfrac{|\Sigma_2|}"
    r"{|\Sigma_1|}\Big]"
)
st.markdown("For example $\\mathrm{KL}(\\mathcal N(0,1)\\,\\|\\,\\mathcal N(1,2^2)) = \\ln 2 - \\tfrac14$.")
st.subheader("The family in between")
st.latex(
    r"\mathrm{JSD}_\beta = \beta\,\mathrm{KL}(p\,\|\,m) + (1-\beta)\,\mathrm{KL}(q\,\|\,m),"
    r"\quad m = \beta p + (1-\beta) q"
)
st.markdown(
    "The generalized Jensen–Shannon divergence of GKD: for 0 < β < 1 it is at most the entropy of (β, 1 − β), "
    "so never above $\\ln 2$. The formula vanishes at β = 0 and β = 1; there GKD (as in TRL) uses forward KL "
    "(β = 0) and reverse KL (β = 1) instead, which have no bound."
)
st.latex(r"D_\alpha = \frac{1}{\alpha(1-\alpha)}\int \alpha p + (1-\alpha) q - p^{\alpha} q^{1-\alpha}\,dx")
st.markdown(
    "Amari's α-divergence: α → 1 is forward KL, α → 0 reverse KL; α ≤ 0 is strongly zero-forcing, α ≥ 1 "
    "strongly zero-avoiding."
)
st.latex(
    r"\mathrm{SKL}_\alpha = \mathrm{KL}(p\,\|\,\alpha p + (1-\alpha) q),\qquad "
    r"\mathrm{SRKL}_\alpha = \mathrm{KL}(q\,\|\,\alpha q + (1-\alpha) p)"
)
st.markdown(
    "DistiLLM's skew KLs: mixing a little of the other distribution into the reference keeps the log-ratio "
    "bounded ($\\le \\ln(1/\\alpha)$) and the gradients tame."
)
st.latex(r"\mathrm{TV} = \tfrac12 \int |p - q|\,dx")
st.markdown("Total variation counts misplaced mass once, whichever side it is on; it is bounded by 1.")
st.subheader("Explore")
st.page_link("views/lab_1d.py", label="Mode covering vs mode seeking: the 1-D lab", icon="🔀")
st.page_link("views/landscape.py", label="Loss landscape: where each objective has its minima", icon="🗺️")
st.page_link("views/family.py", label="Divergence family: from covering to seeking", icon="🎚️")
st.page_link("views/lab_2d.py", label="2-D lab: rings, correlations and clusters", icon="🎯")
ui.finish()
