"""Aggregate a multirun: mean +- std over seeds, each method minus the baseline with a bootstrap 95 % CI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from atlantis.methods.method import BASELINE, reads_reference
from atlantis.report.bootstrap import METRICS, Predictions, paired_bootstrap
from atlantis.utils.io import atomic_write_text
from atlantis.utils.tree import map_strings

log = logging.getLogger(__name__)
GROUP = ["dataset", "model", "noise_kind", "noise", "method", "reference"]
# Settings already shown by a GROUP column (or the seed, which rows aggregate over).
SHOWN = {"seed", "noise", "dataset.name", "model.name", "method.name", "noise_kind.name", "reference.name", "fallback"}
# Runs of one setting that a row averages over: seeds, and cross-validation folds (ADE's 10 folds).
REPLICATES = ("seed", "dataset.reader.fold")
SHOWN |= set(REPLICATES)
UNSET = "<unset>"


def path_free(settings):
    """Settings with each absolute path cut to its last two parts (`models/gemma-3-270m`): the same job run from
    another checkout, worktree or machine is the same setting (what the files hold is in the job key)."""
    return map_strings(settings, lambda value: "/".join(Path(value).parts[-2:]) if value.startswith("/") else value)


def flatten(tree, prefix: str = "") -> dict:
    """{'method.select.budget': 0.25, ...}; class paths shortened to the class name, lists as text."""
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    value = tree.rsplit(".", 1)[-1] if prefix.endswith("_target_.") and isinstance(tree, str) else tree
    return {prefix[:-1]: json.dumps(value) if isinstance(value, list) else value}


def add_variants(frame: pd.DataFrame, settings: list[dict]) -> pd.DataFrame:
    """A `variant` column: the settings that differ between runs (other than GROUP columns and the seed).

    Two jobs that differ in anything (a weight option, a selection budget, a trainer setting) land in
    different rows, never pooled as if they were seeds of one setting.
    """
    # null and absent are one value, UNSET, that counts as a difference (a reference with its own params policy
    # is another setting than one without) but is not printed (SFT has no temperature).
    flat = pd.DataFrame([flatten(path_free(s)) for s in settings], dtype=object).fillna(UNSET).astype(str)
    # A setting belongs in the key when it differs between runs that the GROUP columns would pool (what those
    # columns already say, such as a method's weighting class or a noise kind's label file, is not repeated).
    by_group = flat.groupby([frame[key].astype(str).to_numpy() for key in GROUP])
    varying = [c for c in flat.columns if c not in SHOWN and by_group[c].nunique().max() > 1]
    frame["variant"] = [
        ", ".join(f"{c.removeprefix('method.')}={row[c]}" for c in varying if row[c] != UNSET)
        for _, row in flat.iterrows()
    ]
    frame["variant_context"] = [
        ", ".join(f"{c}={row[c]}" for c in varying if not c.startswith(("method.", "reference.")))
        for _, row in flat.iterrows()
    ]
    # What a run shares with the baseline it is compared with: every setting but the method's own, its reference
    # and the replicate (seed, fold); a setting only one job has (one that cannot act there) is left out.
    own = ("method.", "reference.", "seed", "dataset.reader.fold")
    frame["context"] = [
        json.dumps({c: row[c] for c in flat.columns if not c.startswith(own) and row[c] != UNSET}, sort_keys=True)
        for _, row in flat.iterrows()
    ]
    # Which examples trained: the baseline a row is compared with trained on the same ones where it ran them.
    frame["selection"] = [
        ", ".join(f"{c}={row[c]}" for c in varying if c.startswith("method.select.")) for _, row in flat.iterrows()
    ]
    return frame


ALL_EXAMPLES = "SelectAll"


def every_example(selection: str) -> bool:
    return not selection or f"method.select._target_={ALL_EXAMPLES}" in selection.split(", ")


def same_selection(base: pd.DataFrame, selection: str) -> pd.DataFrame:
    """The baseline's runs on the row's selection (ATLANTIS on FisherSFT's quarter against SFT on it), else on
    every example (a reference option against plain SFT): never several selections pooled into one baseline."""
    same = base[base["selection"] == selection]
    return same if len(same) else base[base["selection"].map(every_example)]


def job_fingerprint(metrics: dict) -> str | None:
    """The job a run's metrics record (its settings, as text); None for runs written before they recorded them."""
    settings = metrics.get("settings")
    return json.dumps(path_free(settings), sort_keys=True) if settings else None


def folder_job(run: Path) -> str | None:
    """job_fingerprint of the run in a folder, None when it holds none."""
    path = run / "metrics.json"
    return job_fingerprint(json.loads(path.read_text())) if path.is_file() else None


def method_reads_reference(method: dict, path: Path) -> bool:
    """reads_reference of a run's method; False (the config's recorded reference stands) when its classes no longer
    import."""
    try:
        return reads_reference(method)
    except (ImportError, AttributeError, ValueError) as error:
        log.warning("%s: cannot tell whether its method reads the reference (%s)", path, error)
        return False


def load_runs(root: str | Path, metric: str) -> pd.DataFrame:
    """One row per job folder with a metrics.json: its settings, the metric and weight diagnostics."""
    rows, settings, seen = [], [], {}
    for path in sorted(Path(root).rglob("metrics.json")):
        metrics = json.loads(path.read_text())
        # The same job in two sweep folders (a piece run on its own, then the whole grid) is one run, not two seeds.
        fingerprint = job_fingerprint(metrics)
        if fingerprint in seen:
            log.warning("%s is the same job as %s: counted once", path.parent, seen[fingerprint])
            continue
        if fingerprint is not None:
            seen[fingerprint] = path.parent
        settings.append(metrics.get("settings") or {})  # absent in run folders written before it existed
        config = metrics.get("config") or {}
        weights = metrics.get("weights") or {}
        row = {key: config.get(key) for key in (*GROUP, "seed")}
        if (method := (metrics.get("settings") or {}).get("method")) and method_reads_reference(method, path):
            # from the settings, so runs written before a selection's reference was recorded name theirs too
            row["reference"] = (metrics["settings"].get("reference") or {}).get("name")
        row["fold"] = ((metrics.get("settings") or {}).get("dataset") or {}).get("reader", {}).get("fold")
        train = (metrics.get("data") or {}).get("train") or {}
        row.update(
            run=str(path.parent.relative_to(root)) if path.parent != Path(root) else ".",
            # what the labels were, measured: a labeller's natural rate is set as noise 0.0 but is not clean
            train_noise=train["n_noisy"] / train["n_kept"] if train.get("n_kept") and "n_noisy" in train else np.nan,
            score=metrics.get(metric),
            invalid_rate=metrics.get("test/invalid_rate"),
            auroc=weights.get("auroc_clean_vs_noisy"),
            # confident learning on the same out-of-fold probabilities: beside the weights, or as the selector
            cleanlab_auroc=weights.get("cleanlab_auroc_clean_vs_noisy")
            or ((metrics.get("selection") or {}).get("detector") or {})
            .get("cleanlab", {})
            .get("auroc_clean_vs_noisy"),
            ess_fraction=weights.get("ess_fraction"),
            w_clean=weights.get("mean_weight_clean"),
            w_noisy=weights.get("mean_weight_noisy"),
        )
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"no metrics.json under {root}")
    frame = pd.DataFrame(rows)
    frame["reference"] = frame["reference"].fillna("-")
    return add_variants(frame, settings)


