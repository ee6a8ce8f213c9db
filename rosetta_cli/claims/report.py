"""claims.json, claims.md, and index.html with the scaling curve, ablation bars and mining precision."""

from __future__ import annotations

import html
import json
from pathlib import Path

from rosetta_cli.claims.collect import METRICS

PLOTS = ("mining.png", "scaling.png", "ablations.png")


def write_all(out: Path, claims: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "claims.json").write_text(json.dumps(claims, indent=2) + "\n")
    (out / "claims.md").write_text(markdown(claims))
    plot_mining(claims, out / "mining.png")
    plot_scaling(claims, out / "scaling.png")
    plot_ablations(claims, out / "ablations.png")
    (out / "index.html").write_text(render_html(claims))


# ---------------------------------------------------------------------------- markdown
def _pm(rec: dict, nd: int = 2) -> str:
    if rec["mean"] is None:
        return "–"
    seeds = ", ".join(f"{v:.{nd}f}" for v in rec["per_seed"])
    return f"{rec['mean']:.{nd}f} ± {rec['std']:.{nd}f} ({seeds})"


def _order_line(o: dict, unit: str = "points") -> str:
    return (f"- {o['order']}: {o['diff_mean']:+.3f} {unit} = {o['diff_queries_mean']:+.1f} queries in the mean "
            f"(per seed {', '.join(f'{q:+.1f}' for q in o['diff_queries_per_seed'])} of "
            f"{', '.join(map(str, o['queries_per_seed']))}); holds on {o['seeds_holding']}/{o['seeds']} seeds → "
            f"**{o['verdict']}**")


