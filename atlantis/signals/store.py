"""One cached layer of per-example signals of the training split, shared by every method slot.

Roles: `large` and `small` (the pair's base models) and `reference` (p_r: fine-tuned, pretrained or
cross-fitted). Signals: sequence log-probs (sum / mean), label-set log-probs [N, C], last-layer embeddings.
Each is computed once per (data, model identity, options) and cached; a crossfit reference trained for
ATLANTIS serves FisherSFT and confident learning from the same entries.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from atlantis.models.loading import build_model
from atlantis.models.trainer import default_precision
from atlantis.signals.cache import ArtifactCache, cache_key, result_params
from atlantis.signals.identity import model_identity
from atlantis.signals.reference import REFERENCE_KINDS, crossfit_folds, finetune
from atlantis.signals.scoring import embed_features, label_set_posterior, score_features, score_label_sets

log = logging.getLogger(__name__)
SIGNALS_VERSION = 3  # bump when a signal changes meaning or its key changes: it is part of every cache key
BASE_ROLES = ("large", "small")
# The reference-training settings that change the reference (progress bars and logging do not).
REFERENCE_TRAINING_KEYS = ("batch_size", "max_epochs", "accumulate_grad_batches", "lr", "warmup_ratio", "params")
# Settings that change the reference only away from their plain value (no step limit, no weight decay, clipping at
# 1.0, 32-bit floats): they enter its key there, so a smoke run's 4-step reference (trainer.max_steps=4) or a GPU's
# bf16 one is never read as the full fp32 one, and the tables computed at the plain values (the studies' committed
# caches, hours of CPU) keep their keys.
REFERENCE_TRAINING_PLAIN = {"max_steps": -1, "weight_decay": 0.0, "gradient_clip_val": 1.0, "precision": "32-true"}


@dataclass
class RoleEncoding:
    """The training examples as one role's tokenizer encodes them (its own chat template), aligned by id with
    the trained model's features; `identity` names the tokenizer in cache keys."""

    features: list[dict]
    tokenizer: object
    label_token_ids: list[list[int]]
    collate: Callable
    identity: object = None
    trusted: list[dict] = field(default_factory=list)  # the trusted seed in this encoding (reference=trusted)


def reference_training_key(training: dict) -> dict:
    """What decides a trained reference: its training settings, less the params options that only change speed."""
    key = {k: training.get(k) for k in REFERENCE_TRAINING_KEYS}
    if isinstance(key["params"], dict):
        key["params"] = result_params(key["params"])
    used = {  # what make_trainer runs with: its defaults where a setting is unset (clip None: no clipping)
        "max_steps": training.get("max_steps") or -1,
        "weight_decay": training.get("weight_decay") or 0.0,
        "gradient_clip_val": training.get("gradient_clip_val", 1.0),
        "precision": str(training.get("precision") or default_precision(training.get("accelerator", "auto"))),
    }
    used["precision"] = {"32": "32-true"}.get(used["precision"], used["precision"])
    key.update({k: v for k, v in used.items() if v != REFERENCE_TRAINING_PLAIN[k]})
    return key