def bootstrap_diff(
    a: np.ndarray, b: np.ndarray, paired: bool = True, n_boot: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of a - b and its bootstrap 95 % interval over seeds: paired (a[i] and b[i] share a seed), or each
    side resampled on its own when the seeds differ — then no interval unless both sides have two or more."""
    rng = np.random.default_rng(seed)
    if paired:
        if len(a) != len(b):
            raise ValueError(f"a paired difference needs one b per a, got {len(a)} and {len(b)} runs")
        diffs = a - b
        boots = rng.choice(diffs, size=(n_boot, len(diffs))).mean(axis=1)
        return float(diffs.mean()), *np.percentile(boots, [2.5, 97.5]).tolist()
    diff = float(a.mean() - b.mean())
    if min(len(a), len(b)) < 2:  # one run's score has no spread to resample: an interval would claim too much
        return diff, float("nan"), float("nan")
    boots = rng.choice(a, size=(n_boot, len(a))).mean(axis=1) - rng.choice(b, size=(n_boot, len(b))).mean(axis=1)
    return diff, *np.percentile(boots, [2.5, 97.5]).tolist()


# The interval kind of a difference whose arm and baseline ran on different seeds (never pooled with paired ones).
UNPAIRED = "unpaired seeds"


def example_level_diff(root: Path | None, paired: pd.DataFrame, metric: str) -> tuple[float, float, float] | None:
    """The paired bootstrap over test examples and seeds, when every paired run left its predictions."""
    key = metric.removeprefix("test/")
    if root is None or key not in METRICS:
        return None
    pairs = []
    for run, run_base in zip(paired["run"], paired["run_base"], strict=True):
        a, b = Predictions.read(root / run), Predictions.read(root / run_base)
        if a is None or b is None or a.ids != b.ids:
            return None
        pairs.append((a, b))
    return paired_bootstrap(pairs, key) if pairs else None


def replicate_ids(frame: pd.DataFrame) -> list[str]:
    """ "seed/fold" per run, the key that pairs a method's runs with the baseline's: never NaN (a run without a
    fold is "-"), since pandas would merge every NaN key with every other."""
    return [
        f"{seed}/{'-' if fold is None or pd.isna(fold) else fold}" for seed, fold in zip(frame["seed"], frame["fold"])
    ]


def summarise(
    frame: pd.DataFrame, baseline: str = BASELINE, root: Path | None = None, metric: str = "test/f1_official"
) -> pd.DataFrame:
    """One row per setting (GROUP columns and variant): mean ± sd over its runs and, against the baseline, the
    difference with a 95 % interval: a paired bootstrap over test examples and seeds where the runs' predictions
    are under `root`, else over seeds (paired where the seeds match)."""
    rows = []
    keys = [*GROUP, "variant"]
    for key, group in frame.groupby(keys, dropna=False, sort=True):
        settings = dict(zip(keys, key, strict=True))
        # in seed order, not folder order: the same runs give the same means and interval wherever they were written
        group = group.assign(replicate=replicate_ids(group)).sort_values("replicate")
        scores = group["score"].to_numpy(dtype=float)
        row = {
            **settings,
            "n_seeds": len(scores),
            "train_noise": group["train_noise"].mean(),
            "mean": scores.mean(),
            "std": scores.std(ddof=1) if len(scores) > 1 else 0.0,
            "auroc": group["auroc"].mean(),
            "cleanlab_auroc": group["cleanlab_auroc"].mean(),
            "ess_fraction": group["ess_fraction"].mean(),
            "w_clean": group["w_clean"].mean(),
            "w_noisy": group["w_noisy"].mean(),
        }
        base = frame[
            (frame["method"] == baseline)
            & (frame["dataset"] == settings["dataset"])
            & (frame["model"] == settings["model"])
            & (frame["noise"] == settings["noise"])
            & (frame["noise_kind"] == settings["noise_kind"])
            & (frame["variant_context"] == group["variant_context"].iloc[0])
        ]
        base = same_selection(base, group["selection"].iloc[0])
        if settings["method"] != baseline and len(base) and base["variant"].nunique(dropna=False) > 1:
            # the baseline ran in several settings of its own (full and LoRA, two learning rates): pooled, they
            # would pass for seeds of one; which one an arm is measured against is the reader's choice
            log.warning(
                "no Δ for %s %s: the baseline %s ran in %d settings here (%s); report them in separate folders",
                settings["method"], settings["variant"] or "", baseline, base["variant"].nunique(),
                "; ".join(sorted(base["variant"].unique())),
            )  # fmt: skip
            base = base.iloc[0:0]
        if settings["method"] != baseline and len(base):
            base = base.assign(replicate=replicate_ids(base)).sort_values("replicate")
            paired = group.merge(base[["replicate", "score", "run"]], on="replicate", suffixes=("", "_base"))
            interval = "seeds"
            if len(paired) == len(group):
                by_example = example_level_diff(root, paired, metric)
                if by_example is not None:
                    (diff, lo, hi), interval = by_example, "examples × seeds"
                else:
                    diff, lo, hi = bootstrap_diff(
                        paired["score"].to_numpy(float), paired["score_base"].to_numpy(float)
                    )
            else:  # a partial grid: the arm ran seeds the baseline did not (or the reverse)
                diff, lo, hi = bootstrap_diff(scores, base["score"].to_numpy(float), paired=False)
                interval = UNPAIRED
            row.update({f"minus_{baseline}": diff, "ci_lo": lo, "ci_hi": hi, "interval": interval})
            row["baseline_differs"] = context_difference(group["context"].iloc[0], base["context"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


def context_difference(arm: str, base: str) -> str:
    """The settings outside the method in which a row differs from its baseline (`trainer.lr=0.0001 (baseline
    0.0004)`): a Δ is then not the method's alone, and the report says so."""
    arm_settings, base_settings = json.loads(arm), json.loads(base)
    return "; ".join(
        f"{key}={arm_settings[key]} (baseline {base_settings[key]})"
        for key in sorted(arm_settings.keys() & base_settings.keys())
        if arm_settings[key] != base_settings[key]
    )


def differs_notes(summary: pd.DataFrame, baseline: str) -> str:
    if "baseline_differs" not in summary:
        return ""
    rows = summary[summary["baseline_differs"].fillna("") != ""]
    notes = []
    for _, r in rows.iterrows():
        variant = f" ({r['variant']})" if r["variant"] else ""
        notes.append(
            f"\n- **{r['method']}**{variant} at {r['noise_kind']} {r['noise']}: its {baseline} differs outside the "
            f"method too: {r['baseline_differs']}"
        )
    return "".join(notes) + ("\n" if notes else "")


def to_markdown(summary: pd.DataFrame, metric: str, baseline: str) -> str:
    header = [
        "dataset",
        "model",
        "noise kind",
        "noise",
        "train labels wrong",
        "method",
        "variant",
        "reference",
        "runs (seeds × folds)",
        metric,
        f"- {baseline} [95% CI]",
        "AUROC",
        "cleanlab AUROC",
        "ESS/N",
        "mean w clean / noisy",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in summary.iterrows():
        diff = r.get(f"minus_{baseline}")
        if diff is None or pd.isna(diff):
            diff_text = ""
        elif r.get("interval") == UNPAIRED:
            spread = "no interval" if pd.isna(r["ci_lo"]) else f"[{r['ci_lo']:+.4f}, {r['ci_hi']:+.4f}]"
            diff_text = f"{diff:+.4f} {spread} (unpaired: other seeds than {baseline})"
        elif r["n_seeds"] < 2 and r.get("interval") != "examples × seeds":
            diff_text = f"{diff:+.4f} (1 run: no interval)"
        else:
            diff_text = f"{diff:+.4f} [{r['ci_lo']:+.4f}, {r['ci_hi']:+.4f}]"
        auroc = "" if pd.isna(r["auroc"]) else f"{r['auroc']:.3f}"
        ess = "" if pd.isna(r["ess_fraction"]) else f"{r['ess_fraction']:.3f}"
        cleanlab = "" if pd.isna(r["cleanlab_auroc"]) else f"{r['cleanlab_auroc']:.3f}"
        w_clean = "" if pd.isna(r["w_clean"]) else f"{r['w_clean']:.3f}"
        w_noisy = "" if pd.isna(r["w_noisy"]) else f" / {r['w_noisy']:.3f}"
        wrong = "" if pd.isna(r.get("train_noise", np.nan)) else f"{r['train_noise']:.3f}"
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['noise_kind']} | {r['noise']} | {wrong} | {r['method']} | {r['variant'] or '-'} | {r['reference']} | "
            f"{r['n_seeds']} | {r['mean']:.4f} ± {r['std']:.4f} | {diff_text} | {auroc} | {cleanlab} | {ess} | "
            f"{w_clean}{w_noisy} |"
        )
    kinds = set(summary["interval"].dropna()) - {UNPAIRED} if "interval" in summary else set()
    note = ""
    if kinds:
        note = (
            f"\nIntervals: 95 % paired bootstrap of the difference to {baseline}, resampling "
            + " and ".join(sorted(f"**{k}**" for k in kinds))
            + " (examples × seeds: test examples within each seed, both methods on the same resample, and the "
            "seeds; seeds: the per-seed scores only).\n"
        )
    if "interval" in summary and (summary["interval"] == UNPAIRED).any():
        note += (
            f"\nUnpaired rows: the arm and {baseline} ran on different seeds (a grid still running), so their means "
            "are compared with each side's seeds resampled on their own — no interval where a side has one run. "
            "Finish the grid for a paired difference.\n"
        )
    return (
        "\n".join(lines) + "\n" + note + differs_notes(summary, baseline) + collapse_notes(summary)
        + random_model_note(summary)
    )  # fmt: skip


