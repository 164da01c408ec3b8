"""Label noise injected into training (and by default validation) labels, reproducibly by seed."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from atlantis.data.examples import DatasetFormatError, RelationExample
from atlantis.data.semeval import reverse_direction

log = logging.getLogger(__name__)

NOISE_KINDS = ("uniform", "confusable", "llm_like", "file", "labeller", "incomplete")


def check_rate(rate: float) -> float:
    if not isinstance(rate, (int, float)) or not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"noise rate must be a number in [0, 1), got {rate!r} (set it as e.g. noise=0.2)")
    return float(rate)


def confusion_partner(label: str, labels: Sequence[str], partners: Mapping[str, str] | None) -> str:
    """The reversed direction when the inventory has it, else the configured partner, else the next label."""
    reversed_label = reverse_direction(label)
    if reversed_label is not None and reversed_label in labels:
        return reversed_label
    if partners and label in partners:
        partner = partners[label]
        if partner not in labels or partner == label:
            raise ValueError(f"confusion partner of {label!r} is {partner!r}; expected another label of {labels}")
        return partner
    return labels[(list(labels).index(label) + 1) % len(labels)]


def _corrupt_label(
    label: str,
    kind: str,
    labels: Sequence[str],
    rng: np.random.Generator,
    partners: Mapping[str, str] | None,
    attractors: Sequence[str],
    attractor_mass: float,
) -> str:
    others = [candidate for candidate in labels if candidate != label]
    if kind == "uniform":
        return others[rng.integers(len(others))]
    if kind == "confusable":
        return confusion_partner(label, labels, partners)
    if kind == "llm_like":
        targets = [a for a in attractors if a != label]
        if targets and rng.random() < attractor_mass:
            return targets[rng.integers(len(targets))]
        return others[rng.integers(len(others))]
    raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")


def inject_noise(
    examples: Sequence[RelationExample],
    rate: float,
    kind: str,
    labels: Sequence[str],
    seed: int,
    partners: Mapping[str, str] | None = None,
    attractors: Sequence[str] = (),
    attractor_mass: float = 0.8,
    predictions_file: str | Path | None = None,
    weak_file: str | Path | None = None,
    natural: bool = False,
    fill: str | None = None,
    negative: str | None = None,
    annotated: Sequence[RelationExample] = (),
) -> list[RelationExample]:
    """Corrupt exactly round(rate * N) labels (chosen with `seed`); the clean label is kept on each example.

    `file` replaces labels with weak labels read from `predictions_file` by example id instead. `annotated`:
    examples training beside these whose labels no noise touches (the trusted seed), for `incomplete`.
    """
    rate = check_rate(rate)
    if kind == "file":
        return file_labels(examples, predictions_file, labels)
    if kind == "labeller":
        if weak_file is None:
            raise ValueError(
                "noise_kind=labeller needs noise_kind.weak_file (weak.jsonl from atlantis.experiment.labeller)"
            )
        return labeller_noise(examples, read_weak_file(weak_file, labels), rate, seed, natural, fill)
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")
    if kind == "incomplete":
        return incomplete_labels(examples, rate, negative, seed, annotated)
    return flip_labels(examples, rate, kind, labels, seed, partners, attractors, attractor_mass)


def file_labels(examples: Sequence[RelationExample], predictions_file, labels) -> list[RelationExample]:
    """`file` noise: weak labels read from `predictions_file` by example id replace the given ones."""
    if predictions_file is None:
        raise ValueError("noise_kind=file needs noise_kind.predictions_file (a JSONL or TSV of id, label)")
    weak = read_weak_labels(predictions_file, labels)
    missing = [example.id for example in examples if example.id not in weak]
    if missing:  # the realised noise is then below the file's: say so, as the report's "train labels wrong" would
        log.warning(
            "%s has no label for %d of %d examples (e.g. %s): they keep their given label",
            predictions_file, len(missing), len(examples), ", ".join(missing[:3]),
        )  # fmt: skip
    return [example.with_label(weak.get(example.id, example.label)) for example in examples]


def flip_labels(examples, rate, kind, labels, seed, partners, attractors, attractor_mass) -> list[RelationExample]:
    """Uniform, confusable or llm_like noise: round(rate * N) seeded examples get another label."""
    for attractor in attractors:
        if attractor not in labels:
            raise ValueError(f"llm_like attractor {attractor!r} is not a label; expected some of {list(labels)}")
    if len(labels) < 2:
        raise ValueError(f"label noise needs at least two labels, got {list(labels)}")
    n_corrupt = round(rate * len(examples))
    if n_corrupt == 0:
        return list(examples)
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(len(examples), size=n_corrupt, replace=False).tolist())
    noisy = []
    for index, example in enumerate(examples):
        if index in chosen:
            new = _corrupt_label(example.clean_label, kind, labels, rng, partners, attractors, attractor_mass)
            example = example.with_label(new)
        noisy.append(example)
    return noisy


def incomplete_labels(
    examples: Sequence[RelationExample],
    rate: float,
    negative: str | None,
    seed: int,
    annotated: Sequence[RelationExample] = (),
) -> list[RelationExample]:
    """Document-level noise: missing labels. round(rate * P) of the P positive (pair, relation) instances, drawn
    with the seed, lose their annotation (rate = 1 - kappa; DocRED-like kappa 0.45 is noise=0.55); negatives stay.
    A pair left with no annotated relation becomes one negative example, as an unannotated pair is in DocRED; a
    pair that keeps another relation shows only that one, so its missed instance is dropped rather than turned
    into a "no relation" target that would contradict the relation it keeps. A pair is what the model reads: the
    same text, head and tail. `annotated`: gold examples that train beside these (the trusted seed); a pair with
    one of them keeps that relation too."""
    if negative is None:
        raise ValueError("noise_kind=incomplete needs a dataset with a negative label (no relation)")
    positives = [i for i, e in enumerate(examples) if e.clean_label != negative]
    n_drop = round(rate * len(positives))
    drawn = (
        set(np.random.default_rng(seed).choice(positives, size=n_drop, replace=False).tolist()) if n_drop else set()
    )

    def pair(example: RelationExample) -> tuple[str, str, str]:
        return example.text, example.head, example.tail

    kept = {pair(examples[i]) for i in positives if i not in drawn}
    kept |= {pair(e) for e in annotated if e.label != negative}
    noisy, negated = [], set()
    for i, example in enumerate(examples):
        if i not in drawn:
            noisy.append(example)
        elif pair(example) not in kept and pair(example) not in negated:
            negated.add(pair(example))
            noisy.append(example.with_label(negative))
    if n_drop:
        log.info(
            "incomplete labels: %d of %d positive instances missed; %d pairs left with no relation become "
            "negatives, %d missed instances of pairs that keep another relation are dropped",
            n_drop, len(positives), len(negated), len(examples) - len(noisy),
        )  # fmt: skip
    return noisy


def missing_label_counts(before: Sequence[RelationExample], after: Sequence[RelationExample], negative: str) -> dict:
    """What `incomplete` noise did to a split: positive instances, how many were missed, how many of those became
    negative examples (their pair left with no relation), and how many were dropped (their pair keeps another)."""
    n_positive = sum(e.clean_label != negative for e in before)
    n_negated = sum(e.is_noisy for e in after)
    n_dropped = len(before) - len(after)
    return {
        "n_positive": n_positive,
        "n_missed": n_negated + n_dropped,
        "n_negated": n_negated,
        "n_dropped": n_dropped,
    }


def read_weak_file(path: str | Path, labels: Sequence[str]) -> dict[str, dict]:
    """{id: {"label", "probs"}} from a labeller's weak.jsonl; every line must name a known label."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"labeller file not found: {path} (make it with python -m atlantis.experiment.labeller)"
        )
    weak = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetFormatError(f"{path}:{line_no}: malformed JSON ({err.msg})") from err
            if not isinstance(record, dict) or record.get("label") not in labels or "id" not in record:
                raise DatasetFormatError(
                    f'{path}:{line_no}: expected {{"id", "label" (one of {list(labels)}), "probs"}}, got {line[:200]!r}'
                )
            weak[str(record["id"])] = {"label": record["label"], "probs": record.get("probs") or {}}
    return weak


