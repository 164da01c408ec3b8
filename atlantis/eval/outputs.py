"""What a run leaves in its folder: predictions, the confusion matrix as CSV and PNG."""

from __future__ import annotations

from pathlib import Path

from atlantis.utils.io import atomic_write_jsonl, atomic_write_text

# The test report's scalars that metrics.json keeps, per task (extraction adds its string-strict pair counts).
TASK_SCALARS = {
    "classification": ("f1_official", "f1_macro", "f1_micro", "accuracy", "invalid_rate"),
    "extraction": (
        "f1_official", "f1_macro", "f1_micro", "accuracy", "invalid_rate",
        "precision", "recall", "invalid_lines", "generated_lines",
    ),
}  # fmt: skip


def write_test_outputs(task: str, run_dir: Path, records: list[dict], examples_by_id: dict, labels, report, title):
    """predictions.jsonl, and for classification the confusion matrix (CSV and PNG)."""
    if task == "extraction":
        write_extractions(run_dir / "predictions.jsonl", records, examples_by_id)
        return
    write_predictions(run_dir / "predictions.jsonl", records, examples_by_id, labels)
    write_confusion(
        run_dir, report["confusion_matrix"], labels, f"{title} test (official F1 {report['f1_official']:.4f})"
    )


def write_predictions(path: Path, records: list[dict], examples_by_id: dict, labels: list[str]) -> None:
    rows = []
    for r in records:
        example = examples_by_id[r["id"]]
        rows.append(
            {
                "id": r["id"],
                "text": example.text,
                "gold": labels[r["gold"]],
                "predicted": labels[r["pred"]] if r["pred"] >= 0 else None,
                "raw": r["raw"],
                **({"relations": [labels[i] for i in r["relations"]]} if "relations" in r else {}),
            }
        )
    atomic_write_jsonl(path, rows)


def write_extractions(path: Path, records: list[dict], examples_by_id: dict) -> None:
    """End-to-end extraction: the generated text, its parsed pairs and invalid lines, beside the gold pairs."""
    from atlantis.utils.pair_lines import parse_pairs

    rows = []
    for r in records:
        predicted, _, invalid = parse_pairs(r["raw"])
        gold, _, _ = parse_pairs(r["gold"])
        rows.append(
            {
                "id": r["id"],
                "text": examples_by_id[r["id"]].text,
                "gold": sorted(gold),
                "predicted": sorted(predicted),
                "invalid_lines": invalid,
                "raw": r["raw"],
            }
        )
    atomic_write_jsonl(path, rows)


def write_confusion(run_dir: Path, matrix: list[list[int]], labels: list[str], title: str) -> None:
    """confusion_matrix.csv (rows gold, columns predicted, last column invalid) and a PNG heat map."""
    columns = list(labels) + ["<invalid>"]
    lines = ["gold\\predicted," + ",".join(columns)]
    lines += [",".join([label] + [str(v) for v in row]) for label, row in zip(labels, matrix, strict=False)]
    atomic_write_text(run_dir / "confusion_matrix.csv", "\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.array(matrix)[: len(labels)]
    size = max(5, 0.45 * len(columns) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(columns)), columns, rotation=70, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title, fontsize=9)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if counts[i, j] > counts.max() / 2 else "black",
                )
    fig.tight_layout()
    tmp = run_dir / ".confusion_matrix.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(run_dir / "confusion_matrix.png")