# Models built from a config with random weights: their rows show code paths, never a finding.
RANDOM_MODELS = ("tiny",)


def random_model_note(summary: pd.DataFrame) -> str:
    # a fallback names the model it ran first: `tiny←flan_t5`
    models = sorted(m for m in set(summary["model"]) if str(m).split("←")[0] in RANDOM_MODELS)
    if not models:
        return ""
    return (
        f"\nModel {', '.join(f'`{m}`' for m in models)}: both bases are randomly initialised, so the ratio "
        "p_b^L / p_b^S is the gap of two random networks (noise): these rows demonstrate code paths, not a finding.\n"
    )


# Below this effective sample size a weighting trains on a handful of examples: say so under the table.
COLLAPSE_ESS = 0.1


def collapse_notes(summary: pd.DataFrame) -> str:
    notes = []
    for _, r in summary.iterrows():
        if not pd.isna(r["ess_fraction"]) and r["ess_fraction"] < COLLAPSE_ESS:
            notes.append(
                f"- **{r['method']}** at noise {r['noise']}: the weights collapsed onto {100 * r['ess_fraction']:.1f} % "
                "of the training set (ESS/N); it trains on a handful of examples. A flatter temperature (log W / T, "
                "T > 1; `method=atlantis_tempered`: per-class, T = 4) keeps the weights spread."
            )
    return ("\n" + "\n".join(notes) + "\n") if notes else ""


