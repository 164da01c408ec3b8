"""Tables from the runs' weight diagnostics: which detector finds the corrupted labels (cleanlab.json) and what
the weights did per class (weights.json), one row per setting, averaged over its seeds like the main table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

SETTING = ["noise_kind", "noise", "method", "variant", "reference"]


def _read(root: Path, run: str, name: str) -> dict | None:
    path = root / run / name
    return json.loads(path.read_text()) if path.is_file() else None


def _setting(row) -> str:
    variant = f" [{row['variant']}]" if row["variant"] else ""
    reference = f" ({row['reference']})" if row["reference"] not in ("-", None) else ""
    return f"{row['noise_kind']} {row['noise']} · {row['method']}{reference}{variant}"


def _cell(values: list) -> str:
    values = [v for v in values if v is not None and not pd.isna(v)]
    if not values:
        return ""
    mean = float(np.mean(values))
    return f"{mean:.3f} ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else f"{mean:.3f}"


def detector_table(root: str | Path, frame: pd.DataFrame) -> str:
    """Markdown: per setting with a cleanlab.json, the reference's strength and each detector's AUROC and
    precision against the known corrupted labels; '' when no run wrote one."""
    root, rows = Path(root), []
    for _, group in frame.groupby(SETTING, dropna=False, sort=True):
        reports = [r for r in (_read(root, run, "cleanlab.json") for run in group["run"]) if r]
        if not reports:
            continue
        reference = [r.get("reference") or {} for r in reports]
        weights = [r.get("atlantis_weights") or {} for r in reports]
        rows.append(
            [
                _setting(group.iloc[0]),
                str(len(reports)),
                _cell([r["n_corrupted"] / r["n"] for r in reports]),
                _cell([x.get("top_is_clean") for x in reference]),
                _cell([x.get("top_is_clean_where_corrupted") for x in reference]),
                _cell([r["cleanlab"]["auroc_clean_vs_noisy"] for r in reports]),
                _cell([w.get("auroc_clean_vs_noisy") for w in weights]),
                _cell([r["cleanlab"]["precision_at_m"] for r in reports]),
                _cell([w.get("precision_at_m") for w in weights]),
                _cell([r["cleanlab"]["precision"] for r in reports]),
                _cell([(w.get("matched_budget") or {}).get("precision") for w in weights]),
            ]
        )
    if not rows:
        return ""
    header = [
        "setting",
        "runs",
        "corrupted share",
        "reference top = clean",
        "… where corrupted",
        "cleanlab AUROC",
        "weights AUROC",
        "cleanlab P@m",
        "weights P@m",
        "cleanlab P (its flags)",
        "weights P (as many)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    note = (
        "\nAgainst the known corrupted training labels (mean ± sd over runs). Reference top = clean: how often the "
        "cross-fitted reference's most likely label is the clean one, which bounds what a detector reading it can "
        "find. AUROC ranks clean above corrupted; P@m: precision of the m lowest-scored, m = the corrupted count; "
        "cleanlab P: precision of cleanlab's own flags; weights P: the same number of lowest weights.\n"
    )
    return "\n".join(lines) + "\n" + note


def per_class_weights_table(root: str | Path, frame: pd.DataFrame) -> str:
    """Markdown: the mean weight each observed (given) label received, per weighted setting; '' when none."""
    root, columns = Path(root), {}
    for _, group in frame.groupby(SETTING, dropna=False, sort=True):
        per_class = [
            (r.get("per_class") or {}) for r in (_read(root, run, "weights.json") for run in group["run"]) if r
        ]
        per_class = [p for p in per_class if p]
        if per_class:
            labels = sorted({label for p in per_class for label in p})
            columns[_setting(group.iloc[0])] = {
                label: (
                    np.mean([p[label]["mean_weight"] for p in per_class if label in p]),
                    np.mean([p[label]["frequency"] for p in per_class if label in p]),
                )
                for label in labels
            }
    if not columns:
        return ""
    labels = sorted({label for column in columns.values() for label in column})
    lines = ["| given label | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for label in labels:
        cells = [
            f"{column[label][0]:.2f} ({100 * column[label][1]:.0f} %)" if label in column else ""
            for column in columns.values()
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    note = (
        "\nMean weight of the training examples carrying each label (after normalisation to mean 1 over the "
        "training set; in brackets the label's share of the training set), averaged over runs.\n"
    )
    return "\n".join(lines) + "\n" + note
