"""One job, top to bottom: data -> select -> weights -> module -> params -> fit (if the method trains) -> test
-> outputs. The method is three plugins built from the config; nothing here branches on a method's name."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import lightning as L
import numpy as np
from omegaconf import DictConfig

from atlantis.data.datamodule import RelationDataModule
from atlantis.data.prompts import DEFAULT_TEMPLATE
from atlantis.data.splits import build_splits
from atlantis.data.tokenization import target_ids
from atlantis.eval.outputs import write_confusion, write_extractions, write_predictions
from atlantis.experiment.config import instantiate, plain
from atlantis.experiment.fallback import apply_fallback, make_reader, ran_name
from atlantis.experiment.jobs import (
    active_prompt,
    checkpoints_kept,
    completed_metrics,
    job_settings,
    job_state_dir,
    mark_completed,
    prune_checkpoints,
    reuse_completed,
    set_aside_other_job,
    with_file_digests,
)
from atlantis.methods.confident import detector_report, out_of_fold_probs
from atlantis.methods.diagnostics import plot_weights, weight_diagnostics
from atlantis.methods.method import Method, TrainingData
from atlantis.models.loading import load_tokenizer
from atlantis.models.module import RelationLM
from atlantis.models.trainer import make_trainer
from atlantis.signals.cache import ArtifactCache
from atlantis.signals.identity import content_digest, model_identity
from atlantis.signals.store import Signals
from atlantis.utils.io import atomic_write_json, atomic_write_jsonl

log = logging.getLogger(__name__)


def build_method(cfg: dict) -> Method:
    m = cfg["method"]
    return Method(m["name"], instantiate(m["select"]), instantiate(m["weights"]), instantiate(m["params"]))


# ---- data ----------------------------------------------------------------------------------------
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
    trainer_cfg = cfg["trainer"]
    prompt = dict(cfg["prompt"])
    template = prompt.pop("template", None) or DEFAULT_TEMPLATE
    return RelationDataModule(
        build_dataset_splits(cfg),
        tokenizer,
        cfg["model"]["kind"],
        batch_size=trainer_cfg["batch_size"],
        eval_batch_size=trainer_cfg.get("eval_batch_size"),
        group_by_length=trainer_cfg.get("group_by_length", False),
        seed=cfg["seed"],
        prompt_template=template,
        **prompt,
    )


def tokenizer_identity(name: str, cache_dir: str) -> str | dict:
    """A local tokenizer folder by content (its path may differ between machines), else its name."""
    return {"local": content_digest(name, cache_dir)} if os.path.isdir(name) else name


def build_signals(cfg: dict, datamodule, tokenizer, label_token_ids, method: Method) -> Signals:
    """The cached signals of the training split; nothing is computed until a slot asks."""
    train_cfg, reference = cfg["trainer"], dict(cfg.get("reference") or {})
    data_key = {
        "dataset": cfg["dataset"],
        "noise": cfg["noise"],
        "noise_kind": with_file_digests(cfg["noise_kind"]),
        "seed": cfg["seed"],
        "clean_validation": cfg["clean_validation"],
        "prompt": active_prompt(cfg["prompt"]),
        "tokenizer": tokenizer_identity(cfg["model"]["tokenizer"], cfg["paths"]["cache_dir"]),
        "kind": cfg["model"]["kind"],
    }
    # The reference trains with its own params policy when it names one (a stronger or cheaper reference than
    # the method's), else with the method's when that trains, else every parameter.
    params = reference.get("params") or (dict(cfg["method"]["params"]) if method.params.trains else None)
    reference_training = dict(
        train_cfg,
        max_epochs=reference.get("max_epochs") or train_cfg["max_epochs"],
        lr=reference.get("lr") or train_cfg["lr"],
        params=params or "full",
    )

    def make_reference_module() -> RelationLM:
        return make_module(
            cfg, cfg["model"]["small"], datamodule, tokenizer, label_token_ids, reference_training, params
        )

    return Signals(
        datamodule.features["train"],
        kind=cfg["model"]["kind"],
        tokenizer=tokenizer,
        label_token_ids=label_token_ids,
        models={"large": cfg["model"]["large"], "small": cfg["model"]["small"]},
        reference=reference,
        data_key=data_key,
        cache=ArtifactCache(Path(cfg["paths"]["cache_dir"])),
        collate=datamodule.collator,
        make_reference_module=make_reference_module,
        reference_training=reference_training,
        batch_size=train_cfg.get("eval_batch_size") or 16,
        seed=cfg["seed"],
    )


# ---- the model -----------------------------------------------------------------------------------
def make_module(
    cfg, model_spec, datamodule, tokenizer, label_token_ids, train_cfg, params=None, step_weighting=None
) -> RelationLM:
    return RelationLM(
        model=model_spec,
        kind=cfg["model"]["kind"],
        tokenizer=cfg["model"]["tokenizer"],
        labels=datamodule.labels,
        label_token_ids=label_token_ids,
        negative_label=datamodule.splits.negative_label,
        monitor_metric=cfg["eval"]["monitor_metric"],
        lr=train_cfg["lr"],
        weight_decay=train_cfg.get("weight_decay", 0.0),
        warmup_ratio=train_cfg.get("warmup_ratio", 0.06),
        decoder=cfg["eval"]["decoder"],
        max_new_tokens=cfg["eval"]["max_new_tokens"],
        gradient_checkpointing=train_cfg.get("gradient_checkpointing", False),
        params=params,
        cache_dir=cfg["paths"]["cache_dir"],
        tokenizer_object=tokenizer,
        step_weighting=step_weighting,
        task=datamodule.splits.task,
    )


def build_strategy(strategy_cfg):
    """'auto', or a Lightning strategy (DDP, FSDP, DeepSpeed) from the `strategy` group."""
    if not strategy_cfg:
        return "auto"
    return strategy_cfg if isinstance(strategy_cfg, str) else instantiate(strategy_cfg)


def build_loggers(cfg: dict, run_dir: Path) -> list:
    from lightning.pytorch.loggers import CSVLogger

    loggers = [CSVLogger(save_dir=run_dir, name="csv", version="")]
    if (cfg.get("logger") or {}).get("name") == "wandb":
        from atlantis.experiment.wandb import make_wandb_logger

        wandb_logger = make_wandb_logger(cfg, run_dir)
        if wandb_logger is not None:
            loggers.append(wandb_logger)
    return loggers


def link_checkpoints(run_dir: Path, checkpoint_dir: Path) -> None:
    """run_dir/checkpoints points at the job's state folder, where reruns find them."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    link = run_dir / "checkpoints"
    if not link.exists():
        link.symlink_to(checkpoint_dir.resolve(), target_is_directory=True)


