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
from atlantis.models.loss import weighted_batch_loss
from atlantis.models.step_diagnostics import add_counts, epoch_summary, step_weight_counts
from atlantis.utils.random_state import random_states, set_random_states

log = logging.getLogger(__name__)


def locate_policy(spec: dict | None):
    """A params policy from its plain spec, by class path (pydoc.locate: no config framework in this layer)."""
    if not spec:
        return None
    from pydoc import locate

    options = {k: v for k, v in spec.items() if k != "_target_"}
    policy_class = locate(spec["_target_"])
    if policy_class is None:
        raise ValueError(f"params policy {spec['_target_']!r} cannot be imported")
    return policy_class(**options)


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
        params: dict | None = None,
        cache_dir: str | None = None,
        tokenizer_object=None,
        model_object=None,
        step_weighting=None,
        task: str = "classification",
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["tokenizer_object", "model_object", "step_weighting"])
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
        # What trains (a params policy: {'_target_': class path, options}); applied here, not by the caller, so a
        # checkpoint reloads into the same structure (adapters, frozen blocks) with load_from_checkpoint.
        self.params_policy = locate_policy(params)
        if self.params_policy is not None:
            self.model = self.params_policy.apply(self.model)
            self.strict_loading = self.params_policy.strict_loading  # sparse checkpoints hold deltas only
        self.model.train()  # from_pretrained returns eval mode; Lightning keeps submodule modes (dropout)
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        # A weighting whose factor changes every step (iw-SFT, small-loss, loss truncation):
        # step_weight(nll, n_targets, batch, epoch=float, max_epochs=int) -> [B].
        self.step_weighting = step_weighting
        self.eval_records: dict[str, list[dict]] = {"val": [], "test": []}
        # Contextual calibration at test time: a collated content-free prompt whose label scores are subtracted.
        self.calibration_batch: dict | None = None
        self.label_bias: torch.Tensor | None = None
        # Document-level RE: keep, per test pair, every label that outscores the negative one.
        self.relation_sets = False
        self.last_scores: torch.Tensor | None = None
        self.val_history: list[dict] = []
        # Per epoch, what the step weighting did to the corrupted examples (dropped, mean factor); counts of the
        # epoch under way in step_counts.
        self.step_weight_history: list[dict] = []
        self.step_counts: dict[str, float] = {}

    # ---- the weighted step -------------------------------------------------------------------
    def example_nll(self, batch: dict) -> torch.Tensor:
        """Per-example NLL (mean over target tokens) of a batch, shape [B]."""
        return example_nll(self.model, self.kind, batch)[0]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if hasattr(self.step_weighting, "label_set_loss"):  # a loss on every label's score (SSR-PU)
            return self.label_set_step(batch)
        if getattr(self.params_policy, "cache_lower", False):  # the frozen blocks' outputs come from a cache
            nll, n_targets = self.params_policy.example_nll(self.model, batch)
        else:
            nll, n_targets = example_nll(self.model, self.kind, batch)
        weights = batch["weight"]
        if self.step_weighting is not None:
            epoch = self.current_epoch + batch_idx / max(1, self.trainer.num_training_batches)
            factor = self.step_weighting.step_weight(
                nll.detach(), n_targets, batch, epoch=epoch, max_epochs=self.trainer.max_epochs
            )
            weights = weights * factor
            if "is_noisy" in batch:
                self.step_counts = add_counts(self.step_counts, step_weight_counts(factor, batch["is_noisy"]))
        loss = weighted_batch_loss(nll, weights)
        size = nll.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/nll", nll.mean(), batch_size=size)
        self.log("train/weight_mean", weights.mean(), batch_size=size)
        return loss

    def label_set_step(self, batch: dict) -> torch.Tensor:
        if self.hparams.negative_label not in self.labels:
            raise ValueError("a label-set loss (SSR-PU) needs the dataset's negative label as its threshold")
        pad_id = self.tokenizer.pad_token_id
        scores = score_candidates(self.model, self.kind, batch, self.label_token_ids, pad_id)
        negative = self.labels.index(self.hparams.negative_label)
        loss = self.step_weighting.label_set_loss(scores, batch["label_index"], negative)
        self.log("train/loss", loss, prog_bar=True, batch_size=scores.shape[0])
        return loss

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
            for example_id, gold_text, text in zip(batch["ids"], batch["target_text"], raw, strict=True):
                self.eval_records[stage].append({"id": example_id, "gold": gold_text, "raw": text})
            return
        gold = batch["label_index"].tolist()
        for example_id, p, g, r in zip(batch["ids"], predicted, gold, raw, strict=True):
            self.eval_records[stage].append({"id": example_id, "gold": g, "pred": p, "raw": r})
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

    def _log_report(self, stage: str) -> dict:
        records = self.eval_records[stage]
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
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=True)
        return report

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        report = self._log_report("val")
        self.val_history.append(
            {"epoch": self.current_epoch, "step": self.global_step, "f1": report[self.hparams.monitor_metric]}
        )

    def on_train_epoch_end(self) -> None:
        if self.step_counts:
            self.step_weight_history.append(epoch_summary(self.current_epoch, self.step_counts))
            self.step_counts = {}

    def on_test_epoch_end(self) -> None:
        self.test_report = self._log_report("test")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["val_history"] = list(self.val_history)  # plain values: weights-only loading accepts them
        checkpoint["step_weight_history"] = list(self.step_weight_history)
        # The next epoch's data order and dropout draw from these streams: a resumed run goes on exactly as an
        # uninterrupted one would (Lightning saves the loops' progress, not the random states).
        checkpoint["random_states"] = random_states()
        if self.params_policy is not None:
            checkpoint["state_dict"] = self.params_policy.checkpoint_state(checkpoint["state_dict"])

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.val_history = list(checkpoint.get("val_history", []))
        self.step_weight_history = list(checkpoint.get("step_weight_history", []))
        if "random_states" in checkpoint and self._trainer is not None and self.trainer.training:
            set_random_states(checkpoint["random_states"])  # resuming a fit; not when testing a checkpoint
        if self.params_policy is not None:  # e.g. a sparse mask: its structure before its values load
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
