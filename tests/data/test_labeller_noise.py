"""noise_kind=labeller: a labeller's own errors at a target rate, its confusion structure kept."""

import json

import pytest

from atlantis.data.examples import RelationExample
from atlantis.data.noise import inject_noise

LABELS = ["A", "B", "C"]


def examples(n=100):
    return [RelationExample(f"x{i}", "t", "h", "t", LABELS[i % 3], LABELS[i % 3]) for i in range(n)]


def weak_file(tmp_path, exs, wrong_every=3):
    """The labeller answers the next label on every `wrong_every`-th example (natural rate ~1/3)."""
    path = tmp_path / "weak.jsonl"
    with open(path, "w") as f:
        for i, e in enumerate(exs):
            label = LABELS[(LABELS.index(e.clean_label) + 1) % 3] if i % wrong_every == 0 else e.clean_label
            probs = {k: (0.7 if k == label else 0.1) for k in LABELS}
            probs[LABELS[(LABELS.index(e.clean_label) + 2) % 3]] += 0.05
            f.write(json.dumps({"id": e.id, "label": label, "probs": probs}) + "\n")
    return path, {json.loads(line)["id"]: json.loads(line)["label"] for line in path.read_text().splitlines()}


def test_exactly_round_rn_labels_differ_and_each_is_the_labellers_answer(tmp_path):
    exs = examples()
    path, answers = weak_file(tmp_path, exs)
    noisy = inject_noise(exs, 0.2, "labeller", LABELS, seed=3, weak_file=path)
    changed = [e for e in noisy if e.label != e.clean_label]
    assert len(changed) == 20 and all(e.label == answers[e.id] and e.is_noisy for e in changed)
    again = inject_noise(exs, 0.2, "labeller", LABELS, seed=3, weak_file=path)
    assert [e.label for e in again] == [e.label for e in noisy]  # same seed, same labels
    natural = inject_noise(exs, 0.0, "labeller", LABELS, seed=3, weak_file=path, natural=True)
    assert sum(e.is_noisy for e in natural) == 34  # every error: ids 0, 3, ..., 99


def test_above_the_natural_rate_is_an_error_unless_topped_up(tmp_path):
    exs = examples()
    path, _ = weak_file(tmp_path, exs)
    with pytest.raises(ValueError, match="natural error rate 0.340"):
        inject_noise(exs, 0.5, "labeller", LABELS, seed=0, weak_file=path)
    topped = inject_noise(exs, 0.5, "labeller", LABELS, seed=0, weak_file=path, fill="second_best")
    assert sum(e.is_noisy for e in topped) == 50
    extra = [e for i, e in enumerate(topped) if e.is_noisy and i % 3 != 0]
    assert len(extra) == 16 and all(e.label == LABELS[(LABELS.index(e.clean_label) + 2) % 3] for e in extra)


def test_missing_ids_and_bad_lines_name_the_problem(tmp_path):
    exs = examples(6)
    path, _ = weak_file(tmp_path, exs[:5])
    with pytest.raises(KeyError, match="lacks 1 of 6"):
        inject_noise(exs, 0.1, "labeller", LABELS, seed=0, weak_file=path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x0", "label": "Z"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        inject_noise(exs, 0.1, "labeller", LABELS, seed=0, weak_file=bad)
