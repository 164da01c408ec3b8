"""ADE (Gurulingappa et al., 2012) in SpERT's 10-fold JSON: adverse drug effects as relation classification.

Framing (methods-next §4 (b)): every ordered pair of distinct gold entities is an instance, labelled
`Adverse-Effect` (head = the effect, tail = the drug) or `no_relation`; about a third are positive, and a
drug→effect pair is a negative (direction matters). Overlapping negative pairs are skipped, overlapping
positives kept (their markers nest). Fold k trains on split k's train sentences and tests on its test
sentences; validation is a seeded 10 % of the fold's training *sentences* (all pairs of a sentence stay
together). Instance ids use the corpus' `orig_id`, so they are the same in every fold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atlantis.data.conll04 import NO_RELATION, sentence_to_examples
from atlantis.data.examples import DatasetFormatError, RelationExample
from atlantis.data.readers import DatasetReader, DatasetSplits, read_json_array
from atlantis.utils.pair_lines import pairs_target

RELATION = "Adverse-Effect"
HUB_ID = "ade-benchmark-corpus/ade_corpus_v2"
FOLDS = 10


def read_sentences(path: Path) -> list[dict]:
    sentences = read_json_array(path, "ADE")
    for index, sentence in enumerate(sentences):
        if not isinstance(sentence, dict) or "orig_id" not in sentence:
            raise DatasetFormatError(
                f"{path} record {index}: expected an object with tokens, entities, relations, orig_id"
            )
    return sentences


def pair_examples(sentences: list[dict], split: str, path: Path) -> list[RelationExample]:
    """Every ordered pair of distinct gold entities of every sentence, as instances."""
    examples = []
    for index, sentence in enumerate(sentences):
        examples += sentence_to_examples(
            sentence,
            split,
            index,
            f"{path} record {index}",
            include_no_relation=True,
            relations=(RELATION,),
            sentence_id=f"ade-{sentence['orig_id']}",
        )
    return examples


def entity_text(tokens: list[str], entity: dict) -> str:
    return " ".join(tokens[entity["start"] : entity["end"]])


def sentence_examples(sentences: list[dict], path: Path) -> list[RelationExample]:
    """One instance per sentence: its plain text, and as label the text of its (drug, effect) pairs."""
    examples = []
    for index, sentence in enumerate(sentences):
        where = f"{path} record {index}"
        try:
            tokens, entities = sentence["tokens"], sentence["entities"]
            pairs = [
                (entity_text(tokens, entities[r["tail"]]), entity_text(tokens, entities[r["head"]]))
                for r in sentence["relations"]
            ]
        except (KeyError, IndexError, TypeError) as err:
            raise DatasetFormatError(
                f"{where}: expected tokens, entities (start, end) and relations (head, tail) indexing them ({err!r})"
            ) from err
        target = pairs_target(pairs)  # head = the effect, tail = the drug in every ADE relation
        examples.append(RelationExample(f"ade-{sentence['orig_id']}", " ".join(tokens), "", "", target, target))
    return examples


FRAMINGS = ("pairs", "end_to_end")


class ADEReader(DatasetReader):
    """ADE fold `fold` (0-9) from SpERT's files; `val_fraction` of its training sentences carved as validation."""

    name = "ade"
    env_subdir = "ade"

    def __init__(
        self,
        data_dir: str | None = None,
        hub_id: str = HUB_ID,
        fold: int = 0,
        val_fraction: float = 0.1,
        framing: str = "pairs",
    ):
        super().__init__(data_dir, hub_id)
        if framing not in FRAMINGS:
            raise ValueError(f"ADE framing must be one of {FRAMINGS}, got {framing!r}")
        self.framing = framing
        if not 0 <= int(fold) < FOLDS:
            raise ValueError(f"ADE has folds 0-{FOLDS - 1}, got fold={fold}")
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.fold, self.val_fraction = int(fold), val_fraction

    def load(self, seed: int) -> DatasetSplits:
        data_dir = self.local_source()
        if data_dir is None:
            raise FileNotFoundError(
                "ADE needs SpERT's 10-fold files (the hub copy, "
                f"{self.hub_id}, is one row per relation without folds): set ATLANTIS_DATA_DIR or dataset.reader.data_dir"
            )
        train_path = Path(data_dir) / f"ade_split_{self.fold}_train.json"
        test_path = Path(data_dir) / f"ade_split_{self.fold}_test.json"
        train_sentences = read_sentences(train_path)
        order = np.random.default_rng(seed).permutation(len(train_sentences))
        n_val = int(round(self.val_fraction * len(train_sentences)))
        val_index = set(order[:n_val].tolist())
        train = [s for i, s in enumerate(train_sentences) if i not in val_index]
        val = [s for i, s in enumerate(train_sentences) if i in val_index]
        info = {"data_dir": data_dir, "fold": self.fold, "validation_sentences": n_val, "framing": self.framing}
        if self.framing == "end_to_end":
            return DatasetSplits(
                self.name,
                [],
                sentence_examples(train, train_path),
                sentence_examples(val, train_path),
                sentence_examples(read_sentences(test_path), test_path),
                None,
                info,
                task="extraction",
            )
        return DatasetSplits(
            self.name,
            [RELATION, NO_RELATION],
            pair_examples(train, "train", train_path),
            pair_examples(val, "validation", train_path),
            pair_examples(read_sentences(test_path), "test", test_path),
            NO_RELATION,
            info,
        )
