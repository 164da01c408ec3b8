"""The stages of one job, in order: data -> (weights) -> training -> test predictions -> metrics."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from atlantis.data.datamodule import RelationDataModule
from atlantis.data.prompts import DEFAULT_TEMPLATE
from atlantis.data.splits import build_splits
from atlantis.data.tokenization import target_ids
from atlantis.eval.outputs import write_confusion, write_predictions
from atlantis.experiment.fallback import apply_fallback, make_reader, ran_name
from atlantis.models.loading import load_tokenizer
from atlantis.models.module import RelationLM
from atlantis.utils.io import atomic_write_json, atomic_write_jsonl
from atlantis.utils.jobs import completed_metrics, job_state_dir, mark_completed, reuse_completed
from atlantis.weights.cache import ArtifactCache
from atlantis.weights.diagnostics import plot_weights, weight_diagnostics
from atlantis.weights.importance import METHOD_TERMS, ImportanceWeighter

log = logging.getLogger(__name__)


def plain(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def build_dataset_splits(cfg: dict):
    """The job's noisy splits, from the reader its dataset config names."""
    data = cfg["dataset"]
    return build_splits(
        make_reader(data),
        noise_rate=cfg["noise"],
        noise_kind=cfg["noise_kind"]["name"],
        seed=cfg["seed"],
        clean_validation=cfg["clean_validation"],
        noise_options={k: v for k, v in cfg["noise_kind"].items() if k != "name"},
        **{k: data.get(k) for k in ("max_train_examples", "max_val_examples", "max_test_examples")},
    )


def build_datamodule(cfg: dict, tokenizer) -> RelationDataModule:
    splits = build_dataset_splits(cfg)
    trainer_cfg = cfg["trainer"]
    prompt = dict(cfg["prompt"])
    template = prompt.pop("template", None) or DEFAULT_TEMPLATE
    return RelationDataModule(
        splits,
        tokenizer,
        cfg["model"]["kind"],
        batch_size=trainer_cfg["batch_size"],
        eval_batch_size=trainer_cfg.get("eval_batch_size"),
        group_by_length=trainer_cfg.get("group_by_length", False),
        seed=cfg["seed"],
        prompt_template=template,
        **prompt,
    )


def link_checkpoints(run_dir: Path, checkpoint_dir: Path) -> None:
    """run_dir/checkpoints points at the job's state folder, where reruns find them."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    link = run_dir / "checkpoints"
    if not link.exists():
        link.symlink_to(checkpoint_dir.resolve(), target_is_directory=True)


def build_trainer(
    cfg: dict, run_dir: Path, loggers, checkpoint_dir: Path
) -> tuple[L.Trainer, L.pytorch.callbacks.ModelCheckpoint]:
    t = cfg["trainer"]
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best-{epoch}-{step}",
        monitor="val/f1",
        mode="max",
        save_top_k=1,
        save_last=True,
    )
    accelerator = t.get("accelerator", "auto")
    on_gpu = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    precision = t.get("precision") or ("bf16-mixed" if on_gpu else "32-true")
    trainer = L.Trainer(
        max_epochs=t["max_epochs"],
        max_steps=t.get("max_steps", -1),
        accumulate_grad_batches=t.get("accumulate_grad_batches", 1),
        gradient_clip_val=t.get("gradient_clip_val", 1.0),
        precision=precision,
        accelerator=accelerator,
        devices=t.get("devices", "auto"),
        strategy=build_strategy(cfg.get("strategy")),
        val_check_interval=t.get("val_check_interval"),
        check_val_every_n_epoch=t.get("check_val_every_n_epoch", 1),
        num_sanity_val_steps=0,
        log_every_n_steps=t.get("log_every_n_steps", 10),
        callbacks=[checkpoint],
        logger=loggers,
        default_root_dir=run_dir,
        enable_progress_bar=t.get("enable_progress_bar", True),
        deterministic=t.get("deterministic", False),
    )
    return trainer, checkpoint


def build_strategy(strategy_cfg):
    """'auto', or a Lightning strategy (DDP, FSDP, DeepSpeed) from the `strategy` group."""
    if not strategy_cfg:
        return "auto"
    if isinstance(strategy_cfg, str):
        return strategy_cfg
    from hydra.utils import instantiate

    return instantiate(strategy_cfg)


def log_weights_to_wandb(loggers: list, report: dict, plot: Path) -> None:
    """Weight diagnostics as W&B summary values and the histogram as an image."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            scalars = {k: v for k, v in report.items() if isinstance(v, (int, float)) and v is not None}
            logger.experiment.summary.update({f"weights/{k}": v for k, v in scalars.items()})
            logger.log_image(key="weights/histogram", images=[str(plot)])


