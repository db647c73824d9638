"""The Pareto plot: compute first (:func:`plot_data` returns plain data),
then draw (:func:`draw_png` with matplotlib, :func:`draw_html` as one self-contained page with
an inline SVG and a few lines of inline JavaScript: no network needed to open it).

The recommended student (:mod:`nas_student.results.recommend`) is ringed.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas_student.results.recommend import axes_for

LABELS = {"accuracy": "validation accuracy", "agreement": "agreement with the teacher",
          "macs": "MACs (log scale)", "params": "parameters (log scale)"}
KIND_STYLE = {  # kind -> (colour, legend label)
    "front": ("#d62728", "Pareto front"),
    "trained": ("#1f77b4", "trained"),
    "repeat": ("#9ecae1", "repeat (not retrained)"),
    "infeasible": ("#999999", "over the bounds (not trained; at 0)"),
}


def plot_data(trials: pd.DataFrame, front: pd.DataFrame, objectives: Sequence[str],
              attrs: Mapping[str, Any], recommended: int | None = None) -> pd.DataFrame:
    """One row per priced trial (every trial with a cost; trials that broke the space's rules,
    failed or are still running have none and are not plotted), with its plot position and
    kind: ``front`` / ``trained`` / ``repeat`` / ``infeasible`` (drawn at y = 0, not trained).
    Front rows carry ``step_y``, the running best y along x (the step line).
    ``attrs`` of the result hold the axes, the teacher's point, the bound and the title."""
    from nas_student.families.base import describe

    x, y = axes_for(objectives)
    df = trials[trials[x].notna() & (trials["state"] == "COMPLETE")].copy()
    on_front = set(front["trial"].tolist())
    kind = np.where(~df["feasible"].to_numpy(bool), "infeasible",
                    np.where(df["duplicate_of"].notna().to_numpy(bool), "repeat", "trained"))
    df["kind"] = np.where(df["trial"].isin(on_front), "front", kind)
    df["x"] = df[x].astype(float)
    df["y"] = df[y].astype(float).fillna(0.0)
    df["recommended"] = df["trial"] == recommended
    df["summary"] = [describe(json.loads(a)) if a else "" for a in df["arch"]]
    df["step_y"] = math.nan
    f = df[df["kind"] == "front"].sort_values(["x", "trial"])
    df.loc[f.index, "step_y"] = f["y"].cummax()
    cols = ["trial", "kind", "recommended", "x", "y", "step_y", "accuracy", "agreement", "kd_loss", "macs",
            "params", "macs_ratio", "params_ratio", "status", "summary"]
    out = df[cols].sort_values("trial").reset_index(drop=True)
    teacher = attrs.get("teacher", {}) or {}
    bounds = attrs.get("bounds", {}) or {}
    teacher_y = teacher.get("val_accuracy") if y == "accuracy" else (1.0 if y == "agreement" else None)
    out.attrs.update(
        x=x, y=y, x_label=LABELS.get(x, f"{x} (log scale)"), y_label=LABELS.get(y, y), objectives=list(objectives),
        teacher_x=teacher.get(x), teacher_y=teacher_y, bound_x=bounds.get(x),
        n_unplotted=int(len(trials) - len(out)), recommended=recommended,
        title=attrs.get("title", "Pareto front"))
    return out


def _bound_label(data: pd.DataFrame) -> str:
    t, b = data.attrs.get("teacher_x"), data.attrs.get("bound_x")
    if t and b:
        return f"bound ({b / t:.3g} x teacher)"
    return "bound"