# ---- outputs -------------------------------------------------------------------------------------
def job_summary(cfg: dict) -> dict:
    """The settings a report groups by."""
    method = cfg["method"]
    return {
        "dataset": ran_name(cfg, "dataset"),
        "model": ran_name(cfg, "model"),
        "method": method["name"],
        "noise": cfg["noise"],
        "noise_kind": cfg["noise_kind"]["name"],
        "seed": cfg["seed"],
        "reference": (cfg.get("reference") or {}).get("name") if uses_reference(method) else None,
        "weights": {k: v for k, v in method["weights"].items() if k != "_target_"},
        "select": method["select"],
        "params": method["params"],
    }


def uses_reference(method_cfg: dict) -> bool:
    return "reference" in (method_cfg["weights"].get("terms") or ())


def write_weight_outputs(cfg: dict, run_dir: Path, data: TrainingData, weight_set, loggers: list) -> dict:
    """weights.json (diagnostics), weights.jsonl (every example's terms and weight) and weights.png."""
    w = [weight_set.weights[f["id"]] for f in data.features]
    labels = [e.label for e in data.examples]
    noisy = [e.is_noisy for e in data.examples]
    report = weight_diagnostics(w, labels, noisy)
    report["cache"] = data.signals.cache.events
    atomic_write_json(run_dir / "weights.json", report)
    plot_weights(run_dir / "weights.png", w, labels, noisy, f"{cfg['run_name']} weights")
    rows = [
        {
            "id": e.id,
            "label": e.label,
            "clean_label": e.clean_label,
            "is_noisy": e.is_noisy,
            "weight": weight_set.weights[e.id],
            **{f"logp_{k}": float(v[i]) for k, v in weight_set.scores.items()},
        }
        for i, e in enumerate(data.examples)
    ]
    atomic_write_jsonl(run_dir / "weights.jsonl", rows)
    log.info(
        "weights: AUROC clean-vs-noisy %s, ESS %.0f/%d", report["auroc_clean_vs_noisy"], report["ess"], report["n"]
    )
    log_weights_to_wandb(loggers, report, run_dir / "weights.png")
    return report


def write_detector_report(run_dir: Path, data: TrainingData, weight_set) -> dict | None:
    """cleanlab.json: confident learning on the cross-fitted reference against the ATLANTIS weights, both
    judged on the known corrupted labels; None (nothing written) when no label is corrupted."""
    noisy = np.array([e.is_noisy for e in data.examples], dtype=bool)
    if not noisy.any():
        return None
    labels = np.array([f["label_index"] for f in data.features])
    weights = np.array([weight_set.weights[f["id"]] for f in data.features])
    clean = np.array([data.labels.index(e.clean_label) for e in data.examples])
    report = detector_report(labels, out_of_fold_probs(data), noisy, weights=weights, clean_labels=clean)
    atomic_write_json(run_dir / "cleanlab.json", report)
    log.info(
        "noise detectors, AUROC clean vs corrupted: cleanlab %.3f, ATLANTIS weights %.3f",
        report["cleanlab"]["auroc_clean_vs_noisy"],
        report["atlantis_weights"]["auroc_clean_vs_noisy"],
    )
    return report


