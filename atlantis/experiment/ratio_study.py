"""The weak-to-strong ratio without training: every weight option's detector figures from one set of signals.

    python -m atlantis.experiment.ratio_study experiment=ratio_free noise=0.5 \
        ratio_study.out=docs/study_ratio/training_free/uniform_0.5

Scores the training split once per role (large and small base, the reference; cached like any job's signals),
then for each option (the paper's formula, per-class, per-class + T = 4, ratio only, reference only, and the ratio
exponent α: W = (p_b^L / p_b^S)^α · p_r) reports the AUROC of the weight against the corrupted labels, ESS/N and
mass per class; beside them the correlation of log p_b^L and log p_b^S and how often each model's top label (its
label-set posterior) is the clean one. Writes report.json, report.md and weights.jsonl (per example: each role's
log-probs, the corruption flag, each option's weight) and report.png (AUROC and ESS/N against α) to
`ratio_study.out`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from atlantis.experiment.resolvers import register_resolvers

register_resolvers()
log = logging.getLogger(__name__)
ALL = ("large", "small", "reference")
OPTIONS = {
    "paper": {"terms": ALL},
    "per_class": {"terms": ALL, "per_class": True},
    "per_class_t4": {"terms": ALL, "per_class": True, "temperature": 4.0},
    "ratio_only": {"terms": ("large", "small")},
    "reference_only": {"terms": ("reference",)},
    **{f"alpha_{a}": {"terms": ALL, "ratio_exponent": a} for a in (0.0, 0.1, 0.25, 0.5, 1.0)},
}


def training_data(cfg: dict):
    """The job's training split and its signals, built as run_job builds them (nothing trains here)."""
    from atlantis.experiment.fallback import apply_fallback
    from atlantis.experiment.pipeline import build_method, build_training_data

    cfg = apply_fallback(cfg)
    return build_training_data(cfg, build_method(cfg))[-1]


def analyse(data) -> tuple[dict, list[dict]]:
    """(report, rows): every option's diagnostics and the per-example table."""
    from atlantis.methods.diagnostics import weight_diagnostics
    from atlantis.methods.weights import ImportanceWeights
    from atlantis.signals.scoring import label_set_posterior

    labels = [e.label for e in data.examples]
    noisy = [e.is_noisy for e in data.examples]
    clean = np.array([data.labels.index(e.clean_label) for e in data.examples])
    logp = {role: data.signals.sequence_logprobs(role, "sum") for role in ALL}
    report = {"n": len(labels), "corrupted": int(sum(noisy)), "options": {}, "top_label_is_clean": {}}
    weights = {}
    for name, options in OPTIONS.items():
        weight_set = ImportanceWeights(**options).example_weights(data)
        weights[name] = np.array([weight_set.weights[f["id"]] for f in data.features])
        diagnostics = weight_diagnostics(weights[name], labels, noisy)
        report["options"][name] = {**options, **{k: diagnostics[k] for k in ("auroc_clean_vs_noisy", "ess_fraction",
                                   "mean_weight_clean", "mean_weight_noisy", "per_class")}}  # fmt: skip
    report["corr_logp_large_small"] = {
        "pearson": float(np.corrcoef(logp["large"], logp["small"])[0, 1]),
        "spearman": float(np.corrcoef(np.argsort(np.argsort(logp["large"])), np.argsort(np.argsort(logp["small"])))[0, 1]),
    }  # fmt: skip
    for role in ALL:  # the reference's are out of fold (crossfit): no model vouches for a label it trained on
        top = label_set_posterior(data.signals.label_set_logprobs(role)).argmax(axis=1)
        report["top_label_is_clean"][role] = float((top == clean).mean())
    rows = [
        {"id": e.id, "label": e.label, "clean_label": e.clean_label, "is_noisy": e.is_noisy,
         **{f"logp_{r}": float(logp[r][i]) for r in ALL}, **{f"w_{k}": float(w[i]) for k, w in weights.items()}}
        for i, e in enumerate(data.examples)
    ]  # fmt: skip
    return report, rows


def markdown(report: dict, setting: str) -> str:
    lines = [f"# The ratio without training: {setting}", "",
             f"{report['n']} training sentences, {report['corrupted']} corrupted. corr(log p_b^L, log p_b^S): "
             f"Pearson {report['corr_logp_large_small']['pearson']:.3f}, Spearman "
             f"{report['corr_logp_large_small']['spearman']:.3f}. Top label is the clean one: "
             + ", ".join(f"{r} {v:.1%}" for r, v in report["top_label_is_clean"].items()), "",
             "| option | AUROC clean vs corrupted | ESS/N | mean w clean | mean w corrupted | max class mass / freq |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for name, o in report["options"].items():
        skew = max(c["mass"] / c["frequency"] for c in o["per_class"].values())
        lines.append(f"| {name} | {o['auroc_clean_vs_noisy']:.3f} | {o['ess_fraction']:.3f} | "
                     f"{o['mean_weight_clean']:.3f} | {o['mean_weight_noisy']:.3f} | {skew:.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path, setting: str) -> None:
    """report.png: AUROC and ESS/N against the ratio's exponent α (α = 0: the reference alone, α = 1: the paper's
    formula), the other options as marks beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    options = report["options"]
    alphas = sorted((o["ratio_exponent"], name) for name, o in options.items() if name.startswith("alpha_"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, title in zip(
        axes, ("auroc_clean_vs_noisy", "ess_fraction"), ("detection AUROC", "ESS / N"), strict=True
    ):
        ax.plot([a for a, _ in alphas], [options[n][key] for _, n in alphas], "o-", label="(p_b^L / p_b^S)^α · p_r")
        for name, marker in (("per_class", "s"), ("per_class_t4", "^"), ("ratio_only", "x")):
            if name in options:
                ax.axhline(options[name][key], ls=":", lw=1, color="grey")
                ax.plot([1.0], [options[name][key]], marker, label=name)
        ax.set_xlabel("α, the ratio's exponent")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].axhline(0.5, color="k", lw=0.5)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"The ratio without training: {setting}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(cfg: dict) -> Path:
    from atlantis.utils.io import atomic_write_json, atomic_write_jsonl, atomic_write_text

    out = Path(cfg.get("ratio_study", {}).get("out") or Path(cfg["paths"]["output_dir"]) / "ratio_study")
    data = training_data(cfg)
    data.signals.score_reference_by_fold(reductions=("sum",), label_sets=True)  # each fold's model trains once
    report, rows = analyse(data)
    setting = f"{cfg['model']['name']}, {cfg['noise_kind']['name']} noise {cfg['noise']}, seed {cfg['seed']}"
    report["setting"] = {"model": cfg["model"]["name"], "noise": cfg["noise"], "noise_kind": cfg["noise_kind"]["name"],
                         "seed": cfg["seed"], "reference": cfg.get("reference")}  # fmt: skip
    atomic_write_json(out / "report.json", report)
    atomic_write_jsonl(out / "weights.jsonl", rows)
    atomic_write_text(out / "report.md", markdown(report, setting))
    plot(report, out / "report.png", setting)
    print(markdown(report, setting))
    return out


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from atlantis.experiment.config import plain
    from atlantis.experiment.console import quiet_libraries

    quiet_libraries()
    run(plain(cfg))


if __name__ == "__main__":
    main()