def build_loggers(cfg: dict, run_dir: Path) -> list:
    from lightning.pytorch.loggers import CSVLogger

    loggers = [CSVLogger(save_dir=run_dir, name="csv", version="")]
    logger_cfg = cfg.get("logger") or {}
    if logger_cfg.get("name") == "wandb":
        from atlantis.utils.wandb import make_wandb_logger

        wandb_logger = make_wandb_logger(cfg, run_dir)
        if wandb_logger is not None:
            loggers.append(wandb_logger)
    return loggers


def job_summary(cfg: dict) -> dict:
    """The settings a report groups by."""
    return {
        "dataset": ran_name(cfg, "dataset"),
        "model": ran_name(cfg, "model"),
        "method": cfg["method"]["name"],
        "noise": cfg["noise"],
        "noise_kind": cfg["noise_kind"]["name"],
        "seed": cfg["seed"],
        "reference": (cfg.get("reference") or {}).get("name") if cfg["method"]["name"] != "sft" else None,
        "weights": cfg["method"].get("weights"),
    }


def apply_importance_weights(cfg: dict, datamodule, tokenizer, label_token_ids, run_dir: Path) -> dict:
    """Compute (or reuse) the method's weights, put them on the train split, write weights.json and plots."""
    cache = ArtifactCache(Path(cfg["paths"]["cache_dir"]))
    weights, scores = ImportanceWeighter(cfg, datamodule, tokenizer, label_token_ids, cache).compute()
    datamodule.set_train_weights(weights)
    examples = datamodule.examples("train")
    w = [weights[e.id] for e in examples]
    labels = [e.label for e in examples]
    noisy = [e.is_noisy for e in examples]
    report = weight_diagnostics(w, labels, noisy)
    report["cache"] = cache.events
    atomic_write_json(run_dir / "weights.json", report)
    plot_weights(run_dir / "weights.png", w, labels, noisy, f"{cfg['run_name']} weights")
    rows = [
        {
            "id": e.id,
            "label": e.label,
            "clean_label": e.clean_label,
            "is_noisy": e.is_noisy,
            "weight": weights[e.id],
            **{f"logp_{k}": float(v[i]) for k, v in scores.items()},
        }
        for i, e in enumerate(examples)
    ]
    atomic_write_jsonl(run_dir / "weights.jsonl", rows)
    log.info(
        "weights: AUROC clean-vs-noisy %s, ESS %.0f/%d", report["auroc_clean_vs_noisy"], report["ess"], report["n"]
    )
    return report