def arm_labels(summary: pd.DataFrame) -> pd.Series:
    """A plot label per row: method (reference) [the variant's settings less those every row of it shares]."""
    pairs = summary["variant"].fillna("").map(lambda v: [p for p in v.split(", ") if p])
    shared = set.intersection(*(set(p) for p in pairs)) if len(pairs) else set()
    several = [key for key in ("dataset", "model") if summary[key].nunique() > 1]
    labels = []
    for (_, row), own in zip(summary.iterrows(), pairs, strict=True):
        label = row["method"] if row["reference"] == "-" else f"{row['method']} ({row['reference']})"
        variant = ", ".join(p.removeprefix("weights.") for p in own if p not in shared)
        labels.append(" ".join([*(str(row[k]) for k in several), f"{label} [{variant}]" if variant else label]))
    return pd.Series(labels, index=summary.index)


def plot(summary: pd.DataFrame, metric: str, path: Path, baseline: str = BASELINE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summary.assign(
        # the measured share of wrong training labels where known (a labeller's natural rate is run as noise 0.0)
        x=summary["train_noise"].fillna(summary["noise"]) if "train_noise" in summary else summary["noise"],
    )
    if summary.groupby(["noise_kind", "noise"]).ngroups == 1:
        fig = plot_one_setting(plt, summary, metric, baseline)
    else:
        fig = plot_against_noise(plt, summary, metric)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def plot_against_noise(plt, summary: pd.DataFrame, metric: str):
    """Score against the share of wrong labels: a panel per dataset and model pair (two settings never share
    axes), a line per arm and noise kind in it; colour = arm, the same in every panel; marker = noise kind."""
    panels = [(group, arm_labels(group)) for _, group in summary.groupby(["dataset", "model"], sort=True)]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.2 + 3.3 * len(panels), 4.6), sharey=True, squeeze=False
    )  # fmt: skip
    kinds = sorted(summary["noise_kind"].astype(str).unique())
    markers = dict(zip(kinds, "osD^v<>", strict=False))
    arms = sorted(set().union(*(set(labels) for _, labels in panels)))
    colours = arm_colours(plt, arms)
    legend = {}
    for ax, (group, labels) in zip(axes[0], panels, strict=True):
        for (label, kind), line in group.assign(label=labels).groupby(["label", "noise_kind"], sort=True):
            line = line.sort_values("noise")
            name = f"{label}, {kind}" if len(kinds) > 1 else label
            legend[name] = ax.errorbar(
                line["x"], line["mean"], yerr=line["std"], marker=markers.get(kind, "o"), capsize=3,
                color=colours[label], linestyle="-" if len(line) > 1 else "none",
            )  # fmt: skip
        ax.set_title(setting_title(group), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(metric)
    fig.supxlabel("share of wrong training labels (measured; the noise rate where not recorded)", fontsize=9)
    axes[0][-1].legend(legend.values(), legend.keys(), fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def arm_colours(plt, arms: list[str]) -> dict[str, object]:
    """A colour per arm, every one its own: matplotlib's ten while they suffice, tab20's twenty (paired shades)
    beyond, cycled only past twenty."""
    palette = [f"C{i}" for i in range(10)] if len(arms) <= 10 else list(plt.get_cmap("tab20").colors)
    return {label: palette[i % len(palette)] for i, label in enumerate(arms)}


def setting_title(summary: pd.DataFrame) -> str:
    """The dataset(s) and model pair(s) a plot shows: a figure says which models produced it, as its table does."""
    parts = [", ".join(sorted(summary[c].astype(str).unique())) for c in ("dataset", "model") if c in summary]
    return " · ".join(parts)


def plot_one_setting(plt, summary: pd.DataFrame, metric: str, baseline: str):
    """One noise setting: each arm's score (± sd over seeds), best on top, its difference to the baseline with
    the interval written beside it, the baseline as a dashed line."""
    summary = summary.assign(label=arm_labels(summary)).sort_values("mean").reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.32 * len(summary)))
    ax.errorbar(summary["mean"], summary.index, xerr=summary["std"], fmt="o", capsize=3, color="C0")
    base = summary.loc[summary["method"] == baseline, "mean"]
    if len(base) == 1:
        ax.axvline(base.iloc[0], color="grey", linestyle="--", linewidth=1)
    column = f"minus_{baseline}"
    for i, r in summary.iterrows():
        if column in summary and not pd.isna(r[column]):
            spread = "" if pd.isna(r["ci_lo"]) else f" [{r['ci_lo']:+.3f}, {r['ci_hi']:+.3f}]"
            text = f"  {r[column]:+.3f}{spread}" + (" unpaired" if r.get("interval") == UNPAIRED else "")
            right = r["mean"] + (0 if pd.isna(r["std"]) else r["std"])  # past the error bar, not over it
            ax.annotate(text, (right, i), fontsize=7, va="center", xytext=(4, 0), textcoords="offset points")
    ax.set_yticks(summary.index, summary["label"], fontsize=7)
    kind, noise = summary["noise_kind"].iloc[0], summary["noise"].iloc[0]
    ax.set_xlabel(f"{metric} (± sd over seeds; beside: minus {baseline}, 95 % interval) — {kind} noise {noise}")
    ax.set_title(setting_title(summary), fontsize=9)
    ax.grid(alpha=0.3, axis="x")
    ax.margins(x=0.3)
    return fig