def log_weights_to_wandb(loggers: list, report: dict, plot: Path) -> None:
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            scalars = {k: v for k, v in report.items() if isinstance(v, (int, float)) and v is not None}
            logger.experiment.summary.update({f"weights/{k}": v for k, v in scalars.items()})
            logger.log_image(key="weights/histogram", images=[str(plot)])


def document_level_metrics(cfg: dict, reader, records: list[dict], labels: list[str]) -> dict:
    """DocRED F1 and Ign F1 of the predicted relation sets; Ign against the facts of the training documents."""
    from atlantis.data.redocred import predicted_facts
    from atlantis.eval.docred import docred_scores, train_name_facts

    documents = reader.documents(cfg["seed"])
    facts = predicted_facts(records, labels, documents["test"], reader.local_source())
    scores = docred_scores(facts, documents["test"], train_name_facts(documents["train"]))
    log.info("DocRED test: F1 %.4f, Ign F1 %.4f (%d facts predicted)", scores["f1"], scores["f1_ign"], len(facts))
    return {"test/docred_f1": scores["f1"], "test/docred_ign_f1": scores["f1_ign"], "test/docred": scores}


def save_merged_model(module, tokenizer, out: Path) -> Path:
    """The tested model with its adapters or sparse deltas folded in, as a plain HF directory (atomically)."""
    model = module.params_policy.merge(module.model) if module.params_policy is not None else module.model
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log.info("merged model written to %s", out)
    return out


