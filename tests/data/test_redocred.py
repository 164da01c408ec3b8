"""Re-DocRED as pairs: the split by document, NA sampling, and incomplete-label noise."""

import pytest

from atlantis.data.examples import RelationExample
from atlantis.data.noise import inject_noise
from atlantis.data.redocred import NO_RELATION, ReDocREDReader


def document_of(example_id: str) -> str:
    return example_id.split(":")[0]


def test_dev_split_is_by_document_reproducible_and_test_counts_match(redocred_dir):
    reader = ReDocREDReader(str(redocred_dir))
    splits = reader.load(seed=0)
    documents = reader.documents(seed=0)
    train_docs = {document_of(e.id) for e in splits.train}
    val_docs = {document_of(e.id) for e in splits.validation}
    labelled = {d["key"] for d in documents["train"] if d["labels"]}  # a document without facts adds no pair
    assert train_docs == labelled and len(documents["train"]) == 400 and len(val_docs) == 100
    assert not train_docs & val_docs
    assert len(splits.test) == 198_670 and sum(e.label != NO_RELATION for e in splits.test) == 13_627
    assert [d["key"] for d in reader.documents(seed=0)["validation"]] == [d["key"] for d in documents["validation"]]
    assert {d["key"] for d in reader.documents(seed=1)["validation"]} != val_docs


def test_training_keeps_every_positive_and_samples_na_at_the_ratio(redocred_dir):
    reader = ReDocREDReader(str(redocred_dir), na_ratio=3.0, max_docs=5)
    docs = reader.documents(seed=0)["train"]
    splits = reader.load(seed=0)
    for doc in docs:
        mine = [e for e in splits.train if document_of(e.id) == doc["key"]]
        positives = [e for e in mine if e.label != NO_RELATION]
        n_triples = len({(lab["h"], lab["t"], lab["r"]) for lab in doc["labels"]})
        assert len(positives) == n_triples  # one instance per (pair, relation)
        assert abs((len(mine) - len(positives)) - 3 * len(positives)) <= 1


def test_incomplete_turns_exactly_the_drawn_positives_into_no_relation():
    examples = [
        RelationExample(f"x{i}", "doc", f"h{i}", "t", "P" if i % 2 else NO_RELATION, "P" if i % 2 else NO_RELATION)
        for i in range(40)
    ]  # one relation a pair: every missed one leaves its pair unannotated
    noisy = inject_noise(examples, 0.55, "incomplete", ["P", NO_RELATION], seed=7, negative=NO_RELATION)
    dropped = [e for e in noisy if e.is_noisy]
    assert len(noisy) == len(examples)
    assert len(dropped) == round(0.55 * 20) and all(e.label == NO_RELATION and e.clean_label == "P" for e in dropped)
    assert all(e.label == NO_RELATION for e in noisy if e.clean_label == NO_RELATION)  # negatives untouched
    again = inject_noise(examples, 0.55, "incomplete", ["P", NO_RELATION], seed=7, negative=NO_RELATION)
    assert [e.id for e in again if e.is_noisy] == [e.id for e in dropped]
    with pytest.raises(ValueError, match="negative label"):
        inject_noise(examples, 0.5, "incomplete", ["P", NO_RELATION], seed=7)


def test_a_missed_relation_of_a_pair_that_keeps_another_is_dropped_not_negated():
    labels = ["A", "B", "C", NO_RELATION]
    # pair 0 holds three relations, pairs 1-5 one each; at rate 0.5 four of the eight instances are missed
    examples = [RelationExample(f"p0:{r}", "doc", "h0", "t", r, r) for r in "ABC"]
    examples += [RelationExample(f"p{i}", "doc", f"h{i}", "t", "A", "A") for i in range(1, 6)]
    for seed in range(20):
        noisy = inject_noise(examples, 0.5, "incomplete", labels, seed=seed, negative=NO_RELATION)
        kept = {e.id for e in noisy}
        missed = {e.id for e in examples} - {e.id for e in noisy if not e.is_noisy}
        assert len(missed) == 4
        pair0 = [e for e in noisy if e.id.startswith("p0:")]
        annotated = [e for e in pair0 if not e.is_noisy]
        # pair 0: with a relation left, its missed ones vanish; with none left, it is one negative example
        assert pair0 == annotated if annotated else [e.label for e in pair0] == [NO_RELATION]
        assert all(e.label == NO_RELATION for e in noisy if e.is_noisy)
        singles = {f"p{i}" for i in range(1, 6)}
        assert singles <= kept  # a pair with one relation always stays, negated when missed
        assert len(noisy) == len(examples) - sum(1 for e in examples if e.id.startswith("p0:") and e.id not in kept)


def test_a_test_slice_keeps_whole_documents(redocred_dir):
    reader = ReDocREDReader(str(redocred_dir), max_docs=3, max_test_docs=1)
    docs = reader.documents(seed=0)
    assert [len(docs[k]) for k in ("train", "validation", "test")] == [3, 3, 1]
    n = len(docs["test"][0]["vertexSet"])
    assert len(reader.load(seed=0).test) == n * (n - 1)  # every ordered pair of the one test document


def test_incomplete_noise_of_the_new_meaning_is_a_new_job_and_other_kinds_keep_their_keys():
    from atlantis.experiment.jobs import noise_identity

    assert noise_identity({"name": "incomplete"}) == {"name": "incomplete", "version": 4}
    assert noise_identity({"name": "uniform"}) == {"name": "uniform"}  # the committed studies' keys stand


