"""The static explainer site: the guided lesson as plain HTML pages sharing one plotly.js, and ``kl-lab site``.

    kl-lab site OUT/

writes ``OUT/index.html``, one page per lesson step (``01-distillation.html``, ...) and
``OUT/plotly.min.js``, which every page loads by a relative ``<script src="plotly.min.js">``. The
pages need no server and no network: open ``index.html`` from disk (file://) or any static file
server. Each step page holds the step's text, its live-built figure (animated figures start at
their first frame: predict, then press Play), the question with clickable choices (a few lines
of inline JavaScript say right or wrong) and the answer with its explanation and any second
figure (step 7's PPO runs) in a ``<details>``. The covering, seeking and side-by-side steps also
hold the live widget (``kl_core.live``, inlined: the engine trains in the page) with the step's
scenario, started when the answer is opened. The last page ends with the recap: the one-line
answer, what happened at each step and where to go next (a static page holds no learner answers).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["build_site", "add_commands", "SiteReport", "markdown_to_html", "page_name"]

PLOTLY_JS = "plotly.min.js"

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 0 auto;
       padding: 1.5rem; line-height: 1.55; color: #222; background: #fff; }
nav { display: flex; justify-content: space-between; gap: 1rem; margin: 1rem 0; }
a { color: #0072B2; }
.progress { color: #666; font-size: 0.9rem; }
.question { border-left: 4px solid #999; padding: 0.5rem 1rem; background: #f6f6f6; margin: 1.5rem 0; }
.question label { display: block; margin: 0.3rem 0; cursor: pointer; }
.feedback { font-weight: 600; min-height: 1.5em; }
.right { color: #009E73; } .wrong { color: #D55E00; }
details { margin: 1rem 0; } summary { cursor: pointer; font-weight: 600; }
ol.steps li { margin: 0.3rem 0; }
.live { margin: 1.5rem 0; } .live h2, .recap h2 { font-size: 1.15rem; }
.recap { border: 1px solid #ccc; border-radius: 6px; padding: 0.5rem 1.2rem; margin: 1.5rem 0; }
.caption { color: #555; font-size: 0.92rem; }
"""

# on a choice: say right or wrong and open the answer; plots inside a just-opened <details> get resized
_SCRIPT = """
function klAnswer(input) {
  var box = input.closest('.question'), right = input.value === box.dataset.answer;
  var out = box.querySelector('.feedback');
  out.textContent = right ? 'Right.' : 'Not quite.';
  out.className = 'feedback ' + (right ? 'right' : 'wrong');
  box.querySelector('details').open = true;
}
document.addEventListener('toggle', function (e) {
  e.target.querySelectorAll && e.target.querySelectorAll('.js-plotly-plot').forEach(function (p) {
    Plotly.Plots.resize(p);
  });
}, true);
"""


@dataclass(frozen=True)
class SiteReport:
    """What :func:`build_site` wrote: the directory, the index, the step pages and the shared plotly.js."""

    out_dir: Path
    index: Path
    pages: tuple[Path, ...]
    plotly_js: Path

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.index, self.plotly_js, *self.pages))


def page_name(number: int, key: str) -> str:
    """The file name of step ``number`` (1-based), e.g. ``01-distillation.html``."""
    return f"{number:02d}-{key}.html"


def markdown_to_html(text: str) -> str:
    """The lesson's small markdown subset as HTML: paragraphs, **bold**, *italic*, `code` (all else escaped).

    Examples:
        >>> markdown_to_html("a **b** *c* `d` <e>")
        '<p>a <strong>b</strong> <em>c</em> <code>d</code> &lt;e&gt;</p>'
    """
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        b = html.escape(block.strip(), quote=False)
        b = re.sub(r"`([^`]+)`", r"<code>\1</code>", b)
        b = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", b)
        b = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", b)
        out.append(f"<p>{b}</p>")
    return "\n".join(out)


