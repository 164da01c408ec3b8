"""One LightningModule for seq2seq and decoder-only models: the weighted-NLL step and label evaluation."""

from __future__ import annotations

import logging

import lightning as L
import torch

from atlantis.eval.extraction import extraction_report
from atlantis.eval.metrics import classification_report
from atlantis.eval.parsing import parse_generation
from atlantis.models.decoding import generate_ids, relations_above_threshold, score_candidates
from atlantis.models.forward import example_nll
from atlantis.models.loading import build_model, load_tokenizer
from atlantis.models.step_diagnostics import add_counts, epoch_summary, step_weight_counts
from atlantis.utils.distributed import gather_objects
from atlantis.utils.random_state import random_states, set_random_states

log = logging.getLogger(__name__)
# The slots a module falls back on when built without them (a checkpoint reloaded for testing, a notebook): plain
# SFT. By class path, like any params spec: the method slots live in a layer above this one.
DEFAULT_PARAMS = {"_target_": "atlantis.methods.params.FullParams"}
DEFAULT_WEIGHTS = {"_target_": "atlantis.methods.weights.UnitWeights"}
DEFAULT_LOSS = {"_target_": "atlantis.methods.loss.WeightedNLL"}


def locate(spec: dict):
    """A slot object from its plain spec, by class path (pydoc.locate: no config framework in this layer)."""
    from pydoc import locate as locate_class

    options = {k: v for k, v in spec.items() if k != "_target_"}
    cls = locate_class(spec["_target_"])
    if cls is None:
        raise ValueError(f"{spec['_target_']!r} cannot be imported")
    return cls(**options)


def locate_policy(spec: dict | None):
    """A params policy from its plain spec (every parameter trains when there is none)."""
    return locate(spec or DEFAULT_PARAMS)