def labeller_noise(
    examples: Sequence[RelationExample], weak: dict[str, dict], rate: float, seed: int, natural: bool, fill: str | None
) -> list[RelationExample]:
    """The labeller's own errors as label noise: round(rate * N) of the examples it got wrong, drawn with `seed`,
    take its answer (its confusion structure kept); the rest keep gold. natural: every error (its natural rate).
    A rate above the natural one is an error unless fill=second_best tops up with the labeller's best wrong
    answer on examples it got right (synthetic noise; say so)."""
    missing = [e.id for e in examples if e.id not in weak]
    if missing:
        raise KeyError(f"the labeller file lacks {len(missing)} of {len(examples)} examples, e.g. {missing[:5]}")
    wrong = [i for i, e in enumerate(examples) if weak[e.id]["label"] != e.clean_label]
    n = len(wrong) if natural else round(rate * len(examples))
    rng = np.random.default_rng(seed)
    chosen = {
        wrong[i]: weak[examples[wrong[i]].id]["label"] for i in rng.permutation(len(wrong))[: min(n, len(wrong))]
    }
    if n > len(wrong):
        natural_rate = len(wrong) / len(examples)
        if fill != "second_best":
            raise ValueError(
                f"noise rate {rate} is above the labeller's natural error rate {natural_rate:.3f} on these "
                f"{len(examples)} examples; lower it, use noise_kind.natural=true, or top up with noise_kind.fill=second_best"
            )
        right = [i for i in range(len(examples)) if i not in set(wrong)]
        for i in rng.permutation(len(right))[: n - len(wrong)]:
            example = examples[right[i]]
            probs = {k: v for k, v in weak[example.id]["probs"].items() if k != example.clean_label}
            if not probs:
                raise ValueError(f"fill=second_best needs the labeller's probabilities; {example.id} has none")
            chosen[right[i]] = max(probs, key=probs.get)
    return [e.with_label(chosen[i]) if i in chosen else e for i, e in enumerate(examples)]