def _document(title: str, body: str, style: str = "") -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}{style}</style>\n"
        f'<script src="{PLOTLY_JS}"></script>\n<script>{_SCRIPT}</script>\n'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _live(step: Any) -> str:
    """The step's live widget (engine and widget inlined as one module; started when the answer opens)."""
    from kl_core.live.export import _json_for_script, bundle_js
    from kl_core.live.lesson import lesson_scene

    scene = lesson_scene(step)
    if scene is None:
        return ""
    box, data = f"kl-live-{step.key}", f"kl-live-scene-{step.key}"
    return (
        "<section class='live'>\n<h2>Now play with it</h2>\n"
        "<p class='caption'>This trains in your browser, every start at once, from the same starts as the figure. "
        "Drag a grey bump of p (left/right, up/down, its side handle for the width) and watch q re-fit; click "
        "empty space to start q there.</p>\n"
        # the site's pages are light whatever the system's scheme: so is the widget
        f"<div id='{box}' class='kl-live' data-theme='light' "
        f"aria-label='Live lab: {html.escape(step.title, quote=True)}'></div>\n"
        f'<script type="application/json" id="{data}">{_json_for_script(scene)}</script>\n'
        f'<script type="module">\n{bundle_js()}\n'
        f'const box = document.getElementById("{box}");\n'
        f'const scene = JSON.parse(document.getElementById("{data}").textContent);\n'
        "const details = box.closest('details');\n"
        "const start = () => { if (!window.klLive) window.klLive = mount(box, scene); };\n"
        "if (!details || details.open) start();\n"
        "else details.addEventListener('toggle', () => { if (details.open) start(); });\n"
        "</script>\n</section>"
    )


def _extra(step: Any) -> str:
    """The step's second figure and its caption (step 7's PPO runs); empty without one."""
    from kl_core.viz.export import to_div

    figure = step.extra_figure()
    if figure is None:
        return ""
    return (
        f"{to_div(figure, div_id=f'fig-{step.key}-extra')}\n"
        f"<p class='caption'>What the KL penalty does: {html.escape(step.extra_result(), quote=False)}.</p>"
    )


def _recap(steps: Sequence[Any]) -> str:
    """The closing card of a static site: the one-line answer, what happened at each step, where to go next."""
    from kl_core.lesson import STEPS, recap

    # no learner answers exist in a static page: "where to go next" is the recap's list for a learner
    # who predicted every step right (the labs that take the lesson further), named, not linked (they
    # are pages of the app, not of this site)
    card = recap({s.key: s.answer for s in STEPS})
    happened = "\n".join(
        f"<li><a href='{page_name(i, s.key)}'>{html.escape(s.title)}</a>: {html.escape(s.result(), quote=False)}.</li>"
        for i, s in enumerate(steps, start=1)
    )
    labs = "\n".join(f"<li>{html.escape(label)}</li>" for _, label in card.next_steps)
    return (
        "<section class='recap' id='recap'>\n<h2>Recap</h2>\n"
        f"<p><strong>The one-line answer.</strong> {html.escape(card.one_line, quote=False)}</p>\n"
        f"<p><strong>What happened at each step</strong></p>\n<ol class='steps'>\n{happened}\n</ol>\n"
        "<p><strong>Where to go next</strong>: the KL Lab app (<code>streamlit run app/main.py</code>), where "
        "you set the teacher and the student yourself:</p>\n"
        f"<ul>\n{labs}\n</ul>\n</section>"
    )


def _question(step: Any, revealed: str = "") -> str:
    name = f"q-{step.key}"
    choices = "\n".join(
        f"<label><input type='radio' name='{name}' value='{i}' onchange='klAnswer(this)'> {html.escape(c)}</label>"
        for i, c in enumerate(step.choices)
    )
    return (
        f"<div class='question' data-answer='{step.answer}'>\n"
        f"<p><strong>Predict first:</strong> {html.escape(step.question)}</p>\n{choices}\n"
        "<p class='feedback'></p>\n"
        "<details><summary>Reveal the answer</summary>\n"
        f"<p><strong>Answer:</strong> {html.escape(step.choices[step.answer])}</p>\n"
        f"{markdown_to_html(step.explanation())}\n{revealed}</details>\n</div>"
    )


def _nav(number: int, steps: Sequence[Any]) -> str:
    prev = (
        f"<a href='{page_name(number - 1, steps[number - 2].key)}'>← Previous</a>"
        if number > 1
        else "<a href='index.html'>← Contents</a>"
    )
    nxt = (
        f"<a href='{page_name(number + 1, steps[number].key)}'>Next →</a>"
        if number < len(steps)
        else "<a href='index.html'>Contents</a>"
    )
    return f"<nav>{prev}<span class='progress'>Step {number} of {len(steps)}</span>{nxt}</nav>"


def _step_page(number: int, steps: Sequence[Any]) -> str:
    from kl_core.viz.export import to_div
    from kl_core.viz.lesson import first_frame

    step = steps[number - 1]
    if step.draw_preview is not None:  # a still picture now, the full figure with the answer
        shown, revealed = step.preview(), to_div(step.figure(), div_id=f"fig-{step.key}-answer")
    else:  # an animation, at its start: press Play to see the result
        shown, revealed = first_frame(step.figure(), keep_controls=True), ""
    live = _live(step)
    revealed = "\n".join(part for part in (revealed, _extra(step), live) if part)
    closing = f"{_recap(steps)}\n" if number == len(steps) else ""
    body = (
        f"{_nav(number, steps)}\n<h1>{number}. {html.escape(step.title)}</h1>\n"
        f"{markdown_to_html(step.text())}\n{to_div(shown, div_id=f'fig-{step.key}')}\n"
        f"{_question(step, revealed)}\n{closing}{_nav(number, steps)}"
    )
    return _document(f"{number}. {step.title} · KL Lab", body, style=_live_style() if live else "")