def markdown(c: dict) -> str:
    cl = c["claims"]
    lines = [f"# Paper claims on the toy world ({c['config']['scale']}, seeds {', '.join(map(str, c['seeds']))})", "",
             f"Every variant: {c['steps']} steps, batch {c['batch_size']}.", "", "## Rules", ""]
    lines += [f"- {r}" for r in c["rules"]]
    m = cl["1_mining"]
    lines += ["", f"## Claim 1: {m['statement']} — **{m['verdict']}**", "", f"{m['metric']}.", "",
              "| strategy | precision, mean ± std (per seed) |", "|---|---|"]
    lines += [f"| {s} | {_pm(v, 3)} |" for s, v in m["values"].items()]
    lines += [""] + [_order_line(o, "precision") for o in m["orderings"]]
    for key, title in (("2_scaling", "Claim 2"), ("3_ablations", "Claim 3")):
        cc = cl[key]
        lines += ["", f"## {title}: {cc['statement']}", ""]
        for proto, per_metric in cc["protocols"].items():
            for metric, rec in per_metric.items():
                lines += [f"### {proto} protocol, {METRICS[metric]} — **{rec['verdict']}**", "",
                          "| variant | mean ± std (per seed) |", "|---|---|"]
                lines += [f"| {n} | {_pm(v)} |" for n, v in rec["values"].items()]
                lines.append("")
                if key == "2_scaling":
                    t = rec["trend"]
                    lines += [_order_line(rec["ordering_100_vs_0"]),
                              f"- slope of the mean curve: {t['slope_mean_curve']:+.2f} points per 100% unpaired "
                              f"(per seed {', '.join(f'{s:+.2f}' for s in t['slope_per_seed'])}); "
                              f"mean curve monotone: {t['mean_curve_monotone']}"]
                else:
                    lines += [_order_line(o) for o in rec["orderings"]]
                    lines += ["- beside the claim: " + _order_line(o)[2:] for o in rec["baselines"]]
                lines.append("")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_mining(c: dict, path: Path) -> None:
    plt = _pyplot()
    m = c["claims"]["1_mining"]["values"]
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    names = list(m)
    ax.bar(names, [m[n]["mean"] for n in names], color="#9bb7d4")
    for i, n in enumerate(names):
        ax.scatter([i] * len(m[n]["per_seed"]), m[n]["per_seed"], color="k", s=12, zorder=3)
    ax.set(ylabel="label precision of top-1 pairs", title="Claim 1: mining", ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_scaling(c: dict, path: Path) -> None:
    plt = _pyplot()
    s = c["claims"]["2_scaling"]
    protos, metrics = list(s["protocols"]), list(METRICS)
    fig, axes = plt.subplots(len(protos), len(metrics), figsize=(4.2 * len(metrics), 3.2 * len(protos)), squeeze=False)
    x = [100 * f for f in s["fractions"]]
    for i, proto in enumerate(protos):
        for j, metric in enumerate(metrics):
            ax, rec = axes[i][j], s["protocols"][proto][metric]
            curves = [[rec["values"][n]["per_seed"][k] for n in s["variants"]] for k in range(len(c["seeds"]))]
            for k, curve in enumerate(curves):
                ax.plot(x, curve, color="0.55", lw=0.9, marker=".", ls=("-", "--", ":", "-.")[k % 4],
                        label=f"seed {c['seeds'][k]}")
            ax.plot(x, rec["trend"]["mean_curve"], color="C0", lw=2.2, marker="o", label="mean")
            ax.set(xlabel="unpaired data used (%)", ylabel=METRICS[metric].replace(", mean of ego→exo and exo→ego", " (both ways)"),
                   title=f"{proto}: {rec['verdict']}")
            ax.legend(fontsize=7)
    fig.suptitle("Claim 2: scaling with unpaired data")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_ablations(c: dict, path: Path) -> None:
    import numpy as np

    plt = _pyplot()
    a = c["claims"]["3_ablations"]
    names, protos, metrics = a["variants"], list(a["protocols"]), list(METRICS)
    groups = [(p, m) for p in protos for m in metrics]
    fig, ax = plt.subplots(figsize=(2.4 * len(groups) + 4, 3.8))
    width = 0.8 / len(names)
    for k, n in enumerate(names):
        xs = np.arange(len(groups)) + (k - (len(names) - 1) / 2) * width
        vals = [a["protocols"][p][m]["values"][n] for p, m in groups]
        ax.bar(xs, [v["mean"] for v in vals], width, label=n, color=f"C{k}")
        for x, v in zip(xs, vals):
            ax.scatter([x] * len(v["per_seed"]), v["per_seed"], color="k", s=8, zorder=3)
    ax.set_xticks(np.arange(len(groups)), [f"{p}\n{METRICS[m].split(' (')[0]}" for p, m in groups], fontsize=8)
    ax.set(ylabel="%", title="Claim 3: ablations (bars: mean; dots: seeds)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------- html
def render_html(c: dict) -> str:
    cl = c["claims"]
    verdicts = [("1. mining", cl["1_mining"]["verdict"])]
    for key, title in (("2_scaling", "2. scaling"), ("3_ablations", "3. ablations")):
        for proto, per in cl[key]["verdict"].items():
            verdicts += [(f"{title} ({proto}, {METRICS[m]})", v) for m, v in per.items()]
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td class='{'ok' if v == 'holds' else 'no'}'>{v}</td></tr>"
                   for n, v in verdicts)
    imgs = "".join(f"<figure><img src='{p}' alt='{p}'></figure>" for p in PLOTS)
    md = html.escape(markdown(c))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>rosetta claims</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} td{{padding:2px 10px}}
.ok{{color:#070;font-weight:bold}} .no{{color:#a00;font-weight:bold}} img{{max-width:100%}}
pre{{background:#f6f6f6;padding:1em;white-space:pre-wrap}}</style></head><body>
<h1>Paper claims on the toy world</h1>
<p>Scale {html.escape(str(c['config']['scale']))}, seeds {', '.join(map(str, c['seeds']))};
every variant trains {c['steps']} steps at batch {c['batch_size']}.</p>
<table><tr><th>claim</th><th>verdict</th></tr>{rows}</table>{imgs}
<h2>Details (claims.md)</h2><pre>{md}</pre></body></html>
"""
