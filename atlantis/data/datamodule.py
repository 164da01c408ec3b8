"""Lightning datamodule: tokenised splits, dynamic padding, per-example weights and ids in every batch."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from atlantis.data.demonstrations import Demonstrations
from atlantis.data.demonstrations import demo_pool as demo_pool_examples
from atlantis.data.examples import RelationExample
from atlantis.data.prompts import DEFAULT_TEMPLATE, PromptBuilder
from atlantis.data.sampling import EvalShard, GlobalBatches, ShardedBatchSampler, ShardKey
from atlantis.data.splits import DatasetSplits
from atlantis.data.tokenization import IGNORE_INDEX, encode_example, encode_examples

log = logging.getLogger(__name__)


def pad(sequences: Sequence[Sequence[int]], value: int, side: str = "right") -> torch.Tensor:
    """Stack ragged id lists into one tensor, padding with `value` on `side`."""
    width = max(len(s) for s in sequences)
    rows = [
        list(s) + [value] * (width - len(s)) if side == "right" else [value] * (width - len(s)) + list(s)
        for s in sequences
    ]
    return torch.tensor(rows, dtype=torch.long)


class FeatureDataset(Dataset):
    """Features by index; a ShardKey (a rank's share of a global batch) adds that batch's size and padding flag."""

    def __init__(self, features: list[dict]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, key: int | ShardKey) -> dict:
        if isinstance(key, ShardKey):
            return dict(self.features[key.index], global_batch_size=key.global_size, padding=key.padding)
        return self.features[key]


class Collator:
    """Pads only: labels were masked at tokenisation. Prompts are also left-padded for generation."""

    def __init__(self, pad_token_id: int, kind: str, columns: tuple[str, ...] = ()):
        self.pad_token_id = pad_token_id
        self.kind = kind
        self.columns = list(columns)  # extra per-example floats a weighting asked for (0 where a split lacks them)

    def __call__(self, features: list[dict]) -> dict:
        input_ids = pad([f["input_ids"] for f in features], self.pad_token_id)
        padding = [f.get("padding", False) for f in features]
        batch = {
            "input_ids": input_ids,
            "attention_mask": pad([[1] * len(f["input_ids"]) for f in features], 0),
            "labels": pad([f["labels"] for f in features], IGNORE_INDEX),
            "weight": torch.tensor(
                [0.0 if p else f.get("weight", 1.0) for f, p in zip(features, padding, strict=True)],
                dtype=torch.float32,
            ),
            "label_index": torch.tensor([f["label_index"] for f in features], dtype=torch.long),
            "index": torch.tensor([f["index"] for f in features], dtype=torch.long),
            "ids": [f["id"] for f in features],
            # whether the injected noise changed the label: read only to report what a step weighting dropped
            "is_noisy": torch.tensor([f.get("is_noisy", False) for f in features], dtype=torch.bool),
            # the global batch this rank holds a share of (the loss divides by it) and rows that only fill a share
            "global_batch_size": int(features[0].get("global_batch_size", len(features))),
            "padding": torch.tensor(padding, dtype=torch.bool),
        }
        if "target_text" in features[0]:  # end-to-end extraction: the gold answers, for the metric
            batch["target_text"] = [f["target_text"] for f in features]
        for name in self.columns:
            batch[name] = torch.tensor([f.get(name, 0.0) for f in features], dtype=torch.float64)
        if self.kind == "causal":
            # Decoder-only generation and label scoring continue the prompt: pad it on the left.
            batch["prompt_ids"] = pad([f["prompt_ids"] for f in features], self.pad_token_id, side="left")
            batch["prompt_attention_mask"] = pad([[1] * len(f["prompt_ids"]) for f in features], 0, side="left")
        return batch


class RelationDataModule(L.LightningDataModule):
    """Builds from plain arguments: the splits (already noisy), a tokenizer and the model kind."""

    def __init__(
        self,
        splits: DatasetSplits,
        tokenizer,
        kind: str,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        max_length: int = 256,
        max_target_length: int = 16,
        prompt_template: str = DEFAULT_TEMPLATE,
        list_labels: bool = False,
        use_chat_template: bool | None = None,
        entity_markers: str = "auto",
        num_workers: int = 0,
        group_by_length: bool = False,
        seed: int = 0,
        shots: int = 0,
        demo_pool: str = "noisy_train",
        demo_selection: str = "stratified",
    ):
        super().__init__()
        if tokenizer.pad_token_id is None:
            raise ValueError(
                f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no pad token; set one "
                "(e.g. tokenizer.pad_token = tokenizer.eos_token) before building the datamodule"
            )
        self.splits = splits
        self.tokenizer = tokenizer
        self.kind = kind
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.max_length = max_length
        self.max_target_length = max_target_length
        self.num_workers = num_workers
        self.group_by_length = group_by_length
        self.seed = seed
        self.builder = PromptBuilder(
            kind, splits.labels, tokenizer, prompt_template, list_labels, use_chat_template, entity_markers
        )
        if shots and splits.task == "extraction" and demo_selection == "stratified":
            raise ValueError(
                "few-shot end-to-end extraction has no classes to stratify: use prompt.demo_selection=knn"
            )
        if shots:  # few-shot prompting: demonstrations precede every prompt (train, validation and test alike)
            pool = demo_pool_examples(splits.train, splits.validation, demo_pool)
            self.builder.demonstrations = Demonstrations(pool, splits.labels, shots, demo_selection, seed)
        self.collator = Collator(tokenizer.pad_token_id, kind)
        self.features: dict[str, list[dict]] = {}
        self.stats: dict[str, dict] = {}

    @property
    def labels(self) -> list[str]:
        return self.splits.labels

    def setup(self, stage: str | None = None) -> None:
        if self.features:
            return
        label_to_index = {label: i for i, label in enumerate(self.labels)}
        trusted = ("trusted",) if self.splits.trusted else ()  # a trusted seed's own encoding (its reference)
        for name in ("train", "validation", "test", *trusted):
            examples = self.splits.split(name)
            encoded = encode_examples(examples, self.tokenizer, self.builder, self.max_length, self.max_target_length)
            by_id = {e.id: e for e in examples}
            for index, feature in enumerate(encoded.features):
                example = by_id[feature["id"]]
                if self.splits.task == "extraction":  # the target text is the gold answer; no label index
                    feature.update(index=index, label_index=-1, weight=1.0, target_text=example.label)
                else:
                    feature.update(index=index, label_index=label_to_index[example.label], weight=1.0)
                feature["is_noisy"] = example.is_noisy
            self.features[name] = encoded.features
            self.stats[name] = {
                "n_examples": len(examples),
                "n_kept": len(encoded.features),
                "n_dropped": encoded.n_dropped,
                "n_truncated": encoded.n_truncated,
                "n_noisy": sum(e.is_noisy for e in examples),  # the realised label noise
            }
            if encoded.n_dropped:
                log.warning(
                    "%s: dropped %d of %d examples whose target does not fit (first ids: %s)",
                    name,
                    encoded.n_dropped,
                    len(examples),
                    encoded.dropped_ids[:5],
                )
            if not encoded.features:
                raise ValueError(f"{name}: every example was dropped; raise max_length / max_target_length")

    def content_free_feature(self) -> dict:
        """The content-free prompt ("N/A" for sentence and entities; contextual calibration), encoded."""
        label = self.labels[0]  # the target is never scored: only the candidates are
        example = RelationExample("content-free", "N/A", "N/A", "N/A", label, label)
        feature = encode_example(example, self.tokenizer, self.builder, self.max_length, self.max_target_length)
        if feature is None:
            raise ValueError("the content-free prompt does not fit max_length; raise prompt.max_length")
        return dict(feature, index=0, label_index=0, weight=1.0)

    def content_free_batch(self) -> dict:
        return self.collator([self.content_free_feature()])

    def examples(self, split: str) -> list:
        """The examples behind the kept features of `split`, in feature order."""
        by_id = {e.id: e for e in self.splits.split(split)}
        return [by_id[f["id"]] for f in self.features[split]]

    def set_train_weights(self, weights: Mapping[str, float]) -> None:
        """Per-example loss weights by example id; every kept training example needs one."""
        self.set_train_column("weight", weights)

    def set_train_column(self, name: str, values: Mapping[str, float]) -> None:
        """A per-example value by id on every kept training example (e.g. iw-SFT's start log-probs)."""
        self.setup()
        missing = [f["id"] for f in self.features["train"] if f["id"] not in values]
        if missing:
            raise KeyError(f"no {name} for {len(missing)} training examples, e.g. {missing[:5]}")
        for feature in self.features["train"]:
            feature[name] = float(values[feature["id"]])
        if name != "weight" and name not in self.collator.columns:
            self.collator.columns.append(name)

    def _only_train(self, keep: set) -> int:
        """Keep the training features whose id is in `keep` (in their order, indices renumbered); how many left."""
        self.setup()
        before = len(self.features["train"])
        self.features["train"] = [f for f in self.features["train"] if f["id"] in keep]
        for index, feature in enumerate(self.features["train"]):
            feature["index"] = index
        return before - len(self.features["train"])

    def keep_train(self, ids, reason: str) -> None:
        """Keep only these training examples (in their order), counting the others under `reason` in stats."""
        self.stats["train"][reason] = self._only_train(set(ids))
        self.stats["train"]["n_kept"] = len(self.features["train"])
        if self.stats["train"][reason]:
            log.warning("train: dropped %d examples: %s", self.stats["train"][reason], reason.replace("_", " "))

    def restrict_train(self, ids) -> None:
        """Train on these examples only (a selection); validation and test are untouched."""
        self.setup()
        keep = set(ids)
        unknown = keep - {f["id"] for f in self.features["train"]}
        if unknown:
            raise KeyError(f"selected ids not in the training split: {sorted(unknown)[:5]}")
        self._only_train(keep)
        self.stats["train"]["n_selected"] = len(self.features["train"])

    def ranks(self) -> tuple[int, int]:
        """(world size, global rank) of the Trainer this datamodule serves; (1, 0) outside one."""
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataloader(self) -> DataLoader:
        """This rank's share of the epoch's global batches of `batch_size` (the same batches on any world size)."""
        features = self.features["train"]
        lengths = [len(f["input_ids"]) for f in features] if self.group_by_length else None
        batches = GlobalBatches(len(features), self.batch_size, seed=self.seed, lengths=lengths)
        world, rank = self.ranks()
        return DataLoader(
            FeatureDataset(features),
            batch_sampler=ShardedBatchSampler(batches, world, rank),
            collate_fn=self.collator,
            num_workers=self.num_workers,
        )

    def _eval_loader(self, split: str) -> DataLoader:
        """Every example once over all ranks (no padding duplicates: the module gathers the records)."""
        world, rank = self.ranks()
        return DataLoader(
            FeatureDataset(self.features[split]),
            batch_size=self.eval_batch_size,
            sampler=EvalShard(len(self.features[split]), world, rank),
            collate_fn=self.collator,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def scoring_dataloader(self, split: str = "train") -> DataLoader:
        return self._eval_loader(split)
