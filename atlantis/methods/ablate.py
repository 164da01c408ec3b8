"""`python -m atlantis.methods.ablate RUN_DIR`: the weight options replayed on a job's cached log-probs.

A weighting job writes every example's log-probs to weights.jsonl. Normalisation, temperature and
clipping act on those numbers alone, so their effect on the weights (noise detection, effective sample
size, class skew) can be read off without training anything.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from atlantis.methods.diagnostics import weight_diagnostics
from atlantis.methods.normalise import normalise_weights

TERMS = {"logp_large": 1.0, "logp_small": -1.0, "logp_reference": 1.0}


def replay(rows: list[dict], per_class: bool, temperature: float, clip) -> dict:
    log_w = np.array([sum(sign * r[k] for k, sign in TERMS.items() if k in r) for r in rows])
    labels = [r["label"] for r in rows]
    w = normalise_weights(log_w, labels, per_class=per_class, temperature=temperature, clip=clip)
    d = weight_diagnostics(w, labels, [r["is_noisy"] for r in rows])
    means = [c["mean_weight"] for c in d["per_class"].values()]
    return {
        "per_class": per_class,
        "temperature": temperature,
        "clip": clip,
        "auroc": d["auroc_clean_vs_noisy"],
        "ess_fraction": d["ess_fraction"],
        "w_clean": d["mean_weight_clean"],
        "w_noisy": d["mean_weight_noisy"],
        "class_mean_min": min(means),
        "class_mean_max": max(means),
        "max_weight": d["max"],
    }


def ablate(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "weights.jsonl").read_text().splitlines()]
    grid = itertools.product((False, True), (1.0, 2.0, 5.0), (None, (0.1, 5.0)))
    return [replay(rows, per_class, t, clip) for per_class, t, clip in grid]


def to_markdown(results: list[dict]) -> str:
    head = "| per-class | temperature | clip | AUROC | ESS/N | mean w clean / noisy | class means min-max | max w |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in results:
        auroc = "n/a" if r["auroc"] is None else f"{r['auroc']:.3f}"
        noisy = "" if r["w_noisy"] is None else f" / {r['w_noisy']:.3f}"
        lines.append(
            f"| {r['per_class']} | {r['temperature']:g} | {list(r['clip']) if r['clip'] else '-'} | {auroc} | "
            f"{r['ess_fraction']:.3f} | {r['w_clean']:.3f}{noisy} | {r['class_mean_min']:.3f}-{r['class_mean_max']:.3f} | "
            f"{r['max_weight']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    print(to_markdown(ablate(args.run_dir)))


if __name__ == "__main__":
    main()
