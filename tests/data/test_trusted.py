"""The trusted seed: k gold labels per class, seeded and stratified, drawn before noise, never in validation or
test, and in (or out of) the training set as trusted.use says."""

from collections import Counter

import pytest

from atlantis.data.examples import RelationExample
from atlantis.data.splits import build_splits
from atlantis.data.synthetic import SyntheticReader
from atlantis.data.trusted import check_disjoint, combine, draw_trusted


def pool(counts: dict[str, int]) -> list[RelationExample]:
    return [
        RelationExample(f"{label}-{i}", "x", "h", "t", label, label) for label, n in counts.items() for i in range(n)
    ]


def test_draw_is_stratified_seeded_and_records_shortfall():
    examples = pool({"A": 20, "B": 8, "C": 2})
    trusted, shortfall = draw_trusted(examples, ["A", "B", "C"], 5, seed=0)
    assert Counter(e.label for e in trusted) == {"A": 5, "B": 5, "C": 2}
    assert shortfall == {"C": 3}
    again, _ = draw_trusted(examples, ["A", "B", "C"], 5, seed=0)
    other, _ = draw_trusted(examples, ["A", "B", "C"], 5, seed=1)
    assert [e.id for e in again] == [e.id for e in trusted]
    assert [e.id for e in other] != [e.id for e in trusted]


def test_trusted_examples_carry_their_clean_label():
    noisy = [e.with_label("B") for e in pool({"A": 6})]  # a pool whose given labels are wrong
    trusted, _ = draw_trusted(noisy, ["A", "B"], 3, seed=0)
    assert all(e.label == e.clean_label == "A" and not e.is_noisy for e in trusted)


def test_combine_and_unknown_use():
    noisy, trusted = pool({"A": 3}), pool({"B": 2})
    assert combine(noisy, trusted, "union") == noisy + trusted
    assert combine(noisy, trusted, "none") == noisy
    assert combine(noisy, trusted, "only") == trusted
    with pytest.raises(ValueError, match="trusted.use must be one of"):
        combine(noisy, trusted, "both")


def test_check_disjoint_names_the_split():
    with pytest.raises(ValueError, match="also in validation, e.g. \\['A-0'\\]"):
        check_disjoint(pool({"A": 2}), train=pool({"B": 1}), validation=pool({"A": 1}))


def splits(**options):
    reader = SyntheticReader((300, 60, 60))
    return build_splits(reader, noise_rate=0.5, seed=0, max_train_examples=100, **options)


@pytest.mark.parametrize("use", ["union", "none", "only"])
def test_trusted_ids_never_leak(use):
    """No trusted id is in validation or test, none is corrupted, and under `none` none trains."""
    s = splits(trusted_per_class=4, trusted_use=use)
    trusted = {e.id for e in s.trusted}
    assert len(trusted) == 4 * len(s.labels)
    assert not trusted & {e.id for e in s.validation + s.test}
    train = {e.id for e in s.train}
    assert {"union": trusted <= train, "none": not trusted & train, "only": train == trusted}[use]
    assert all(not e.is_noisy for e in s.trusted)
    assert s.info["trusted"]["ids"] == [e.id for e in s.trusted] and s.info["trusted"]["use"] == use


def test_trusted_comes_from_outside_the_subsample_and_leaves_the_noise_alone():
    """With a subsample, the trusted seed is drawn from the examples it left out: the noisy set (ids and labels)
    is the one the job has without a trusted seed."""
    plain, seeded = splits(), splits(trusted_per_class=4, trusted_use="union")
    assert seeded.info["trusted"]["from"] == "outside_train_subsample"
    noisy = [e for e in seeded.train if e.id not in {t.id for t in seeded.trusted}]
    assert [(e.id, e.label) for e in noisy] == [(e.id, e.label) for e in plain.train]
    assert len(seeded.train) == len(plain.train) + len(seeded.trusted)


def test_trusted_out_of_the_training_set_without_a_subsample():
    s = build_splits(SyntheticReader((120, 30, 30)), noise_rate=0.2, seed=0, trusted_per_class=3, trusted_use="none")
    assert s.info["trusted"]["from"] == "train"
    assert len(s.train) == 120 - 3 * len(s.labels)
    assert round(0.2 * len(s.train)) == sum(e.is_noisy for e in s.train)  # the noise rate of the noisy set


def test_no_trusted_seed_is_the_plain_job():
    s = splits()
    assert s.trusted == [] and "trusted" not in s.info


def test_a_class_the_left_out_examples_lack_is_topped_up_from_the_training_set():
    """A subsample that leaves out few examples: the seed is still k per class, the rest out of the training set."""
    s = build_splits(SyntheticReader((110, 30, 30)), noise_rate=0.5, seed=0, max_train_examples=100,
                     trusted_per_class=4, trusted_use="none")  # fmt: skip
    assert s.info["trusted"]["from"] == "outside_train_subsample+train" and s.info["trusted"]["shortfall"] == {}
    assert Counter(e.label for e in s.trusted) == {label: 4 for label in s.labels}
    assert not {e.id for e in s.trusted} & {e.id for e in s.train} and len(s.train) == 100 - (20 - 10)