def _live_style() -> str:
    from kl_core.live.export import widget_css

    return "\n" + widget_css()


def _index_page(steps: Sequence[Any], hero: Any) -> str:
    from kl_core.viz.export import to_div
    from kl_core.viz.lesson import first_frame

    items = "\n".join(
        f"<li><a href='{page_name(i, s.key)}'>{html.escape(s.title)}</a></li>" for i, s in enumerate(steps, start=1)
    )
    intro = (
        "Distilling a **teacher** p into a smaller **student** q means minimising a divergence between them. "
        "Classic distillation (soft labels, SFT on teacher outputs) minimises the **forward KL**, KL(p‖q), and "
        "the student spreads to cover everything the teacher does. On-policy distillation and RL-style training "
        "(PPO, KL-regularised RL, RLHF) let the student sample its own outputs and the teacher (or a reward "
        "model) grade them: that minimises the **reverse KL**, KL(q‖p), and the student picks some of the "
        "teacher's answers and gives them reliably. Every number and figure below was computed by KL Lab when "
        "this site was built.\n\n"
        "Below: the same student, trained from the same starts under both objectives. Press Play."
    )
    body = (
        "<h1>Forward vs reverse KL, in eight steps</h1>\n"
        f"{markdown_to_html(intro)}\n{to_div(first_frame(hero, keep_controls=True), div_id='fig-index')}\n"
        f"<h2>The lesson</h2>\n<ol class='steps'>\n{items}\n</ol>\n"
        f"<p><a href='{page_name(1, steps[0].key)}'>Start here →</a></p>"
    )
    return _document("KL Lab: forward vs reverse KL", body)


def build_site(out_dir: str | Path, steps: Sequence[Any] | None = None, hero: str = "both") -> SiteReport:
    """Write the static explainer to ``out_dir`` (created if missing; existing files are overwritten).

    Args:
        out_dir: the directory to write.
        steps: the lesson steps (default: all of :data:`kl_core.lesson.STEPS`).
        hero: the key of the step whose figure the index page shows.

    Returns:
        A :class:`SiteReport` naming every file written.
    """
    import plotly.offline

    from kl_core.lesson import STEPS

    steps = list(STEPS if steps is None else steps)
    if not steps:
        raise ValueError("steps must hold at least one lesson step")
    by_key = {s.key: s for s in steps}
    if hero not in by_key:
        raise ValueError(f"hero must be one of the steps' keys {', '.join(by_key)}, got {hero!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    js = out / PLOTLY_JS
    js.write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
    pages = []
    for number in range(1, len(steps) + 1):
        path = out / page_name(number, steps[number - 1].key)
        path.write_text(_step_page(number, steps), encoding="utf-8")
        pages.append(path)
    index = out / "index.html"
    index.write_text(_index_page(steps, by_key[hero].figure()), encoding="utf-8")
    return SiteReport(out, index, tuple(pages), js)


def _cmd_site(args: Any) -> str:
    from kl_core.cli_args import path_error, short

    out = Path(args.out)
    try:  # make the folder and prove it writable before the minutes of building, not after
        if out.exists() and not out.is_dir():
            raise ValueError(f"OUT {short(args.out)} exists and is not a directory (out_dir); give a folder")
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".kl-lab-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise path_error("OUT", args.out, err) from None
    report = build_site(out)
    names = ", ".join(p.name for p in report.pages)
    return (
        f"wrote {report.index.name}, {len(report.pages)} step pages ({names}) and {report.plotly_js.name} "
        f"to {report.out_dir} ({report.total_bytes / 1e6:.1f} MB); open {report.index} in a browser"
    )


def add_commands(sub: Any) -> dict[str, Any]:
    """Add ``site`` to the ``kl-lab`` subcommands; returns its handler."""
    from kl_core.cli_args import path_text

    s = sub.add_parser("site", help="write the guided lesson as a static, offline HTML site")
    s.add_argument("out", type=path_text("OUT"), metavar="OUT",
                   help="the directory to write (index.html, one page per step, plotly.min.js)")  # fmt: skip
    return {"site": _cmd_site}
