import random
import re
import subprocess

import pytest
import torch

from atlantis.data.semeval import DIRECTED_LABELS, collapse_direction, reverse_direction
from atlantis.eval.metrics import INVALID, classification_report, semeval_official_f1


def perl_scores(perl, scorer_dir, proposed_path, key_path) -> tuple[float, float]:
    """(official score, directionality-ignored macro-F1) as the Perl scorer prints them, in percent."""
    out = subprocess.run(
        [perl, str(scorer_dir / "semeval2010_task8_scorer-v1.2.pl"), str(proposed_path), str(key_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    official = float(re.search(r"macro-averaged F1 = ([\d.]+)%", out).group(1))
    undirected_block = out.split("<<< (9+1)-WAY EVALUATION IGNORING DIRECTIONALITY >>>")[1]
    undirected = float(
        re.search(r"MACRO-averaged result \(excluding Other\):\nP = .*F1 = +([\d.]+)%", undirected_block).group(1)
    )
    return official, undirected


def read_pairs(path):
    return dict(line.split("\t") for line in path.read_text().splitlines() if line.strip())


def perturbed_predictions(gold: dict, seed: int) -> dict:
    """Realistic errors on the real test key: wrong relation, wrong direction, Other, and skipped ids."""
    rng = random.Random(seed)
    pred = {}
    for example_id, label in gold.items():
        r = rng.random()
        if r < 0.10:
            continue  # skipped (an invalid output)
        if r < 0.25 and reverse_direction(label):
            pred[example_id] = reverse_direction(label)
        elif r < 0.45:
            pred[example_id] = rng.choice(DIRECTED_LABELS)
        else:
            pred[example_id] = label
    return pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_with_the_official_perl_scorer(semeval_dir, perl, tmp_path, seed):
    key_path = semeval_dir / "TEST_FILE_KEY_DIRECTED.TXT"
    gold = read_pairs(key_path)
    pred = perturbed_predictions(gold, seed)
    proposed = tmp_path / "proposed.txt"
    proposed.write_text("".join(f"{i}\t{label}\n" for i, label in pred.items()))
    official, undirected = perl_scores(perl, semeval_dir / "scorer", proposed, key_path)
    ids = list(gold)
    ours = semeval_official_f1([gold[i] for i in ids], [pred.get(i) for i in ids], directed=True)
    ours_undirected = semeval_official_f1([gold[i] for i in ids], [pred.get(i) for i in ids], directed=False)
    assert f"{100 * ours:.2f}" == f"{official:.2f}"
    assert f"{100 * ours_undirected:.2f}" == f"{undirected:.2f}"
    # The same figure through the index-based report used in training (invalid = skipped).
    labels = list(DIRECTED_LABELS)
    report = classification_report(
        [labels.index(gold[i]) for i in ids],
        [labels.index(pred[i]) if i in pred else INVALID for i in ids],
        labels,
        "Other",
    )
    assert f"{100 * report['f1_official']:.2f}" == f"{official:.2f}"
    # Collapsed labels: the official figure is the scorer's directionality-ignored one.
    collapsed = sorted({collapse_direction(label) for label in labels})
    report = classification_report(
        [collapsed.index(collapse_direction(gold[i])) for i in ids],
        [collapsed.index(collapse_direction(pred[i])) if i in pred else INVALID for i in ids],
        collapsed,
        "Other",
    )
    assert f"{100 * report['f1_official']:.2f}" == f"{undirected:.2f}"


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_parity_on_the_scorers_own_test_vectors(semeval_dir, perl, n):
    scorer = semeval_dir / "scorer"
    key, proposed = read_pairs(scorer / f"answer_key{n}.txt"), read_pairs(scorer / f"proposed_answer{n}.txt")
    official, _ = perl_scores(perl, scorer, scorer / f"proposed_answer{n}.txt", scorer / f"answer_key{n}.txt")
    ids = list(key)
    assert (
        f"{100 * semeval_official_f1([key[i] for i in ids], [proposed.get(i) for i in ids]):.2f}" == f"{official:.2f}"
    )


def test_report_on_a_hand_computed_case():
    labels = ["A", "B", "Other"]
    gold = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, INVALID, 2, 0]
    report = classification_report(gold, pred, labels, negative="Other")
    # A: P 1/2 R 1/2; B: P 1/2 R 1/2; Other: P 1 R 1/2 -> F1 2/3.
    assert report["per_class"]["A"]["f1"] == pytest.approx(0.5)
    assert report["per_class"]["Other"]["f1"] == pytest.approx(2 / 3)
    assert report["f1_macro"] == pytest.approx((0.5 + 0.5 + 2 / 3) / 3)
    # micro excluding Other: TP 2, predicted A/B 4, gold A/B 4.
    assert report["f1_micro"] == pytest.approx(0.5)
    assert report["f1_official"] == pytest.approx(0.5)
    assert report["invalid_rate"] == pytest.approx(1 / 6)
    cm = torch.tensor(report["confusion_matrix"])
    assert cm.shape == (4, 4) and cm[1, 3] == 1 and cm.sum() == 6