# ---- the job -------------------------------------------------------------------------------------
def run_job(cfg: DictConfig | dict, run_dir: str | Path) -> dict:
    """Run one job (data, method, training, test) and write its outputs to `run_dir`; returns the metrics."""
    cfg = apply_fallback(plain(cfg))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = job_settings(cfg)  # once: it hashes the weak-label files a noise kind names
    set_aside_other_job(run_dir, settings)
    state = job_state_dir(cfg)
    kept = checkpoints_kept(cfg.get("keep_checkpoints", "best"))
    if cfg.get("resume", True) and (done := completed_metrics(state)) is not None:
        wanted = ["model"] if cfg.get("save_model") and instantiate(cfg["method"]["params"]).trains else []
        reused = reuse_completed(state, run_dir, done, wanted)
        if reused is not None:
            prune_checkpoints(state, kept)  # a job finished under another keep_checkpoints
            return reused
    if not cfg.get("resume", True):
        shutil.rmtree(state, ignore_errors=True)  # a fresh start: no old checkpoints or metrics
    L.seed_everything(cfg["seed"], workers=True)
    method = build_method(cfg)

    # data
    tokenizer = load_tokenizer(cfg["model"]["tokenizer"])
    datamodule = build_datamodule(cfg, tokenizer)
    datamodule.setup()
    label_token_ids = [target_ids(tokenizer, datamodule.builder, label) for label in datamodule.labels]
    signals = build_signals(cfg, datamodule, tokenizer, label_token_ids, method)
    data = TrainingData(
        datamodule.features["train"], datamodule.examples("train"), datamodule.labels, signals, cfg["seed"]
    )
    loggers = build_loggers(cfg, run_dir)

    # select
    selection = method.select(data)
    if selection.report is not None:
        atomic_write_json(run_dir / "selection.json", selection.report)
        datamodule.restrict_train(selection.ids)
        data = data.subset(selection.ids)

    # weights
    weight_set = method.weights.example_weights(data)
    weight_report = None
    if weight_set is not None:
        datamodule.set_train_weights(weight_set.weights)
        weight_report = write_weight_outputs(cfg, run_dir, data, weight_set, loggers)
        uses_reference = "reference" in getattr(method.weights, "terms", ())
        if cfg.get("compare_cleanlab") and uses_reference and (cfg.get("reference") or {}).get("name") == "crossfit":
            weight_report["detector"] = write_detector_report(run_dir, data, weight_set)
    for name, values in method.weights.columns(data).items():
        datamodule.set_train_column(name, values)

    # module and params
    train_cfg = cfg["trainer"]
    module = make_module(
        cfg,
        cfg["model"]["large"],
        datamodule,
        tokenizer,
        label_token_ids,
        train_cfg,
        dict(cfg["method"]["params"]),
        method.weights.step_weighting(),
    )
    calibration = cfg["eval"].get("calibration", "none")
    if calibration not in ("none", "content_free"):
        raise ValueError(f"eval.calibration must be none or content_free, got {calibration!r}")
    reader = make_reader(cfg["dataset"])
    module.relation_sets = hasattr(reader, "documents") and cfg["eval"]["decoder"] == "label_scoring"
    if calibration == "content_free":
        if cfg["eval"]["decoder"] != "label_scoring":
            raise ValueError("eval.calibration=content_free needs eval.decoder=label_scoring (it shifts label scores)")
        module.calibration_batch = datamodule.content_free_batch()
    if train_cfg.get("compile"):
        # In place, so checkpoints keep their plain keys; fuses norms, activations and rotary embeddings.
        module.model.base_model.compile()

    # fit (if the method trains), then test
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=state / "checkpoints", filename="best-{epoch}-{step}", monitor="val/f1", mode="max", save_top_k=1,
        save_last=True,
    )  # fmt: skip
    trainer = make_trainer(
        train_cfg,
        callbacks=[checkpoint] if method.params.trains else [],
        logger=loggers,
        default_root_dir=run_dir,
        strategy=build_strategy(cfg.get("strategy")),
    )
    best_path = None
    params_report = None
    if method.params.trains:
        params_report = module.params_policy.prepare(
            module,
            datamodule.train_dataloader(),
            cache=ArtifactCache(Path(cfg["paths"]["cache_dir"])),
            model_key=model_identity(cfg["model"]["large"], cfg["paths"]["cache_dir"]),
        )
        last = state / "checkpoints" / "last.ckpt"
        resume_from = str(last) if cfg.get("resume", True) and last.is_file() else None
        if resume_from:
            log.info("resuming interrupted training from %s", resume_from)
        link_checkpoints(run_dir, state / "checkpoints")
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        best_path = checkpoint.best_model_path or None
    # Every epoch's validation score: testing the best checkpoint would load that epoch's shorter history.
    val_history = list(module.val_history)
    step_weight_history = list(module.step_weight_history)  # likewise
    trainer.test(module, datamodule=datamodule, ckpt_path=best_path, weights_only=True)

    # outputs
    report = module.test_report
    labels = datamodule.labels
    examples_by_id = {e.id: e for e in datamodule.splits.test}
    if module.task == "extraction":
        write_extractions(run_dir / "predictions.jsonl", module.eval_records["test"], examples_by_id)
    else:
        write_predictions(run_dir / "predictions.jsonl", module.eval_records["test"], examples_by_id, labels)
        write_confusion(
            run_dir,
            report["confusion_matrix"],
            labels,
            f"{cfg['run_name']} test (official F1 {report['f1_official']:.4f})",
        )
    best_val = checkpoint.best_model_score
    metrics = {f"test/{k}": report[k] for k in ("f1_official", "f1_macro", "f1_micro", "accuracy", "invalid_rate")}
    if module.task == "extraction":  # string-strict pair scores
        metrics.update({f"test/{k}": report[k] for k in ("precision", "recall", "invalid_lines", "generated_lines")})
    metrics.update(
        {
            "val/best_f1": float(best_val) if best_val is not None else None,
            "val/history": val_history,
            "test/checkpoint": os.path.basename(best_path) if best_path else None,
            "test/per_class": report["per_class"],
            "data": datamodule.stats,
            "noise": {"rate": cfg["noise"], "kind": cfg["noise_kind"]["name"]},
            "run_name": cfg["run_name"],
            "fallback": cfg.get("fallback"),
            "config": job_summary(cfg),
            "settings": settings,  # the report's row key: every setting that tells two jobs apart
        }
    )
    if step_weight_history:
        metrics["train/step_weighting"] = step_weight_history
    if module.relation_sets:
        metrics.update(document_level_metrics(cfg, reader, module.eval_records["test"], labels))
    if params_report is not None:
        metrics["params"] = params_report
    if cfg.get("save_model") and method.params.trains:
        metrics["model_dir"] = save_merged_model(module, tokenizer, run_dir / "model").name  # in the run folder
    if selection.report is not None:
        metrics["selection"] = {k: v for k, v in selection.report.items() if k not in ("ids", "gains", "class_share")}
    if weight_report is not None:
        keys = ("auroc_clean_vs_noisy", "ess_fraction", "mean_weight_clean", "mean_weight_noisy")
        metrics["weights"] = {k: weight_report[k] for k in keys}
        if weight_report.get("detector"):
            metrics["weights"]["cleanlab_auroc_clean_vs_noisy"] = weight_report["detector"]["cleanlab"][
                "auroc_clean_vs_noisy"
            ]
        metrics["cache"] = weight_report["cache"]
    atomic_write_json(run_dir / "metrics.json", metrics)
    mark_completed(state, run_dir, metrics)
    prune_checkpoints(state, kept)
    log.info("test metrics: %s", json.dumps({k: v for k, v in metrics.items() if k.startswith("test/f1")}))
    return metrics