def draw_png(data: pd.DataFrame, path: Path) -> Path:
    """Draw :func:`plot_data`'s frame to a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    a = data.attrs
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=120)
    try:
        for kind in ("infeasible", "repeat", "trained", "front"):
            d = data[data["kind"] == kind]
            if d.empty:
                continue
            colour, label = KIND_STYLE[kind]
            ax.scatter(d["x"], d["y"], c=colour, s=40 if kind == "front" else 22,
                       marker="x" if kind == "infeasible" else "o", label=label,
                       zorder=3 if kind == "front" else 2, edgecolors="none" if kind != "infeasible" else None)
        f = data[data["kind"] == "front"].sort_values("x")
        if not f.empty:
            xs = [*f["x"], a.get("bound_x") or f["x"].max()]
            ys = [*f["step_y"], f["step_y"].iloc[-1]]
            ax.step(xs, ys, where="post", color=KIND_STYLE["front"][0], lw=1.3, zorder=2)
            for r in f.itertuples():
                ax.annotate(str(r.trial), (r.x, r.y), textcoords="offset points", xytext=(4, 4),
                            fontsize=7, color="#7f0000")
        k = data[data["recommended"]]
        if not k.empty:
            ax.scatter(k["x"], k["y"], s=180, facecolors="none", edgecolors="black", lw=1.5,
                       label=f"recommended (trial {int(k['trial'].iloc[0])})", zorder=4)
        if a.get("teacher_x") and a.get("teacher_y") is not None:
            ax.scatter([a["teacher_x"]], [a["teacher_y"]], marker="*", s=220, c="#ff7f0e",
                       edgecolors="black", lw=0.6, label="teacher", zorder=4)
        if a.get("bound_x"):
            ax.axvline(a["bound_x"], color="#2ca02c", ls="--", lw=1.2, label=_bound_label(data))
        ax.set_xscale("log")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(a["x_label"])
        ax.set_ylabel(a["y_label"])
        extra = f"; {a['n_unplotted']} trials without a cost not shown" if a.get("n_unplotted") else ""
        ax.set_title(f"{a.get('title', '')}\n{len(data)} trials, {int((data['kind'] == 'front').sum())} "
                     f"on the front (objectives: {', '.join(a['objectives'])}){extra}", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


# ---------------------------------------------------------------------------------- HTML / SVG

W, H, ML, MR, MT, MB = 820, 520, 70, 20, 40, 55


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        return f"{int(v):,}"
    return f"{v:.{digits}f}"


def _point_info(r: Any) -> dict[str, Any]:
    return {"trial": int(r.trial), "kind": r.kind, "recommended": bool(r.recommended), "arch": r.summary,
            "accuracy": _fmt(r.accuracy), "agreement": _fmt(r.agreement), "kd_loss": _fmt(r.kd_loss),
            "macs": _fmt(r.macs), "params": _fmt(r.params),
            "macs %": _fmt(100 * r.macs_ratio, 2), "params %": _fmt(100 * r.params_ratio, 2),
            "status": r.status}


def draw_html(data: pd.DataFrame, path: Path) -> Path:
    """Draw :func:`plot_data`'s frame to one self-contained HTML page (inline SVG + inline JS,
    no external resources): one ``<circle class="pt" data-trial=N>`` per row; hovering one shows
    its trial, architecture and metrics (without JavaScript, the circle's ``<title>`` does)."""
    a = data.attrs
    xs = [v for v in [*data["x"], a.get("teacher_x"), a.get("bound_x")] if v and v > 0]
    lo, hi = (math.log10(min(xs)), math.log10(max(xs))) if xs else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    pw, ph = W - ML - MR, H - MT - MB

    def px(v: float) -> float:
        return ML + (math.log10(max(v, 1e-300)) - lo) / (hi - lo) * pw

    def py(v: float) -> float:
        return MT + (1.03 - v) / 1.06 * ph

    e = html.escape
    parts = [f'<svg id="plot" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">',
             f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="#fff" stroke="#888"/>']
    for d in range(math.floor(lo), math.ceil(hi) + 1):  # decade ticks
        if lo <= d <= hi:
            X = px(10.0 ** d)
            parts.append(f'<line x1="{X:.1f}" y1="{MT}" x2="{X:.1f}" y2="{MT + ph}" stroke="#eee"/>'
                         f'<text x="{X:.1f}" y="{MT + ph + 16}" text-anchor="middle">1e{d}</text>')
    for t in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        Y = py(t)
        parts.append(f'<line x1="{ML}" y1="{Y:.1f}" x2="{ML + pw}" y2="{Y:.1f}" stroke="#eee"/>'
                     f'<text x="{ML - 6}" y="{Y + 4:.1f}" text-anchor="end">{t:.1f}</text>')
    parts.append(f'<text x="{ML + pw / 2}" y="{H - 12}" text-anchor="middle">{e(a["x_label"])}</text>'
                 f'<text transform="translate(16,{MT + ph / 2}) rotate(-90)" text-anchor="middle">'
                 f'{e(a["y_label"])}</text>'
                 f'<text x="{ML}" y="{MT - 14}" font-size="13">{e(str(a.get("title", "")))}</text>')
    if a.get("bound_x"):
        X = px(a["bound_x"])
        parts.append(f'<line x1="{X:.1f}" y1="{MT}" x2="{X:.1f}" y2="{MT + ph}" stroke="#2ca02c" '
                     f'stroke-dasharray="6,4"/><text x="{X + 4:.1f}" y="{MT + 12}" fill="#2ca02c">'
                     f'{e(_bound_label(data))}</text>')
    f = data[data["kind"] == "front"].sort_values("x")
    if not f.empty:
        pts, prev = [], None
        for r in f.itertuples():
            if prev is not None:
                pts.append(f"{px(r.x):.1f},{py(prev):.1f}")
            pts.append(f"{px(r.x):.1f},{py(r.step_y):.1f}")
            prev = r.step_y
        pts.append(f"{px(a.get('bound_x') or f['x'].max()):.1f},{py(prev):.1f}")
        parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="#d62728" stroke-width="1.3"/>')
    if a.get("teacher_x") and a.get("teacher_y") is not None:
        X, Y = px(a["teacher_x"]), py(a["teacher_y"])
        parts.append(f'<g class="teacher"><path d="M{X:.1f},{Y - 9:.1f} L{X + 3:.1f},{Y - 3:.1f} L{X + 9:.1f},'
                     f'{Y - 3:.1f} L{X + 4:.1f},{Y + 2:.1f} L{X + 6:.1f},{Y + 9:.1f} L{X:.1f},{Y + 5:.1f} '
                     f'L{X - 6:.1f},{Y + 9:.1f} L{X - 4:.1f},{Y + 2:.1f} L{X - 9:.1f},{Y - 3:.1f} '
                     f'L{X - 3:.1f},{Y - 3:.1f} Z" fill="#ff7f0e" stroke="#000" stroke-width="0.5">'
                     f'<title>teacher: {e(_fmt(a["teacher_y"]))}, {e(_fmt(float(a["teacher_x"])))}'
                     f'</title></path></g>')
    infos = []
    order = {"infeasible": 0, "repeat": 1, "trained": 2, "front": 3}
    for i, r in enumerate(sorted(data.itertuples(), key=lambda r: order[r.kind])):
        info = _point_info(r)
        infos.append(info)
        colour = KIND_STYLE[r.kind][0]
        title = f"trial {info['trial']}: {info['arch']}"
        ring = ' stroke="#000" stroke-width="2"' if r.recommended else ""
        parts.append(f'<circle class="pt" data-i="{i}" data-trial="{info["trial"]}" data-kind="{r.kind}" '
                     f'cx="{px(r.x):.1f}" cy="{py(r.y):.1f}" r="{7 if r.recommended else 5}" fill="{colour}"'
                     f'{ring} fill-opacity="0.85"><title>{e(title)}</title></circle>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{c}"></i>{e(lbl)}</span>' for c, lbl in KIND_STYLE.values())
    legend += '<span><i style="background:#ff7f0e"></i>teacher</span>'
    legend += '<span><i style="background:#fff;border:2px solid #000"></i>recommended</span>'
    payload = json.dumps(infos).replace("</", "<\\/")
    note = (f"<p>{a['n_unplotted']} trials without a cost (broke the space's rules, failed or "
            f"running) are not shown.</p>" if a.get("n_unplotted") else "")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(str(a.get('title', 'Pareto front')))}</title>
<style>
body{{font-family:sans-serif;margin:16px;color:#222}}
#legend span{{margin-right:14px;font-size:12px}}
#legend i{{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px}}
#tip{{position:absolute;display:none;background:#fffff0;border:1px solid #999;padding:6px 8px;
font-size:12px;pointer-events:none;box-shadow:2px 2px 4px #0003;max-width:420px}}
#tip td{{padding:0 6px 0 0}}
circle.pt:hover{{stroke:#000;stroke-width:2}}
</style></head><body>
<div id="legend">{legend}</div>
{"".join(parts)}
{note}
<div id="tip"></div>
<script type="application/json" id="points">{payload}</script>
<script>
(function () {{
  var pts = JSON.parse(document.getElementById("points").textContent);
  var tip = document.getElementById("tip");
  function esc(s) {{ return String(s).replace(/[&<>"]/g, function (c) {{
    return {{"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}}[c]; }}); }}
  document.querySelectorAll("circle.pt").forEach(function (c) {{
    c.addEventListener("mousemove", function (ev) {{
      var p = pts[+c.getAttribute("data-i")];
      var rows = "";
      ["kind", "accuracy", "agreement", "kd_loss", "macs", "params", "macs %", "params %", "status"]
        .forEach(function (k) {{ rows += "<tr><td>" + esc(k) + "</td><td>" + esc(p[k]) + "</td></tr>"; }});
      tip.innerHTML = "<b>trial " + p.trial + (p.recommended ? " (recommended)" : "") + "</b><br>" + esc(p.arch) +
        "<table>" + rows + "</table>";
      tip.style.left = (ev.pageX + 12) + "px"; tip.style.top = (ev.pageY + 12) + "px";
      tip.style.display = "block";
    }});
    c.addEventListener("mouseleave", function () {{ tip.style.display = "none"; }});
  }});
}})();
</script>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
