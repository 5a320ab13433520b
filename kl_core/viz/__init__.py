"""KL Lab's figures: pure plotly builders (data in, ``go.Figure`` out), role colours and captions.

Nothing here imports streamlit: the app, the exports and the tests all draw with the same calls.
"""

from kl_core.viz.animation import animation_controls
from kl_core.viz.beta_scale import beta_scale_figure
from kl_core.viz.capacity import capacity_figure
from kl_core.viz.colors import ROLE_COLORS, color_for, label_for, mix, rgba
from kl_core.viz.lab1d import animation_1d
from kl_core.viz.lab2d import animation_2d, ellipse
from kl_core.viz.landscape import landscape_figure
from kl_core.viz.losses import loss_figure
from kl_core.viz.runs import Run, frame_steps, motion_steps
from kl_core.viz.sweeps import sweep_figure
from kl_core.viz.text import caption, results_rows, run_summaries

__all__ = [
    "ROLE_COLORS",
    "color_for",
    "label_for",
    "rgba",
    "mix",
    "Run",
    "frame_steps",
    "motion_steps",
    "animation_controls",
    "animation_1d",
    "animation_2d",
    "ellipse",
    "landscape_figure",
    "sweep_figure",
    "capacity_figure",
    "beta_scale_figure",
    "loss_figure",
    "results_rows",
    "caption",
    "run_summaries",
]