class RelationLM(L.LightningModule):
    """Fine-tunes `model` with  sum_i w_i NLL_i / |B|  and evaluates it as a relation classifier.

    Every argument is a plain value (saved as hyperparameters), so a checkpoint reloads outside Hydra
    and under torch's weights-only loading. `label_token_ids` are the candidates' target ids (with EOS).
    """

    def __init__(
        self,
        model: dict,
        kind: str,
        tokenizer: str,
        labels: list[str],
        label_token_ids: list[list[int]],
        negative_label: str | None = None,
        monitor_metric: str = "f1_official",
        lr: float = 3e-4,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.06,
        decoder: str = "label_scoring",
        max_new_tokens: int = 16,
        gradient_checkpointing: bool = False,
        compile: bool = False,
        params: dict | None = None,
        cache_dir: str | None = None,
        tokenizer_object=None,
        model_object=None,
        weights=None,
        loss=None,
        params_object=None,
        task: str = "classification",
        relation_sets: bool = False,
        calibration_batch: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(
            ignore=["tokenizer_object", "model_object", "weights", "loss", "params_object", "calibration_batch"]
        )
        if decoder not in ("label_scoring", "generate"):
            raise ValueError(f"decoder must be 'label_scoring' or 'generate', got {decoder!r}")
        if task not in ("classification", "extraction"):
            raise ValueError(f"task must be 'classification' or 'extraction', got {task!r}")
        if task == "extraction" and decoder != "generate":
            raise ValueError("end-to-end extraction has no closed label set to score: set eval.decoder=generate")
        self.task = task
        self.tokenizer = tokenizer_object if tokenizer_object is not None else load_tokenizer(tokenizer)
        self.kind = kind
        self.labels = list(labels)
        self.label_token_ids = [list(ids) for ids in label_token_ids]
        if model_object is not None:  # an already-built model (benchmarks, notebooks); not saved in hparams
            self.model = model_object
        else:
            self.model = build_model(
                model, kind, len(self.tokenizer), self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, cache_dir
            )
        # What trains (the params slot; its spec {'_target_': class path, options} is a hyperparameter): applied
        # here, not by the caller, so a checkpoint reloads into the same structure (adapters, frozen blocks).
        self.params_policy = params_object if params_object is not None else locate_policy(params)
        self.model = self.params_policy.apply(self.model)
        self.strict_loading = self.params_policy.strict_loading  # sparse checkpoints hold deltas only
        self.model.train()  # from_pretrained returns eval mode; Lightning keeps submodule modes (dropout)
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        if compile:  # in place, so checkpoints keep their plain keys; fuses norms, activations and rotary embeddings
            self.model.base_model.compile()
        # The weights slot (fixed weights arrive in the batches; its step_weight hook acts per step) and the loss.
        self.weights = weights if weights is not None else locate(DEFAULT_WEIGHTS)
        self.loss = loss if loss is not None else locate(DEFAULT_LOSS)
        self.eval_records: dict[str, list[dict]] = {"val": [], "test": []}
        # Contextual calibration at test time: a collated content-free prompt whose label scores are subtracted.
        self.calibration_batch = calibration_batch
        self.label_bias: torch.Tensor | None = None
        # Document-level RE: keep, per test pair, every label that outscores the negative one.
        self.relation_sets = relation_sets
        self.last_scores: torch.Tensor | None = None
        self.progress = 0.0  # the epoch under way, fractional: per-step weightings follow a schedule in epochs
        self.val_history: list[dict] = []
        # Per epoch, what the step weighting did to the corrupted examples (dropped, mean factor); counts of the
        # epoch under way in step_counts.
        self.step_weight_history: list[dict] = []
        self.step_counts: dict[str, float] = {}

    # ---- the weighted step -------------------------------------------------------------------
    def example_nll(self, batch: dict) -> torch.Tensor:
        """Per-example NLL (mean over target tokens) of a batch under the plain model, shape [B]."""
        return example_nll(self.model, self.kind, batch)[0]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.progress = self.current_epoch + batch_idx / max(1, self.trainer.num_training_batches)
        loss, logs = self.loss(self, batch)
        size = batch["input_ids"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        for name, value in logs.items():
            self.log(name, value, batch_size=size)
        return loss

    # The pieces a loss is made of (atlantis.methods.base.Loss).
    def training_nll(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean target NLL [B], target tokens [B]) through the params policy's forward pass."""
        return self.params_policy.example_nll(self.model, self.kind, batch)

    def batch_weights(self, nll: torch.Tensor, n_targets: torch.Tensor, batch: dict) -> torch.Tensor:
        """[B] the batch's fixed weights times the weights slot's per-step factor (and what that factor did to
        the corrupted examples, counted per epoch)."""
        max_epochs = self.trainer.max_epochs if self._trainer is not None else 1  # no Trainer: a notebook's step
        # Gold rows (a trusted seed that trains, `gold` set: they weigh 1) count as padding for the rule, so it
        # ranks and normalises among the weak rows only, and keep their factor of 1.
        gold = batch["gold"].bool() if "gold" in batch else torch.zeros_like(batch["padding"])
        judged = dict(batch, padding=batch["padding"] | gold)
        factor = self.weights.step_weight(
            nll.detach(), n_targets, judged, epoch=self.progress, max_epochs=max_epochs, module=self
        )
        if factor is None:
            return batch["weight"]
        gold, real = gold.to(factor.device), ~judged["padding"].to(factor.device)
        counts = step_weight_counts(factor[real], batch["is_noisy"].to(factor.device)[real])
        self.step_counts = add_counts(self.step_counts, counts)
        factor = torch.where(gold, torch.ones_like(factor), factor)
        return batch["weight"].to(factor.device) * factor

    def label_scores(self, batch: dict) -> torch.Tensor:
        """[B, C] sequence log-prob of every candidate label."""
        return score_candidates(self.model, self.kind, batch, self.label_token_ids, self.tokenizer.pad_token_id)

    def loss_denominator(self, batch: dict) -> float:
        """The global batch's size over the number of processes: DDP's mean over them is the global batch loss."""
        return batch.get("global_batch_size", batch["input_ids"].shape[0]) / self.world_size()

    # ---- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def predict_labels(self, batch: dict) -> tuple[list[int], list[str]]:
        """(label index or -1 for invalid, raw output) for every example of a batch."""
        pad_id, eos_id = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        if self.hparams.decoder == "label_scoring":
            scores = score_candidates(self.model, self.kind, batch, self.label_token_ids, pad_id)
            if self.label_bias is not None:  # contextual calibration: the scores a content-free input gets
                scores = scores - self.label_bias.to(scores.device, scores.dtype)
            best = scores.argmax(dim=1).tolist()
            self.last_scores = scores
            return best, [self.labels[i] for i in best]
        out = generate_ids(self.model, self.kind, batch, self.hparams.max_new_tokens, pad_id, eos_id)
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        if self.task == "extraction":  # parsed with the gold answers when the epoch's report is made
            return [-1] * len(texts), texts
        return [parse_generation(t, self.labels) for t in texts], texts

    def _eval_step(self, batch: dict, stage: str) -> None:
        predicted, raw = self.predict_labels(batch)
        if self.task == "extraction":
            rows = zip(batch["ids"], batch["index"].tolist(), batch["target_text"], raw, strict=True)
            for example_id, i, gold_text, text in rows:
                self.eval_records[stage].append({"id": example_id, "index": i, "gold": gold_text, "raw": text})
            return
        gold, index = batch["label_index"].tolist(), batch["index"].tolist()
        for example_id, i, p, g, r in zip(batch["ids"], index, predicted, gold, raw, strict=True):
            self.eval_records[stage].append({"id": example_id, "index": i, "gold": g, "pred": p, "raw": r})
        if self.relation_sets and stage == "test" and self.last_scores is not None:
            # Multi-label pairs (document-level RE): every relation scoring above the negative label (SSR-PU's
            # threshold rule), not only the best one.
            negative = self.labels.index(self.hparams.negative_label)
            above = relations_above_threshold(self.last_scores, negative)
            for record, relations in zip(self.eval_records[stage][-len(predicted) :], above, strict=True):
                record["relations"] = relations

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_validation_epoch_start(self) -> None:
        self.eval_records["val"] = []
        self.label_bias = self.content_free_scores()  # checkpoints are chosen by the calibrated score too

    def on_test_epoch_start(self) -> None:
        self.eval_records["test"] = []
        self.label_bias = self.content_free_scores()

    @torch.no_grad()
    def content_free_scores(self) -> torch.Tensor | None:
        """[C] label scores of the content-free prompt (Zhao et al., 2021), under the weights being tested."""
        if self.calibration_batch is None:
            return None
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in self.calibration_batch.items()}
        return score_candidates(self.model, self.kind, batch, self.label_token_ids, self.tokenizer.pad_token_id)[0]

    def gather(self, items: list) -> list:
        """Every rank's items when this module's Trainer runs on several processes; a reference model trained on
        rank zero alone, inside a distributed job, gathers nothing."""
        return gather_objects(items) if self.world_size() > 1 else list(items)

    def world_size(self) -> int:
        """The processes this module's Trainer runs on (1 without a Trainer)."""
        return self.trainer.world_size if self._trainer is not None else 1

    def gather_records(self, stage: str) -> list[dict]:
        """Every rank's records of `stage`, each example once, in the split's order: the metrics of the whole
        split, the same on every rank and the same as on one process."""
        unique = {r["index"]: r for r in self.gather(self.eval_records[stage])}
        self.eval_records[stage] = [unique[i] for i in sorted(unique)]
        return self.eval_records[stage]

    def _log_report(self, stage: str) -> dict:
        records = self.gather_records(stage)
        if self.task == "extraction":
            report = extraction_report([r["gold"] for r in records], [r["raw"] for r in records])
        else:
            report = classification_report(
                [r["gold"] for r in records], [r["pred"] for r in records], self.labels, self.hparams.negative_label
            )
        metrics = {
            f"{stage}/{k}": report[k] for k in ("f1_official", "f1_macro", "f1_micro", "accuracy", "invalid_rate")
        }
        metrics[f"{stage}/f1"] = report[self.hparams.monitor_metric]
        # computed from every rank's records: nothing to reduce. The bar shows the monitored score only.
        self.log_dict({k: v for k, v in metrics.items() if k != f"{stage}/f1"})
        self.log(f"{stage}/f1", metrics[f"{stage}/f1"], prog_bar=stage == "val")
        return report

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        report = self._log_report("val")
        self.val_history.append(
            {"epoch": self.current_epoch, "step": self.global_step, "f1": report[self.hparams.monitor_metric]}
        )

    def on_train_epoch_end(self) -> None:
        every_rank = [c for c in self.gather([self.step_counts]) if c]
        if every_rank:
            total: dict[str, float] = {}
            for counts in every_rank:
                total = add_counts(total, counts)
            self.step_weight_history.append(epoch_summary(self.current_epoch, total))
        self.step_counts = {}

    def on_test_epoch_end(self) -> None:
        self.test_report = self._log_report("test")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["val_history"] = list(self.val_history)  # plain values: weights-only loading accepts them
        checkpoint["step_weight_history"] = list(self.step_weight_history)
        # The next epoch's data order and dropout draw from these streams: a resumed run goes on exactly as an
        # uninterrupted one would (Lightning saves the loops' progress, not the random states).
        checkpoint["random_states"] = random_states()
        checkpoint["state_dict"] = self.params_policy.checkpoint_state(checkpoint["state_dict"])

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.val_history = list(checkpoint.get("val_history", []))
        self.step_weight_history = list(checkpoint.get("step_weight_history", []))
        if "random_states" in checkpoint and self._trainer is not None and self.trainer.training:
            set_random_states(checkpoint["random_states"])  # resuming a fit; not when testing a checkpoint
        # e.g. a sparse mask: its structure before its values load
        self.model = self.params_policy.restore(self.model, checkpoint["state_dict"])

    # ---- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self):
        from transformers import get_linear_schedule_with_warmup

        decay, no_decay = [], []
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.hparams.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.hparams.lr,
        )  # not fused: Lightning's mixed-precision plugin refuses gradient clipping with a fused optimizer
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.hparams.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