class Signals:
    """Per-example signals over `features` (the kept training features), keyed by example id.

    `data_key` must hold everything the features depend on (dataset, noise, seed, prompt, tokenizer
    identity); `make_reference_module()` returns a fresh trainable small-base module for reference training,
    `make_large_module()` a fresh large-base one trained as the job trains it (`large_training`).
    """

    def __init__(
        self,
        features: list[dict],
        *,
        kind: str,
        tokenizer,
        label_token_ids: list[list[int]],
        models: dict,
        reference: dict,
        data_key: dict,
        cache: ArtifactCache,
        collate: Callable,
        make_reference_module: Callable | None = None,
        reference_training: dict | None = None,
        make_large_module: Callable | None = None,
        large_training: dict | None = None,
        batch_size: int = 16,
        seed: int = 0,
        device: torch.device | str | None = None,
        tokenizer_identity=None,
        small_encoding: RoleEncoding | None = None,
        trusted_features: list[dict] | None = None,
    ):
        self.features = features
        self.ids = [f["id"] for f in features]
        self.kind = kind
        # Each role scores its own encoding of the same prompt and target text: the large base the trained
        # model's; the small base and the reference (the small model fine-tuned) the small tokenizer's.
        large = RoleEncoding(features, tokenizer, label_token_ids, collate, tokenizer_identity, trusted_features or [])
        small = small_encoding or large
        if [f["id"] for f in small.features] != self.ids:
            raise ValueError("the small role's encoding must hold the same training examples, in the same order")
        self.encodings = {"large": large, "small": small, "reference": small}
        self.models = models
        self.reference = dict(reference or {})
        self.cache = cache
        self.make_reference_module = make_reference_module
        self.reference_training = reference_training or {}
        # the large base as the job trains it (GLC's weak-label model with estimator=large)
        self.make_large_module = make_large_module
        self.large_training = large_training or {}
        self.batch_size = batch_size
        self.seed = seed
        # this rank's own device (cuda:<local rank>): on a node of eight, rank 3 scores on its own GPU
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.data_key = dict(data_key, version=SIGNALS_VERSION)

    @property
    def reference_out_of_fold(self) -> bool:
        """Whether the reference's scores come from models that never saw the examples' (noisy) labels: crossfit
        (each fold held out), trusted (trained on the gold seed; under trusted.use=union it saw the trusted ones,
        whose labels are gold)."""
        return self.reference.get("name") in ("crossfit", "trusted")

    def check_comparable(self, roles, reduction: str) -> None:
        """Refuse per-token means across tokenizers: a token of one vocabulary is not a token of another, so
        their means are not comparable (sequence sums and label-set posteriors are: they score the same text)."""
        identities = {json.dumps(self.encodings[r].identity, sort_keys=True, default=str) for r in roles}
        if reduction == "mean" and len(identities) > 1:
            raise ValueError(
                f"reduction=mean over roles {list(roles)} that use different tokenizers: per-token means are not "
                "comparable across vocabularies; use method.weights.reduction=sum or label_set"
            )

    # ---- what each role is ---------------------------------------------------------------------
    def role_key(self, role: str) -> dict:
        return {**self._role_model_key(role), "tokenizer": self.encodings[role].identity}

    def _role_model_key(self, role: str) -> dict:
        if role in BASE_ROLES:
            return {"model": model_identity(self.models[role], self.cache.root)}
        if role != "reference":
            raise ValueError(f"signal role must be one of {(*BASE_ROLES, 'reference')}, got {role!r}")
        name = self.reference.get("name")
        if name not in REFERENCE_KINDS:
            raise ValueError(f"reference must be one of {REFERENCE_KINDS}, got {name!r}")
        if name == "pretrained":
            return {"reference": "pretrained", "model": model_identity(self._pretrained_spec(), self.cache.root)}
        # its params policy is in the training key (whichever policy it trains with)
        options = {k: v for k, v in self.reference.items() if k not in ("name_or_path", "gguf_file", "params")}
        return {
            "reference": options,
            "small": model_identity(self.models["small"], self.cache.root),
            "training": reference_training_key(self.reference_training),
        }

    def _pretrained_spec(self) -> dict:
        name = self.reference.get("name_or_path")
        if not name:
            raise ValueError(
                "reference=pretrained needs a checkpoint: this model pair names no model.reference.pretrained; "
                "set reference.name_or_path"
            )
        return {"name_or_path": name, "gguf_file": self.reference.get("gguf_file")}

    # ---- models ------------------------------------------------------------------------------
    def _build(self, spec: dict, role: str):
        tok = self.encodings[role].tokenizer
        model = build_model(spec, self.kind, len(tok), tok.pad_token_id, tok.eos_token_id, str(self.cache.root))
        return model.to(self.device)

    def _reference_dir(self, features: list[dict], fold: int | None) -> Path:
        spec = {"data": self.data_key, "role": self.role_key("reference")}
        if fold is not None:
            spec["fold"] = fold
        name = "reference" if fold is None else f"reference fold {fold}"
        return self._fine_tuned_small(features, spec, name, self.seed + (fold or 0))

    def _fine_tuned_small(self, features: list[dict], spec: dict, name: str, seed: int) -> Path:
        """The small base fine-tuned on `features` as the reference trains, cached under `spec`."""
        collate = self.encodings["reference"].collate

        def build(tmp: Path) -> None:
            work = self.cache.work_dir("references", spec)  # its epochs' checkpoints: a stopped fit resumes
            finetune(
                self.make_reference_module, features, collate, self.reference_training, seed, work
            ).save_pretrained(tmp)

        return self.cache.get_or_create("references", spec, build, name)

    def _per_model(self, role: str, compute: Callable[[object, list[dict], str], list], fold_table=None) -> list:
        """compute(model, features, desc) for every feature, each scored by the model its role names.

        fold_table(fold, held_out, compute_fold), if given, returns a cross-fitted fold's held-out values (cached,
        so a fold scored survives the loss of its checkpoint and a piece stopped in fold 2 keeps fold 1)."""
        features = self.encodings[role].features
        if (spec := self._fixed_model_spec(role)) is not None:
            return compute(
                self._build(spec, role), features, f"p_b {role}" if role in BASE_ROLES else "p_r pretrained"
            )
        name = self.reference["name"]
        if name == "finetune":
            model = self._build({"name_or_path": str(self._reference_dir(features, None))}, role)
            return compute(model, features, "p_r finetuned")
        if name == "trusted":
            model = self._build({"name_or_path": str(self._reference_dir(self._trusted_features(), None))}, role)
            return compute(model, features, "p_r trusted")
        out = [None] * len(features)
        for fold, held_out in enumerate(self._folds()):
            compute_fold = self._fold_scorer(role, compute, fold, held_out)
            values = fold_table(fold, held_out, compute_fold) if fold_table else compute_fold()
            for i, v in zip(held_out.tolist(), values, strict=True):
                out[i] = v
        return out

    def _fixed_model_spec(self, role: str) -> dict | None:
        """The model a role scores with where it is the same whichever examples are kept: a base model or a
        pretrained reference; None for a reference trained on the kept examples (fine-tuned, cross-fitted, trusted)."""
        if role in BASE_ROLES:
            return self.models[role]
        return self._pretrained_spec() if self.reference.get("name") == "pretrained" else None

    def _trusted_features(self, role: str = "reference") -> list[dict]:
        trusted = self.encodings[role].trusted
        if not trusted:
            raise ValueError(
                "this job has no trusted seed (reference=trusted, GLC and L2RW use one): set trusted.per_class=k "
                "(k gold-labelled examples per class, drawn before noise)"
            )
        return trusted

    def _folds(self) -> list[np.ndarray]:
        return crossfit_folds(len(self.ids), self.reference.get("folds", 3), self.seed)

    def _fold_scorer(self, role: str, compute: Callable, fold: int, held_out: np.ndarray) -> Callable[[], list]:
        features, held = self.encodings[role].features, set(held_out.tolist())

        def compute_fold() -> list:
            train = [f for i, f in enumerate(features) if i not in held]
            model = self._build({"name_or_path": str(self._reference_dir(train, fold))}, role)
            return compute(model, [features[i] for i in held_out], f"p_r fold {fold}")

        return compute_fold

    # ---- the signals -----------------------------------------------------------------------------
    def _fold_entry(self, kind: str, spec: dict, name: str, fold: int, held_out: np.ndarray, compute_fold) -> list:
        fold_spec = {**spec, "fold": fold, "held_out": cache_key({"ids": [self.ids[i] for i in held_out.tolist()]})}
        return self.cache.get_or_compute_json(f"{kind}_folds", fold_spec, compute_fold, f"{name} fold {fold}")

    def _table(self, kind: str, role: str, options: dict, score: Callable, name: str) -> np.ndarray:
        """score(model, features, desc) -> per-feature values, for every example under `role`, cached as JSON."""
        spec = {"data": self.data_key, "role": self.role_key(role), **options}

        def fold_table(fold: int, held_out: np.ndarray, compute_fold) -> list:
            return self._fold_entry(kind, spec, name, fold, held_out, compute_fold)

        def compute() -> dict:
            return dict(zip(self.ids, self._per_model(role, score, fold_table), strict=True))

        table = self.cache.get_or_compute_json(kind, spec, compute, name)
        missing = [i for i in self.ids if i not in table]
        if missing:
            features, more_spec, model_spec = self._more_rows(role, spec, missing, name)

            def compute_more() -> dict:
                values = score(self._build(model_spec, role), features, name)
                return dict(zip([f["id"] for f in features], values, strict=True))

            more = f"{name} ({len(features)} more examples)"
            table = {**table, **self.cache.get_or_compute_json(kind, more_spec, compute_more, more)}
        return np.array([table[i] for i in self.ids], dtype=np.float64)

    def _more_rows(self, role: str, spec: dict, missing: list, name: str) -> tuple[list[dict], dict, dict]:
        """For the ids a cached entry lacks: their features, the spec of the entry that holds them beside it, and
        the role's model spec. The kept examples depend on both tokenizers and a role's entries are keyed by its
        own, so a job whose other role's tokenizer drops fewer examples than that of the job that filled an entry
        needs a few more rows of it. Only where the role's model, and so an example's value, is the same whichever
        examples are kept (`_fixed_model_spec`)."""
        model_spec = self._fixed_model_spec(role)
        if model_spec is None:
            raise KeyError(f"cached {name} lacks {len(missing)} training ids, e.g. {missing[:5]}")
        wanted = set(missing)
        features = [f for f in self.encodings[role].features if f["id"] in wanted]
        return features, {**spec, "more_ids": cache_key({"ids": [f["id"] for f in features]})}, model_spec

    def score_reference_by_fold(self, reductions: tuple[str, ...] = ("sum",), label_sets: bool = True) -> None:
        """The cross-fitted reference's tables, fold-major: each fold's model trains once and scores every table
        before the next fold trains, so a run stopped in a later fold keeps all of the earlier folds' tables (small
        JSON entries, unlike the checkpoints). Other references: nothing to do (their tables come on request)."""
        if self.reference.get("name") != "crossfit":
            return
        tables = [("scores", {"reduction": r}, self._sequence_scorer("reference", r), f"scores/reference/{r}")
                  for r in reductions]  # fmt: skip
        if label_sets:
            encoding = self.encodings["reference"]
            tables.append(("label_sets", {"labels": encoding.label_token_ids}, self._label_set_scorer("reference"),
                           "label_sets/reference"))  # fmt: skip
        for fold, held_out in enumerate(self._folds()):
            for kind, options, score, name in tables:
                spec = {"data": self.data_key, "role": self.role_key("reference"), **options}
                self._fold_entry(
                    kind, spec, name, fold, held_out, self._fold_scorer("reference", score, fold, held_out)
                )

    def _sequence_scorer(self, role: str, reduction: str) -> Callable:
        pad = self.encodings[role].tokenizer.pad_token_id

        def score(model, features, desc):
            return score_features(model, self.kind, features, pad, reduction, self.batch_size, desc).tolist()

        return score

    def _label_set_scorer(self, role: str) -> Callable:
        encoding = self.encodings[role]
        pad, labels = encoding.tokenizer.pad_token_id, encoding.label_token_ids

        def score(model, features, desc):
            return score_label_sets(model, self.kind, features, pad, labels, self.batch_size, desc).tolist()

        return score

    def sequence_logprobs(self, role: str, reduction: str = "sum") -> np.ndarray:
        """[N] log p(y_i|x_i) under `role`: `sum`, `mean` (per token) or `label_set` (renormalised over labels)."""
        if reduction == "label_set":
            posterior = label_set_posterior(self.label_set_logprobs(role))
            observed = [f["label_index"] for f in self.features]
            return posterior[np.arange(len(observed)), observed]
        score = self._sequence_scorer(role, reduction)
        return self._table("scores", role, {"reduction": reduction}, score, f"scores/{role}/{reduction}")

    def label_set_logprobs(self, role: str) -> np.ndarray:
        """[N, C] sequence log-prob of every candidate label under `role` (crossfit: out of fold)."""
        labels = self.encodings[role].label_token_ids
        return self._table("label_sets", role, {"labels": labels}, self._label_set_scorer(role), f"label_sets/{role}")

    def trusted_label_sets_from_weak_model(self, base: str = "small") -> dict[str, list[float]]:
        """By trusted example id, every candidate label's log-prob [C] under a model of the weak labels (GLC's
        model of the noise): the `base` model (small or large) fine-tuned on the weak examples only, never the
        trusted ones. The small base trains as the reference trains; the large one as the job trains its model
        (the network Hendrycks et al. estimate with). Each scores the trusted seed in its own encoding."""
        if base not in BASE_ROLES:
            raise ValueError(f"GLC's weak-label model is one of the bases {BASE_ROLES}, got {base!r}")
        role_name = "reference" if base == "small" else "large"  # the role whose encoding the base reads
        encoding = self.encodings[role_name]
        trusted = self._trusted_features(role_name)
        trusted_ids = [f["id"] for f in trusted]
        gold = set(trusted_ids)
        weak = [f for f in encoding.features if f["id"] not in gold]
        if not weak:
            raise ValueError("GLC's weak-label model needs weak examples, and every training example is trusted "
                             "(trusted.use=only): use trusted.use=union")  # fmt: skip
        training = self.reference_training if base == "small" else self.large_training
        role = {
            "weak_label_model": f"{base} base fine-tuned on the weak examples",
            base: model_identity(self.models[base], self.cache.root),
            "training": reference_training_key(training),
            "tokenizer": encoding.identity,
        }
        if base == "large":  # the weak examples kept depend on the small tokenizer too, which no other key part names
            role["weak"] = cache_key({"ids": [f["id"] for f in weak]})
        spec = {"data": self.data_key, "role": role}
        table_spec = {**spec, "scored": "trusted", "labels": encoding.label_token_ids}

        def compute() -> dict:
            if base == "small":  # kept as a folder beside the references
                path = self._fine_tuned_small(weak, spec, "weak-label model", self.seed)
                model = self._build({"name_or_path": str(path)}, role_name)
            else:  # only its scores are kept (its folder would be ~1 GB a job); a stopped fit resumes
                if self.make_large_module is None:
                    raise ValueError("GLC's large weak-label model needs make_large_module (the job's large base)")
                work = self.cache.work_dir("label_sets", table_spec)
                model = finetune(self.make_large_module, weak, encoding.collate, training, self.seed, work,
                                 what="large weak-label model").to(self.device)  # fmt: skip
            scored = self._label_set_scorer(role_name)(model, trusted, f"trusted seed, {base} weak-label model")
            del model
            gc.collect()  # the fitted module and its trainer hold each other: free the model before the job's own
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            return dict(zip(trusted_ids, scored, strict=True))

        return self.cache.get_or_compute_json("label_sets", table_spec, compute, f"label_sets/weak→trusted ({base})")

    def embeddings(self, role: str = "large", tokens: str = "target") -> list[np.ndarray]:
        """Per example, the LM head's inputs at its supervised positions ([m_i, d] float32)."""
        spec = {"data": self.data_key, "role": self.role_key(role), "tokens": tokens}
        pad = self.encodings[role].tokenizer.pad_token_id

        def embed(model, features, desc):
            return embed_features(model, self.kind, features, pad, tokens, self.batch_size, desc)

        def writer(rows_of: Callable[[], tuple[list[str], list[np.ndarray]]]) -> Callable[[Path], None]:
            def build(tmp: Path) -> None:
                ids, rows = rows_of()
                np.save(tmp / "rows.npy", np.concatenate(rows).astype(np.float32))
                np.save(tmp / "counts.npy", np.array([len(r) for r in rows], dtype=np.int64))
                (tmp / "ids.json").write_text(json.dumps(ids))

            return build

        name = f"embeddings/{role}/{tokens}"
        path = self.cache.get_or_create(
            "embeddings", spec, writer(lambda: (self.ids, self._per_model(role, embed))), name
        )
        by_id = read_embeddings(path)
        missing = [i for i in self.ids if i not in by_id]
        if missing:
            features, more_spec, model_spec = self._more_rows(role, spec, missing, name)
            more = writer(lambda: ([f["id"] for f in features], embed(self._build(model_spec, role), features, name)))
            by_id |= read_embeddings(self.cache.get_or_create("embeddings", more_spec, more, name))
        return [by_id[i] for i in self.ids]


def read_embeddings(path: Path) -> dict[str, np.ndarray]:
    """An embeddings entry by example id."""
    ids = json.loads((path / "ids.json").read_text())
    rows, counts = np.load(path / "rows.npy"), np.load(path / "counts.npy")
    return dict(zip(ids, np.split(rows, np.cumsum(counts)[:-1]), strict=True))