def run_job(cfg: DictConfig | dict, run_dir: str | Path) -> dict:
    """Run one job (data, training, test) and write its outputs to `run_dir`; returns the metrics."""
    cfg = apply_fallback(plain(cfg))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = job_state_dir(cfg)
    if cfg.get("resume", True) and (done := completed_metrics(state)) is not None:
        return reuse_completed(state, run_dir, done)
    if not cfg.get("resume", True):
        shutil.rmtree(state, ignore_errors=True)  # a fresh start: no old checkpoints or metrics
    L.seed_everything(cfg["seed"], workers=True)
    tokenizer = load_tokenizer(cfg["model"]["tokenizer"])
    datamodule = build_datamodule(cfg, tokenizer)
    datamodule.setup()
    labels = datamodule.labels
    label_token_ids = [target_ids(tokenizer, datamodule.builder, label) for label in labels]

    method = cfg["method"]["name"]
    loggers = build_loggers(cfg, run_dir)
    weight_report = None
    if method in METHOD_TERMS:
        weight_report = apply_importance_weights(cfg, datamodule, tokenizer, label_token_ids, run_dir)
        log_weights_to_wandb(loggers, weight_report, run_dir / "weights.png")
    elif method == "iw_sft":
        cache = ArtifactCache(Path(cfg["paths"]["cache_dir"]))
        weighter = ImportanceWeighter(cfg, datamodule, tokenizer, label_token_ids, cache)
        datamodule.set_train_column("start_logp", weighter.start_logprobs())
    elif method != "sft":
        raise ValueError(f"unknown method {method!r}; expected sft, iw_sft or one of {sorted(METHOD_TERMS)}")

    model_cfg, train_cfg = cfg["model"], cfg["trainer"]
    module = RelationLM(
        model=model_cfg["large"],
        kind=model_cfg["kind"],
        tokenizer=model_cfg["tokenizer"],
        labels=labels,
        label_token_ids=label_token_ids,
        negative_label=datamodule.splits.negative_label,
        monitor_metric=cfg["eval"]["monitor_metric"],
        lr=train_cfg["lr"],
        weight_decay=train_cfg.get("weight_decay", 0.0),
        warmup_ratio=train_cfg.get("warmup_ratio", 0.06),
        decoder=cfg["eval"]["decoder"],
        max_new_tokens=cfg["eval"]["max_new_tokens"],
        gradient_checkpointing=train_cfg.get("gradient_checkpointing", False),
        trainable_layers=train_cfg.get("trainable_layers"),
        cache_dir=cfg["paths"]["cache_dir"],
        iw_sft_clip=cfg["method"].get("clip") if method == "iw_sft" else None,
        tokenizer_object=tokenizer,
    )
    if train_cfg.get("compile"):
        # In place, so checkpoints keep their plain keys; fuses norms, activations and rotary embeddings.
        module.model.base_model.compile()
    trainer, checkpoint = build_trainer(cfg, run_dir, loggers, state / "checkpoints")
    last = state / "checkpoints" / "last.ckpt"
    resume_from = str(last) if cfg.get("resume", True) and last.is_file() else None
    if resume_from:
        log.info("resuming interrupted training from %s", resume_from)
    link_checkpoints(run_dir, state / "checkpoints")
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    best_path = checkpoint.best_model_path or None
    trainer.test(module, datamodule=datamodule, ckpt_path=best_path, weights_only=True)

    report = module.test_report
    examples_by_id = {e.id: e for e in datamodule.splits.test}
    write_predictions(run_dir / "predictions.jsonl", module.eval_records["test"], examples_by_id, labels)
    title = f"{cfg['run_name']} test (official F1 {report['f1_official']:.4f})"
    write_confusion(run_dir, report["confusion_matrix"], labels, title)
    best_val = checkpoint.best_model_score
    metrics = {f"test/{k}": report[k] for k in ("f1_official", "f1_macro", "f1_micro", "accuracy", "invalid_rate")}
    metrics.update(
        {
            "val/best_f1": float(best_val) if best_val is not None else None,
            "val/history": module.val_history,
            "test/checkpoint": os.path.basename(best_path) if best_path else None,
            "test/per_class": report["per_class"],
            "data": datamodule.stats,
            "noise": {"rate": cfg["noise"], "kind": cfg["noise_kind"]["name"]},
            "run_name": cfg["run_name"],
            "fallback": cfg.get("fallback"),
            "config": job_summary(cfg),
        }
    )
    if weight_report is not None:
        metrics["weights"] = {
            k: weight_report[k]
            for k in ("auroc_clean_vs_noisy", "ess_fraction", "mean_weight_clean", "mean_weight_noisy")
        }
        metrics["cache"] = weight_report["cache"]
    atomic_write_json(run_dir / "metrics.json", metrics)
    mark_completed(state, run_dir, metrics)
    log.info("test metrics: %s", json.dumps({k: v for k, v in metrics.items() if k.startswith("test/f1")}))
    return metrics