def read_weak_labels(path: str | Path, labels: Sequence[str]) -> dict[str, str]:
    """{id: label} from JSONL (`{"id": .., "label": ..}`) or TSV (`id<TAB>label`) predictions."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weak-label predictions file not found: {path}")
    weak: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            where = f"{path}:{line_no}"
            example_id, label = parse_weak_line(line, where)
            if label not in labels:
                raise DatasetFormatError(f"{where}: unknown label {label!r}; expected one of {list(labels)}")
            if example_id in weak:
                raise DatasetFormatError(f"{where}: example id {example_id} appears twice")
            weak[example_id] = label
    if not weak:
        raise DatasetFormatError(f"{path}: the file is empty; expected one weak label per line")
    return weak


def parse_weak_line(line: str, where: str) -> tuple[str, str]:
    """(id, label) of one line of a weak-label file: JSON `{"id": .., "label": ..}` or `id<TAB>label`."""
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetFormatError(f"{where}: malformed JSON ({err.msg})") from err
        if not isinstance(record, dict) or "id" not in record or "label" not in record:
            raise DatasetFormatError(f'{where}: expected {{"id": ..., "label": ...}}, got {line!r}')
        return str(record["id"]), record["label"]
    parts = line.split("\t")
    if len(parts) != 2:
        raise DatasetFormatError(f"{where}: expected `id<TAB>label`, got {line!r}")
    return parts[0], parts[1]


def noise_summary(examples: Sequence[RelationExample]) -> dict:
    n_noisy = sum(example.is_noisy for example in examples)
    return {"n": len(examples), "n_noisy": n_noisy, "rate": n_noisy / max(len(examples), 1)}