# What a committed study keeps of each run: enough to remake its tables and intervals and every weighting's
# detector figures (weights.jsonl: each example's log-probs, weight and corruption flag; ~100 KB), no checkpoints.
KEPT_FILES = (
    "metrics.json", "weights.json", "weights.jsonl", "cleanlab.json", "selection.json", "predictions.jsonl"
)  # fmt: skip


def keep_runs(root: str | Path, dest: str | Path) -> int:
    """Copy KEPT_FILES of every run under `root` into `dest`; the number of runs.

    A run goes where `dest` already keeps the same job (a rerun replaces it), else to its own relative folder; when
    that folder keeps another job (one command line's job 0 is not another's) it goes beside it, to
    `<folder>~<job key>`: a kept run is never overwritten by a different job, nor by its own skipped rerun."""
    import shutil

    root, dest = Path(root), Path(dest)
    kept = {folder_job(p.parent): p.parent for p in sorted(dest.rglob("metrics.json"))} if dest.is_dir() else {}
    kept.pop(None, None)
    runs = sorted(p.parent for p in root.rglob("metrics.json"))
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        job = job_fingerprint(metrics)
        if job in kept and metrics.get("skipped"):
            continue  # a skipped rerun is the kept run itself, stamped "skipped": the kept files stay as they are
        target = kept.get(job) or dest / run.relative_to(root)
        if job is not None and folder_job(target) not in (None, job):
            from atlantis.signals.cache import cache_key, folder_beside  # imports torch: only here

            target = folder_beside(target, cache_key(json.loads(job)))
            log.warning("%s keeps another job: %s kept beside it, in %s", dest / run.relative_to(root), run, target)
        target.mkdir(parents=True, exist_ok=True)
        for name in KEPT_FILES:
            if (run / name).is_file():
                shutil.copyfile(run / name, target / name)
        add_job_key(target / "metrics.json")
        if job is not None:
            kept[job] = target
    return len(runs)


