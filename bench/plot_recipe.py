"""Fidelity against training compute, one line per training recipe (issue #14 item 3); prints JSON.

    python bench/plot_recipe.py --start shipped=weights/small:runs/recipe/eval_shipped.json \\
        uniform=runs/recipe/uniform/weights/small:runs/recipe/eval_uniform.json \\
        min-snr=runs/recipe/min-snr/weights/small:runs/recipe/eval_min-snr.json \\
        --out assets/recipe_fidelity.png

Each argument is LABEL=WEIGHTS:EVAL[:TIMELOG]: a weights folder of the sampling network (its training
record gives the steps and CPU-hours so far) and the JSON of ``explorer evaluate --seeds ...`` on it;
with TIMELOG, the output of ``/usr/bin/time -v explorer train ...`` for that recipe's run, its
CPU time (user + system) is what the run added to the start's CPU-hours (the record's wall time ×
threads counts waits and pauses on a shared machine). Every
recipe's line starts at ``--start`` (the weights they were all warm-started from). The panels: the
fidelity ratio against the new-seed simulations and against the leave-one-out floor (20 twin
cosmologies), mean ± std over the sampler seeds; the figure's title names the worst cosmology.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (("fidelity_newseed", "χ²_r(generated) / χ²_r(new-seed sim)"),
          ("fidelity_loo", "χ²_r(generated) / leave-one-out floor"))


def cpu_seconds(time_log: Path) -> float:
    """User + system seconds from the report of ``/usr/bin/time -v``."""
    fields = dict(line.strip().split(": ", 1) for line in time_log.read_text().splitlines()
                  if line.strip().startswith(("User time", "System time")))
    return float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])


def point(spec: str, start: dict | None = None) -> dict:
    label, rest = spec.split("=", 1)
    weights, report, *time_log = rest.split(":")
    training = json.loads((Path(weights) / "explorer.json").read_text())["training"]
    figures = json.loads(Path(report).read_text())
    hours = training.get("cpu_hours")
    if time_log and start is not None:
        hours = start["cpu_hours"] + cpu_seconds(Path(time_log[0])) / 3600
    out = {"label": label, "weights": weights, "steps": training["steps"],
           "cpu_hours": round(hours, 3), "seeds": figures["seeds"]}
    for key, _ in PANELS:
        s = figures["summary"][key]
        out[key] = {"mean": round(s["mean"], 4), "std": round(s["std"], 4)}
        worst = figures["worst"][key]
        out[key]["worst"] = {"theta": [round(v, 3) for v in worst["theta"]], "value": round(worst["value"], 3)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("arms", nargs="+", help="LABEL=WEIGHTS:EVAL_JSON of each recipe's trained network")
    p.add_argument("--start", required=True, help="LABEL=WEIGHTS:EVAL_JSON of the common starting point")
    p.add_argument("--out", type=Path, default=Path("assets/recipe_fidelity.png"))
    args = p.parse_args(argv)
    start = point(args.start)
    arms = [point(a, start) for a in args.arms]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (key, title) in zip(axes, PANELS):
        ax.errorbar([start["cpu_hours"]], [start[key]["mean"]], yerr=[start[key]["std"]], fmt="ko", capsize=3,
                    label=f"{start['label']} ({start['steps']} steps)")
        for arm in arms:
            x = [start["cpu_hours"], arm["cpu_hours"]]
            y = [start[key]["mean"], arm[key]["mean"]]
            line, = ax.plot(x, y, "-", alpha=0.6)
            ax.errorbar(x[1:], y[1:], yerr=[arm[key]["std"]], fmt="o", color=line.get_color(), capsize=3,
                        label=f"{arm['label']} ({arm['steps']} steps)")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("training CPU-hours")
        ax.set_ylabel(title)
        ax.set_title(title + f"\nmean ± std over seeds {start['seeds']}", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(json.dumps({"start": start, "arms": arms, "figure": str(args.out)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
