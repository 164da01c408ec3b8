"""Stage 1-3 of ATLANTIS for one job: reference, scores under three models, normalised weights."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from atlantis.models.loading import build_model
from atlantis.models.module import RelationLM
from atlantis.weights.cache import ArtifactCache
from atlantis.weights.normalise import log_weights, normalise_weights
from atlantis.weights.reference import REFERENCE_KINDS, crossfit_folds, finetune_small
from atlantis.weights.scoring import SCORING_VERSION, score_features

log = logging.getLogger(__name__)

# Which score terms each weighting method multiplies (in log space: adds).
METHOD_TERMS = {
    "atlantis": ("large", "small", "reference"),
    "ref_only": ("reference",),
    "ratio_only": ("large", "small"),
}


class ImportanceWeighter:
    """Computes (and caches) the per-example weights of a weighting method for a datamodule's train split."""

    def __init__(self, cfg: dict, datamodule, tokenizer, label_token_ids: list[list[int]], cache: ArtifactCache):
        self.cfg = cfg
        self.dm = datamodule
        self.tokenizer = tokenizer
        self.label_token_ids = label_token_ids
        self.cache = cache
        self.kind = cfg["model"]["kind"]
        self.method = cfg["method"]
        self.reference = cfg.get("reference") or {}
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.features = datamodule.features["train"]

    # ---- cache keys: everything an entry depends on ------------------------------------------
    def data_spec(self) -> dict:
        c = self.cfg
        return {
            "dataset": c["dataset"],
            "noise": c["noise"],
            "noise_kind": c["noise_kind"],
            "seed": c["seed"],
            "clean_validation": c["clean_validation"],
            "prompt": c["prompt"],
            "tokenizer": c["model"]["tokenizer"],
            "kind": self.kind,
            "version": SCORING_VERSION,
        }

    def reference_spec(self, fold: int | None = None) -> dict:
        spec = {"data": self.data_spec(), "reference": self.reference, "small": self.cfg["model"]["small"]}
        if self.reference.get("name") == "pretrained":
            spec = {"reference": self.reference, "kind": self.kind}  # independent of the data
        if fold is not None:
            spec["fold"] = fold
        return spec

    # ---- models ------------------------------------------------------------------------------
    def _build(self, spec: dict):
        tok = self.tokenizer
        model = build_model(
            spec, self.kind, len(tok), tok.pad_token_id, tok.eos_token_id, self.cfg["paths"]["cache_dir"]
        )
        return model.to(self.device)

    def _make_small_module(self) -> RelationLM:
        train = self.cfg["trainer"]
        return RelationLM(
            model=self.cfg["model"]["small"],
            kind=self.kind,
            tokenizer=self.cfg["model"]["tokenizer"],
            labels=self.dm.labels,
            label_token_ids=self.label_token_ids,
            lr=self.reference.get("lr") or train["lr"],
            warmup_ratio=train.get("warmup_ratio", 0.06),
            trainable_layers=self.reference.get("trainable_layers", train.get("trainable_layers")),
            cache_dir=self.cfg["paths"]["cache_dir"],
            tokenizer_object=self.tokenizer,
        )

    def _finetuned_reference_dir(self, features: list[dict], fold: int | None) -> Path:
        def build(tmp: Path) -> None:
            train = self.cfg["trainer"]
            model = finetune_small(
                self._make_small_module,
                features,
                self.dm.collator,
                batch_size=train["batch_size"],
                max_epochs=self.reference.get("max_epochs") or train["max_epochs"],
                accumulate_grad_batches=train.get("accumulate_grad_batches", 1),
                seed=self.cfg["seed"] + (fold or 0),
            )
            model.save_pretrained(tmp)

        name = "reference" if fold is None else f"reference fold {fold}"
        return self.cache.get_or_create("references", self.reference_spec(fold), build, name)

    # ---- scores ------------------------------------------------------------------------------
    def _score(self, model, features: list[dict], reduction: str, desc: str) -> np.ndarray:
        return score_features(
            model,
            self.kind,
            features,
            self.tokenizer.pad_token_id,
            reduction,
            self.label_token_ids,
            batch_size=self.cfg["trainer"].get("eval_batch_size") or 16,
            desc=desc,
        )

    def _score_table(self, term: str, reduction: str) -> np.ndarray:
        # Keyed by the model, not the role: a pair whose small and large base are one model shares a table.
        spec = {"data": self.data_spec(), "reduction": reduction}
        if term == "reference":
            spec["reference"] = self.reference_spec()
        else:
            spec["model"] = self.cfg["model"][term]

        def compute() -> dict:
            return dict(
                zip([f["id"] for f in self.features], self._compute_scores(term, reduction).tolist(), strict=True)
            )

        table = self.cache.get_or_compute_json("scores", spec, compute, name=f"scores/{term}/{reduction}")
        return np.array([table[f["id"]] for f in self.features], dtype=np.float64)

    def _compute_scores(self, term: str, reduction: str) -> np.ndarray:
        if term in ("large", "small"):
            return self._score(self._build(self.cfg["model"][term]), self.features, reduction, f"p_b {term}")
        kind = self.reference.get("name")
        if kind not in REFERENCE_KINDS:
            raise ValueError(f"reference must be one of {REFERENCE_KINDS}, got {kind!r}")
        if kind == "pretrained":
            name = self.reference.get("name_or_path")
            if not name:
                raise ValueError(
                    f"reference=pretrained needs a checkpoint: model pair {self.cfg['model']['name']!r} names no "
                    "model.reference.pretrained; set reference.name_or_path"
                )
            spec = {"name_or_path": name, "gguf_file": self.reference.get("gguf_file")}
            return self._score(self._build(spec), self.features, reduction, "p_r pretrained")
        if kind == "finetune":
            path = self._finetuned_reference_dir(self.features, None)
            return self._score(self._build({"name_or_path": str(path)}), self.features, reduction, "p_r finetuned")
        scores = np.zeros(len(self.features))
        for fold, held_out in enumerate(
            crossfit_folds(len(self.features), self.reference.get("folds", 3), self.cfg["seed"])
        ):
            held = set(held_out.tolist())
            train = [f for i, f in enumerate(self.features) if i not in held]
            path = self._finetuned_reference_dir(train, fold)
            model = self._build({"name_or_path": str(path)})
            scores[held_out] = self._score(model, [self.features[i] for i in held_out], reduction, f"p_r fold {fold}")
        return scores

    def start_logprobs(self) -> dict[str, float]:
        """The large base's sequence log-prob of every training example (iw-SFT's frozen start)."""
        scores = self._score_table("large", "sum")
        return dict(zip([f["id"] for f in self.features], scores.tolist(), strict=True))

    # ---- weights -----------------------------------------------------------------------------
    def compute(self) -> tuple[dict[str, float], dict]:
        """({id: weight}, {term: raw log-probs, ...}) for the train split."""
        method = self.method["name"]
        terms = METHOD_TERMS[method]
        options = self.method.get("weights") or {}
        reduction = options.get("reduction", "sum")
        scores = {term: self._score_table(term, reduction) for term in terms}
        log_w = log_weights(scores, terms)
        labels = [f["label_index"] for f in self.features]
        w = normalise_weights(
            log_w,
            labels,
            per_class=options.get("per_class", False),
            temperature=options.get("temperature", 1.0),
            clip=options.get("clip"),
        )
        weights = dict(zip([f["id"] for f in self.features], w.tolist(), strict=True))
        return weights, {"log_weight": log_w, **scores}
