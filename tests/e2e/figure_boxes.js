// The bounding boxes of every title in the page's plotly charts, and the pairs that overlap.
// Titles: the figure title (.gtitle), annotations (.annotation-text: subplot titles, row labels),
// axis titles (.xtitle, .x2title, ..., .ytitle, ...) and each legend as a whole. Used by tests/e2e/test_figures_browser.py.
() => {
  const titleClass = /^([xy]\d*title|gtitle|annotation-text)$/;
  const boxes = [];
  document.querySelectorAll(".js-plotly-plot").forEach((plot, p) => {
    plot.querySelectorAll("text").forEach((el) => {
      const cls = [...el.classList].find((c) => titleClass.test(c));
      if (!cls || !el.textContent.trim()) return;
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) return;
      const style = getComputedStyle(el);
      boxes.push({
        plot: p, cls, text: el.textContent.trim(), fill: style.fill, opacity: style.opacity,
        left: r.left, right: r.right, top: r.top, bottom: r.bottom,
      });
    });
    // the legend as one box: a legend that wraps onto more lines must not run into a title either
    plot.querySelectorAll("g.legend").forEach((el) => {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) return;
      boxes.push({ plot: p, cls: "legend", text: "(legend)", left: r.left, right: r.right, top: r.top, bottom: r.bottom });
    });
  });
  const overlaps = [];
  const slack = 1; // px: glyph boxes of neighbouring lines touch
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.plot !== b.plot) continue;
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > slack && h > slack) overlaps.push(`${a.cls} "${a.text}" overlaps ${b.cls} "${b.text}" (${w.toFixed(0)}x${h.toFixed(0)} px)`);
    }
  }
  const plots = [...document.querySelectorAll(".js-plotly-plot")].map((el) => el.getBoundingClientRect().width);
  return { boxes, overlaps, plots };
}