def add_job_key(path: Path) -> None:
    """A kept run without its job key gets it, computed here while the files its settings name are on this
    machine: `python -m atlantis.experiment.restore` then places it on any other."""
    from atlantis.signals.identity import JOB_KEY_VERSION, run_job_key  # imports torch: only here
    from atlantis.utils.io import atomic_write_json

    metrics = json.loads(path.read_text())
    if (metrics.get("job_key") or {}).get("version") == JOB_KEY_VERSION or (key := run_job_key(metrics)) is None:
        return
    atomic_write_json(path, dict(metrics, job_key={"key": key, "version": JOB_KEY_VERSION}))


def write_report(
    root: str | Path, metric: str = "test/f1_official", out: str | Path | None = None, baseline: str = BASELINE
) -> dict:
    root = Path(root)
    out = Path(out) if out else root
    frame = load_runs(root, metric)
    summary = summarise(frame, baseline, root, metric)
    paths = {
        "runs_csv": out / "report_runs.csv",
        "csv": out / "report.csv",
        "markdown": out / "report.md",
        "plot": out / "report.png",
    }
    atomic_write_text(paths["runs_csv"], frame.to_csv(index=False))
    atomic_write_text(paths["csv"], summary.to_csv(index=False))
    title = f"# Report: {metric} ({len(frame)} runs under {root})\n\n"
    atomic_write_text(paths["markdown"], title + to_markdown(summary, metric, baseline))
    plot(summary, metric, paths["plot"], baseline)
    from atlantis.report.diagnostics import detector_table, per_class_weights_table

    for name, table in (
        ("detectors", detector_table(root, frame)),
        ("weights_per_class", per_class_weights_table(root, frame)),
    ):
        if table:
            paths[name] = out / f"{name}.md"
            atomic_write_text(paths[name], f"# {name.replace('_', ' ').capitalize()} ({root})\n\n" + table)
        else:  # no run here has weights: an earlier report's table would describe runs that are gone
            (out / f"{name}.md").unlink(missing_ok=True)
    return paths