def test_a_pair_holding_a_gold_relation_is_annotated_and_the_counts_add_up():
    from atlantis.data.noise import missing_label_counts

    labels = ["A", "B", NO_RELATION]
    examples = [RelationExample(f"p{i}:B", "doc", f"h{i}", "t", "B", "B") for i in range(10)]
    gold = [RelationExample(f"p{i}:A", "doc", f"h{i}", "t", "A", "A") for i in range(5)]  # pairs 0-4 hold A
    noisy = inject_noise(examples, 1.0 - 1e-9, "incomplete", labels, seed=0, negative=NO_RELATION, annotated=gold)
    assert [e.id for e in noisy] == [f"p{i}:B" for i in range(5, 10)]  # every B missed; 0-4 keep their gold A
    assert all(e.label == NO_RELATION for e in noisy)
    counts = missing_label_counts(examples, noisy, NO_RELATION)
    assert counts == {"n_positive": 10, "n_missed": 10, "n_negated": 5, "n_dropped": 5}


def write_documents(root, n_docs=40, n_entities=12, n_facts=10, n_double=2, seed=0):
    """Re-DocRED files of `n_docs` dev documents, each with `n_facts` relations on distinct ordered pairs, the
    first `n_double` of those pairs holding a second relation."""
    import json

    import numpy as np

    rng = np.random.default_rng(seed)
    pairs = [(h, t) for h in range(n_entities) for t in range(n_entities) if h != t]

    def document(title):
        chosen = [pairs[c] for c in rng.choice(len(pairs), size=n_facts, replace=False)]
        facts = [(h, t, "P19") for h, t in chosen] + [(h, t, "P551") for h, t in chosen[:n_double]]
        return {
            "title": title,
            "sents": [[title, *(f"E{i}" for i in range(n_entities))]],  # a pair is its document's text and names
            "vertexSet": [
                [{"name": f"E{i}", "type": "PER", "sent_id": 0, "pos": [i, i + 1]}] for i in range(n_entities)
            ],
            "labels": [{"h": h, "t": t, "r": r, "evidence": [0]} for h, t, r in facts],
        }

    files = {"dev_revised.json": [document(f"D{i}") for i in range(n_docs)], "test_revised.json": [document("T0")]}
    for name, value in (*files.items(), ("rel_info.json", {"P19": "place of birth", "P551": "residence"})):
        (root / name).write_text(json.dumps(value))


def test_na_pairs_are_drawn_after_incomplete_noise_so_missed_pairs_keep_their_share(tmp_path):
    write_documents(tmp_path)  # 40 documents: 132 ordered pairs, 10 with a relation (2 of them with two)
    labels = ["place of birth", "residence", NO_RELATION]
    drawn_missed, expected_missed = 0, 0.0
    for seed in range(10):
        reader = ReDocREDReader(str(tmp_path), n_train_docs=36, na_ratio=3.0)
        noisy = inject_noise(reader.load(seed).train, 0.5, "incomplete", labels, seed, negative=NO_RELATION)
        train, info = reader.resample_negatives(noisy, seed)
        positives = [e.id for e in noisy if e.label != NO_RELATION]
        assert [e.id for e in train if e.label != NO_RELATION] == positives  # no kept positive is lost
        for key in {document_of(e.id) for e in noisy}:
            mine = [e for e in train if document_of(e.id) == key]
            n_kept = sum(e.label != NO_RELATION for e in mine)
            assert len(mine) - n_kept == 3 * n_kept  # NA pairs at the ratio of the positives the annotation kept
            n_missed = sum(e.is_noisy for e in noisy if document_of(e.id) == key)  # pairs left with no relation
            expected_missed += 3 * n_kept * n_missed / (122 + n_missed)  # a uniform draw of the unannotated pairs
        assert info["missed_pairs"] == sum(e.is_noisy for e in noisy) and info["shortfall"] == 0
        assert info["missed_among_negatives"] == sum(e.is_noisy for e in train)
        drawn_missed += info["missed_among_negatives"]
    # drawn as any unannotated pair is (~4 % of the negatives), not every missed pair as when drawn before the noise
    assert 0.75 * expected_missed < drawn_missed < 1.25 * expected_missed


def test_a_redocred_split_draws_its_na_pairs_after_the_noise_and_says_so(tmp_path):
    from atlantis.data.splits import build_splits

    write_documents(tmp_path)

    def split(**options):
        reader = ReDocREDReader(str(tmp_path), n_train_docs=36)
        return build_splits(reader, noise_rate=0.5, noise_kind="incomplete", seed=9, **options)

    splits = split()
    info, counts = splits.info["negative_sampling"], splits.info["missing_labels"]
    assert info["missed_pairs"] == counts["n_negated"] and info["negatives"] == 3 * (432 - counts["n_missed"])
    assert [e.id for e in split().train] == [e.id for e in splits.train]  # seeded
    # a subsample leaves some documents too few negatives for the ratio and others more: the others' spare pairs
    # make up the lack, so the ratio holds over the set, and the report says how many came that way
    subsampled = split(max_train_examples=300)
    sub = subsampled.info["negative_sampling"]
    kept = [e for e in subsampled.train if e.label == NO_RELATION]
    positives = sum(e.label != NO_RELATION for e in subsampled.train)
    assert sub["topped_up"] > 0 and sub["shortfall"] == 0 and len(kept) == sub["negatives"] == 3 * positives
    # smaller still: some documents keep fewer pairs than 3 a positive (the target counts those), the rest is filled
    info = split(max_train_examples=150).info["negative_sampling"]
    assert info["topped_up"] > 0 and info["shortfall"] == 0 and info["negatives"] == info["target"]
