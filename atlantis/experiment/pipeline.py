"""One job, top to bottom: build (data, method, signals, module, trainer) -> fit -> evaluate -> write.

The method is four plugins built from the config (atlantis/methods/base.py lists their hooks); nothing here
branches on a method, a dataset or a task: each answers for itself through its hooks. On N processes every rank
runs the job; rank zero computes the signals first and is the only one that writes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
from omegaconf import DictConfig

from atlantis.data.datamodule import RelationDataModule
from atlantis.data.prompts import DEFAULT_TEMPLATE
from atlantis.data.readers import DatasetReader
from atlantis.data.splits import build_splits
from atlantis.data.tokenization import target_ids
from atlantis.eval.outputs import TASK_SCALARS, write_test_outputs
from atlantis.experiment.config import instantiate, plain
from atlantis.experiment.fallback import apply_fallback, make_reader, ran_name
from atlantis.experiment.jobs import (
    checkpoints_kept,
    completed_metrics,
    job_settings,
    job_state_dir,
    mark_completed,
    noise_identity,
    prune_checkpoints,
    reuse_completed,
    set_aside_other_job,
    settings_key,
)
from atlantis.methods.confident import detector_report, out_of_fold_probs
from atlantis.methods.diagnostics import plot_weights, weight_diagnostics
from atlantis.methods.method import Method, TrainingData, reads_reference
from atlantis.methods.select import Selection
from atlantis.methods.weights import WeightSet
from atlantis.models.loading import load_tokenizer
from atlantis.models.module import RelationLM
from atlantis.models.trainer import make_trainer
from atlantis.signals.cache import ArtifactCache
from atlantis.signals.identity import JOB_KEY_VERSION, content_digest, model_identity
from atlantis.signals.store import RoleEncoding, Signals
from atlantis.utils.distributed import (
    broadcast_from_zero,
    init_external_process_group,
    is_global_zero,
    job_device,
    rank_zero_first,
    world_size,
)
from atlantis.utils.io import atomic_write_json, atomic_write_jsonl

log = logging.getLogger(__name__)


@dataclass
class Job:
    """Everything one job is made of, built once (`build_job`) and then only used."""

    cfg: dict
    run_dir: Path
    settings: dict  # every setting that decides the result (the job key hashes it)
    state: Path  # checkpoints and, once done, the metrics: shared by every rerun of this job
    method: Method
    reader: DatasetReader
    tokenizer: object
    datamodule: RelationDataModule
    data: TrainingData  # what trains: all examples or the selected ones, with their signals
    selection: Selection
    weight_set: WeightSet | None
    module: RelationLM
    trainer: L.Trainer
    checkpoint: L.pytorch.callbacks.ModelCheckpoint
    loggers: list
    reports: dict = field(default_factory=dict)  # what build, fit and evaluate measured, for metrics.json
    seconds: dict = field(default_factory=dict)


def run_job(cfg: DictConfig | dict, run_dir: str | Path) -> dict:
    """Run one job (data, method, training, test) and write its outputs to `run_dir`; returns the metrics."""
    cfg, run_dir = apply_fallback(plain(cfg)), Path(run_dir)
    settings = job_settings(cfg)  # once: it hashes the weak-label files a noise kind names
    state = job_state_dir(cfg, settings)
    init_external_process_group(cfg["trainer"].get("accelerator", "auto"))  # torchrun / SLURM ranks: join now
    # rank zero decides (a finished job is skipped by every rank at once, never by zero alone)
    if (done := broadcast_from_zero(completed_earlier(cfg, run_dir, settings, state))) is not None:
        if uses_wandb(cfg) and is_global_zero():
            from atlantis.experiment.wandb import log_restored_job

            log_restored_job(cfg, run_dir, settings_key(settings), state, done)
        return done
    start = time.perf_counter()
    with rank_zero_first():  # rank zero computes signals and references into the cache; the others read them
        job = build_job(cfg, run_dir, settings, state)
    job.seconds["build"] = time.perf_counter() - start
    fit(job)
    evaluate(job)
    return write_outputs(job)


# ---- before anything runs ------------------------------------------------------------------------
def completed_earlier(cfg: dict, run_dir: Path, settings: dict, state: Path) -> dict | None:
    """A completed job's metrics (its outputs copied into `run_dir`), or None when it has to run; a fresh start
    (resume=false) first forgets the job's old checkpoints and metrics."""
    kept = checkpoints_kept(cfg.get("keep_checkpoints", "best"))
    if not is_global_zero():
        return None  # ranks other than zero start once rank zero is under way: nothing of theirs to reuse
    run_dir.mkdir(parents=True, exist_ok=True)
    set_aside_other_job(run_dir, settings)
    if not cfg.get("resume", True):
        shutil.rmtree(state, ignore_errors=True)
        return None
    if (done := completed_metrics(state)) is None:
        return None
    wanted = ["model"] if cfg.get("save_model") and instantiate(cfg["method"]["params"]).trains else []
    reused = reuse_completed(state, run_dir, done, wanted)
    if reused is not None:
        prune_checkpoints(state, kept)  # a job finished under another keep_checkpoints
    return reused


# ---- build ---------------------------------------------------------------------------------------
def build_job(cfg: dict, run_dir: Path, settings: dict, state: Path) -> Job:
    """Data, the method's slots, the signals they ask for, the module and the trainer."""
    sharded = "FSDP" in str((cfg.get("strategy") or {}).get("_target_", ""))
    if cfg.get("save_model") and sharded and world_size() > 1:
        raise ValueError(  # gathering the full state of FSDP units needs every rank; rank zero alone would hang
            "save_model=true with strategy=fsdp on several processes is not supported: the tested checkpoint "
            f"({state}/checkpoints, full state dict) loads on one process with save_model=true"
        )
    L.seed_everything(cfg["seed"], workers=True)
    method = build_method(cfg)
    tokenizer, datamodule, label_token_ids, data = build_training_data(cfg, method)
    data, selection = select_examples(method, datamodule, data)
    weight_set = weigh_examples(
        method, datamodule, data, weigh_gold=bool((cfg.get("trusted") or {}).get("weigh_gold"))
    )
    loss_report = method.loss.prepare(data)
    reader = make_reader(cfg["dataset"])
    module = make_module(
        cfg, cfg["model"]["large"], datamodule, tokenizer, label_token_ids, cfg["trainer"], cfg["method"]["params"],
        method=method, relation_sets=reader.relation_sets and cfg["eval"]["decoder"] == "label_scoring",
        calibration_batch=calibration_batch(cfg["eval"], datamodule),
    )  # fmt: skip
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=state / "checkpoints", filename="best-{epoch}-{step}", monitor="val/f1", mode="max", save_top_k=1,
        save_last=True,
    )  # fmt: skip
    loggers = build_loggers(cfg, run_dir, settings_key(settings))
    trainer = make_trainer(
        cfg["trainer"],
        callbacks=[checkpoint] if method.params.trains else [],
        logger=loggers,
        default_root_dir=run_dir,
        strategy=build_strategy(cfg.get("strategy")),
        enable_model_summary=bool(cfg.get("verbose")),  # the params slot logs what trains, in one line
    )
    job = Job(cfg, run_dir, settings, state, method, reader, tokenizer, datamodule, data, selection, weight_set,
              module, trainer, checkpoint, loggers)  # fmt: skip
    job.reports["weights"] = weight_report(job) if weight_set is not None else None
    job.reports["loss"] = loss_report
    return job


def build_training_data(cfg: dict, method: Method):
    """(tokenizer, datamodule, label token ids, TrainingData): the trained model's encoding of the splits and the
    signals of every role over its training examples (nothing is scored until a slot asks)."""
    tokenizer = load_tokenizer(role_tokenizer(cfg["model"], "large"))  # the trained model's: the large base's
    datamodule = build_datamodule(cfg, tokenizer)
    datamodule.setup()
    label_token_ids = [target_ids(tokenizer, datamodule.builder, label) for label in datamodule.labels]
    small = small_role_encoding(cfg, datamodule)
    signals = build_signals(cfg, datamodule, tokenizer, label_token_ids, method, small)
    examples = datamodule.examples("train")
    trusted = datamodule.features.get("trusted", [])
    data = TrainingData(datamodule.features["train"], examples, datamodule.labels, signals, cfg["seed"], trusted)
    return tokenizer, datamodule, label_token_ids, data


def build_method(cfg: dict) -> Method:
    m = cfg["method"]
    slots = {slot: instantiate(m[slot]) for slot in ("select", "weights", "loss", "params")}
    return Method(m["name"], **slots)


def select_examples(method: Method, datamodule: RelationDataModule, data: TrainingData):
    """The select slot: the examples that train (the datamodule keeps only those). A trusted seed that trains
    (trusted.use=union) always trains: the rule chooses among the weakly labelled examples only, and its report
    describes them (a budget counts weak examples; cleanlab judges weak labels)."""
    trusted = data.trusted_ids()
    gold = [f["id"] for f in data.features if f["id"] in trusted]
    weak = data.subset([f["id"] for f in data.features if f["id"] not in trusted]) if gold else data
    selection = method.select(weak if weak.features else data)
    if selection.report is not None:
        if gold and weak.features:
            ids = selection.ids + gold  # n_selected stays the weak examples chosen; ids are every one that trains
            selection = Selection(ids, {**selection.report, "ids": ids, "n_trusted_kept": len(gold)}, selection.gains)
        datamodule.restrict_train(selection.ids)
        data = data.subset(selection.ids)
    return data, selection


def weigh_examples(
    method: Method, datamodule: RelationDataModule, data: TrainingData, weigh_gold: bool = False
) -> WeightSet | None:
    """The weights slot's fixed weights and columns, put on the training features the batches are made of.

    A trusted seed that trains (trusted.use=union) is gold: its examples weigh 1, as in SFT on noisy ∪ trusted, and
    the weights are computed and normalised over the weak examples only (as select chooses among them only); a
    per-step rule sees them as padding (the `gold` column) and leaves them at 1. A trusted reference has seen the
    gold examples, and L2RW's meta batch is drawn from them, so weighing them too (weigh_gold, the setting before
    2026-12-07) gives the seed several times its share of the loss: a confound with upweighting the gold labels."""
    trusted = data.trusted_ids()
    gold = [f["id"] for f in data.features if f["id"] in trusted]
    # trusted.use=only: every row is gold and none is judged, so a weighting acts on them as on any example
    gold_weighs_one = bool(gold) and not weigh_gold and len(gold) < len(data.features)
    judged = data.subset([f["id"] for f in data.features if f["id"] not in trusted]) if gold_weighs_one else data
    weight_set = method.weights.example_weights(judged)
    if weight_set is not None and gold_weighs_one:
        # the terms are every example's (weights.jsonl keeps the gold examples' log-probs)
        terms = method.weights.example_weights(data).scores
        weight_set = WeightSet({**weight_set.weights, **dict.fromkeys(gold, 1.0)}, terms)
    if gold_weighs_one:
        datamodule.set_train_column("gold", {f["id"]: float(f["id"] in trusted) for f in data.features})
    if weight_set is not None:
        if not method.loss.uses_weights:
            raise ValueError(
                f"method {method.name!r}: its loss ({type(method.loss).__name__}) ignores per-example weights, but "
                f"its weights ({type(method.weights).__name__}) give some; use method/weights=unit with it"
            )
        datamodule.set_train_weights(weight_set.weights)
    # a rule's columns (iw-SFT's start log-probs, loss truncation's window from N) over the examples it judges;
    # a gold row's value is never read (its factor is 1)
    for name, values in method.weights.columns(judged).items():
        datamodule.set_train_column(name, {**dict.fromkeys(gold if gold_weighs_one else [], 0.0), **values})
    return weight_set


def calibration_batch(eval_cfg: dict, datamodule: RelationDataModule) -> dict | None:
    """Contextual calibration's content-free prompt, collated (eval.calibration=content_free), else None."""
    calibration = eval_cfg.get("calibration", "none")
    if calibration not in ("none", "content_free"):
        raise ValueError(f"eval.calibration must be none or content_free, got {calibration!r}")
    if calibration == "none":
        return None
    if eval_cfg["decoder"] != "label_scoring":
        raise ValueError("eval.calibration=content_free needs eval.decoder=label_scoring (it shifts label scores)")
    return datamodule.content_free_batch()


def role_tokenizer(model_cfg: dict, role: str) -> str:
    """The tokenizer a base model role names (`model.<role>.tokenizer`), else the pair's `model.tokenizer`."""
    return (model_cfg.get(role) or {}).get("tokenizer") or model_cfg["tokenizer"]


def small_role_encoding(cfg: dict, datamodule: RelationDataModule) -> RoleEncoding | None:
    """The training examples in the small base's own tokenizer (and chat template), when it is not the large
    base's: W compares each model's probability of the same target text given the same prompt text. An example
    that either encoding drops or truncates is dropped from training for both (counted in data.train)."""
    name = role_tokenizer(cfg["model"], "small")
    if name == role_tokenizer(cfg["model"], "large"):
        return None
    tokenizer = load_tokenizer(name)
    other = build_datamodule(cfg, tokenizer, datamodule.splits)
    other.setup()
    own = {f["id"]: f for f in other.features["train"] if not f["truncated"]}
    keep = [f["id"] for f in datamodule.features["train"] if f["id"] in own and not f["truncated"]]
    datamodule.keep_train(keep, "n_dropped_across_tokenizers")
    features = [own[i] for i in keep]
    label_ids = [target_ids(tokenizer, other.builder, label) for label in other.labels]
    identity = tokenizer_identity(name, cfg["paths"]["cache_dir"])
    return RoleEncoding(features, tokenizer, label_ids, other.collator, identity, other.features.get("trusted", []))


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
        **trusted_settings(cfg),
        **{k: data.get(k) for k in ("max_train_examples", "max_val_examples", "max_test_examples")},
    )


def trusted_settings(cfg: dict) -> dict:
    """build_splits' trusted-seed arguments; {} without a trusted seed (per_class 0), so old jobs keep their keys."""
    trusted = cfg.get("trusted") or {}
    if not trusted.get("per_class"):
        return {}
    return {"trusted_per_class": int(trusted["per_class"]), "trusted_use": trusted.get("use", "union")}


def build_datamodule(cfg: dict, tokenizer, splits=None) -> RelationDataModule:
    """The job's tokenised datamodule; `splits`: examples already read (another role's encoding of them)."""
    trainer_cfg = cfg["trainer"]
    prompt = dict(cfg["prompt"])
    template = prompt.pop("template", None) or DEFAULT_TEMPLATE
    return RelationDataModule(
        splits if splits is not None else build_dataset_splits(cfg),
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


def signals_data_key(cfg: dict) -> dict:
    """Everything the training features depend on: the signals' cache entries are keyed by it."""
    return {
        "dataset": cfg["dataset"],
        "noise": cfg["noise"],
        "noise_kind": noise_identity(cfg["noise_kind"]),
        "seed": cfg["seed"],
        "clean_validation": cfg["clean_validation"],
        "prompt": cfg["prompt"],
        "tokenizer": tokenizer_identity(role_tokenizer(cfg["model"], "large"), cfg["paths"]["cache_dir"]),
        "kind": cfg["model"]["kind"],
        **({"trusted": trusted} if (trusted := trusted_settings(cfg)) else {}),
    }


def build_signals(cfg: dict, datamodule, tokenizer, label_token_ids, method: Method, small=None) -> Signals:
    """The cached signals of the training split; nothing is computed until a slot asks. `small`: the small
    role's own encoding (a RoleEncoding) when its tokenizer is not the large one's."""
    train_cfg, reference = cfg["trainer"], dict(cfg.get("reference") or {})
    # The reference trains with its own params policy when it names one (a stronger or cheaper reference than
    # the method's), else with the method's when that trains, else every parameter.
    params = reference.get("params") or (dict(cfg["method"]["params"]) if method.params.trains else None)
    reference_training = dict(
        train_cfg,
        max_epochs=reference.get("max_epochs") or train_cfg["max_epochs"],
        lr=reference.get("lr") or train_cfg["lr"],
        params=params or "full",
    )

    encoding = small or RoleEncoding(datamodule.features["train"], tokenizer, label_token_ids, datamodule.collator)

    def make_reference_module() -> RelationLM:
        return make_module(
            cfg, cfg["model"]["small"], datamodule, encoding.tokenizer, encoding.label_token_ids, reference_training,
            params, tokenizer_name=role_tokenizer(cfg["model"], "small"),
        )  # fmt: skip

    # the large base trained as this job trains it, with unit weights and the plain NLL (GLC's weak-label model)
    large_params = dict(cfg["method"]["params"]) if method.params.trains else None
    large_training = dict(train_cfg, params=large_params or "full")

    def make_large_module() -> RelationLM:
        return make_module(cfg, cfg["model"]["large"], datamodule, tokenizer, label_token_ids, train_cfg, large_params)

    return Signals(
        datamodule.features["train"],
        kind=cfg["model"]["kind"],
        tokenizer=tokenizer,
        label_token_ids=label_token_ids,
        models={"large": cfg["model"]["large"], "small": cfg["model"]["small"]},
        reference=reference,
        data_key=signals_data_key(cfg),
        cache=ArtifactCache(Path(cfg["paths"]["cache_dir"])),
        collate=datamodule.collator,
        make_reference_module=make_reference_module,
        reference_training=reference_training,
        make_large_module=make_large_module,
        large_training=large_training,
        batch_size=train_cfg.get("eval_batch_size") or 16,
        seed=cfg["seed"],
        device=job_device(train_cfg.get("accelerator", "auto")),
        tokenizer_identity=tokenizer_identity(role_tokenizer(cfg["model"], "large"), cfg["paths"]["cache_dir"]),
        small_encoding=small,
        trusted_features=datamodule.features.get("trusted", []),
    )


def make_module(cfg, model_spec, datamodule, tokenizer, label_token_ids, train_cfg, params=None, method=None,
                tokenizer_name=None, **options) -> RelationLM:  # fmt: skip
    """A RelationLM from plain values; `method` hands it the job's own slot objects (weights, loss, params)."""
    slots = {"weights": method.weights, "loss": method.loss, "params_object": method.params} if method else {}
    return RelationLM(
        model=model_spec,
        kind=cfg["model"]["kind"],
        tokenizer=tokenizer_name or role_tokenizer(cfg["model"], "large"),
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
        compile=bool(train_cfg.get("compile")) and method is not None,
        params=dict(params) if isinstance(params, dict) else None,
        cache_dir=cfg["paths"]["cache_dir"],
        tokenizer_object=tokenizer,
        task=datamodule.splits.task,
        **slots,
        **options,
    )


def build_strategy(strategy_cfg):
    """'auto', or a Lightning strategy (DDP, FSDP, DeepSpeed) from the `strategy` group."""
    if not strategy_cfg:
        return "auto"
    return strategy_cfg if isinstance(strategy_cfg, str) else instantiate(strategy_cfg)


def uses_wandb(cfg: dict) -> bool:
    return (cfg.get("logger") or {}).get("name") == "wandb"


def build_loggers(cfg: dict, run_dir: Path, job_key: str) -> list:
    from lightning.pytorch.loggers import CSVLogger

    loggers = [CSVLogger(save_dir=run_dir, name="csv", version="")]  # Lightning's loggers write on rank zero only
    if uses_wandb(cfg) and is_global_zero():
        from atlantis.experiment.wandb import make_wandb_logger

        wandb_logger = make_wandb_logger(cfg, run_dir, job_key)
        if wandb_logger is not None:
            loggers.append(wandb_logger)
    return loggers


def weight_report(job: Job) -> dict:
    """The fixed weights' diagnostics (AUROC against the corrupted labels, ESS, mass per class), and cleanlab's
    against them when the weights used an out-of-fold reference. Judged on the weakly labelled examples only: a
    trusted seed's gold examples (trusted.use=union) are clean by construction, and a trusted reference saw them."""
    data, weight_set = job.data, job.weight_set
    trusted = data.trusted_ids()
    weak = np.array([f["id"] not in trusted for f in data.features], dtype=bool)
    w = [weight_set.weights[f["id"]] for f, keep in zip(data.features, weak, strict=True) if keep]
    examples = [e for e, keep in zip(data.examples, weak, strict=True) if keep]
    if not examples:  # every example that trains is trusted (trusted.use=only): nothing weak to judge
        return {"n": 0, "auroc_clean_vs_noisy": None, "ess_fraction": None, "mean_weight_clean": None,
                "mean_weight_noisy": None, "n_trusted_excluded": int((~weak).sum()), "cache": data.signals.cache.events}  # fmt: skip
    report = weight_diagnostics(w, [e.label for e in examples], [e.is_noisy for e in examples])
    if trusted:
        report["n_trusted_excluded"] = int((~weak).sum())
    report["cache"] = data.signals.cache.events
    auroc = report["auroc_clean_vs_noisy"]
    log.info("weights: AUROC clean-vs-noisy %s, ESS %.0f/%d", "-" if auroc is None else f"{auroc:.3f}", report["ess"],
             report["n"])  # fmt: skip
    if job.cfg.get("compare_cleanlab") and "reference" in weight_set.scores and data.signals.reference_out_of_fold:
        report["detector"] = detector(data, weight_set, weak)
    return report


def detector(data: TrainingData, weight_set: WeightSet, judged: np.ndarray | None = None) -> dict | None:
    """Confident learning on the out-of-fold reference against the ATLANTIS weights, both judged on the known
    corrupted labels of the `judged` examples (a mask over data.features; all by default); None when no label is
    corrupted."""
    judged = np.ones(len(data.features), dtype=bool) if judged is None else judged
    noisy = np.array([e.is_noisy for e in data.examples], dtype=bool)[judged]
    if not noisy.any():
        return None
    labels = np.array([f["label_index"] for f in data.features])[judged]
    weights = np.array([weight_set.weights[f["id"]] for f in data.features])[judged]
    clean = np.array([data.labels.index(e.clean_label) for e in data.examples])[judged]
    report = detector_report(labels, out_of_fold_probs(data)[judged], noisy, weights=weights, clean_labels=clean)
    log.info(
        "noise detectors, AUROC clean vs corrupted: cleanlab %.3f, ATLANTIS weights %.3f",
        report["cleanlab"]["auroc_clean_vs_noisy"],
        report["atlantis_weights"]["auroc_clean_vs_noisy"],
    )
    return report


# ---- fit and evaluate ----------------------------------------------------------------------------
def fit(job: Job) -> None:
    """Train when the params slot trains (resuming an interrupted run from its last checkpoint)."""
    if not job.method.params.trains:
        return
    start = time.perf_counter()
    job.reports["params"] = job.method.params.prepare(
        job.module,
        job.datamodule.train_dataloader(),
        cache=ArtifactCache(Path(job.cfg["paths"]["cache_dir"])),
        model_key=model_identity(job.cfg["model"]["large"], job.cfg["paths"]["cache_dir"]),
    )
    last = job.state / "checkpoints" / "last.ckpt"
    resume_from = str(last) if job.cfg.get("resume", True) and last.exists() else None  # a file, or DeepSpeed's folder
    if resume_from:
        log.info("resuming interrupted training from %s", resume_from)
    if is_global_zero():
        link_checkpoints(job.run_dir, job.state / "checkpoints")
    job.trainer.fit(job.module, datamodule=job.datamodule, ckpt_path=resume_from, weights_only=True)
    job.seconds["fit"] = time.perf_counter() - start


def evaluate(job: Job) -> None:
    """Test the best validation checkpoint (or the untrained model) on every test example, once."""
    start = time.perf_counter()
    # Every epoch's validation score and step-weighting record: testing the best checkpoint would load that
    # epoch's shorter history.
    job.reports["val_history"] = list(job.module.val_history)
    job.reports["step_weighting"] = list(job.module.step_weight_history)
    best_path = (job.checkpoint.best_model_path or None) if job.method.params.trains else None
    log.info("testing %d examples with %s", len(job.datamodule.features.get("test", ())),
             os.path.basename(best_path) if best_path else "the model as it is")  # fmt: skip
    job.trainer.test(
        job.module,
        datamodule=job.datamodule,
        ckpt_path=best_path,
        weights_only=True,
        verbose=bool(job.cfg.get("verbose")),
    )  # not the test table: write_outputs logs the scores in one line
    job.reports["best_path"] = best_path
    job.seconds["test"] = time.perf_counter() - start


# ---- write ---------------------------------------------------------------------------------------
def write_outputs(job: Job) -> dict:
    """metrics.json and every other output, on global rank zero only; then the job is marked completed."""
    metrics = job_metrics(job)
    if not is_global_zero():
        return metrics
    run_dir, module = job.run_dir, job.module
    examples_by_id = {e.id: e for e in job.datamodule.splits.test}
    records = module.eval_records["test"]
    write_test_outputs(module.task, run_dir, records, examples_by_id, job.datamodule.labels, module.test_report,
                       job.cfg["run_name"])  # fmt: skip
    if job.selection.report is not None:
        atomic_write_json(run_dir / "selection.json", job.selection.report)
    if job.weight_set is not None:
        write_weight_outputs(job)
    if job.cfg.get("save_model") and job.method.params.trains:
        metrics["model_dir"] = save_merged_model(module, job.tokenizer, run_dir / "model").name  # in the run folder
    atomic_write_json(run_dir / "metrics.json", metrics)
    log_outputs_to_wandb(job, metrics)
    mark_completed(job.state, run_dir, metrics)
    prune_checkpoints(job.state, checkpoints_kept(job.cfg.get("keep_checkpoints", "best")))
    log.info("test metrics: %s", json.dumps({k: v for k, v in metrics.items() if k.startswith("test/f1")}))
    return metrics


def job_metrics(job: Job) -> dict:
    """metrics.json: the test scores, validation history, data counts and every report the job made."""
    cfg, report, best_path = job.cfg, job.module.test_report, job.reports["best_path"]
    best_val = job.checkpoint.best_model_score if job.method.params.trains else None
    metrics = {f"test/{k}": report[k] for k in TASK_SCALARS[job.module.task]}
    metrics.update(
        {
            "val/best_f1": float(best_val) if best_val is not None else None,
            "val/history": job.reports["val_history"],
            "test/checkpoint": os.path.basename(best_path) if best_path else None,
            "test/per_class": report["per_class"],
            "data": job.datamodule.stats,
            "noise": {"rate": cfg["noise"], "kind": cfg["noise_kind"]["name"]},
            "run_name": cfg["run_name"],
            "fallback": cfg.get("fallback"),
            "config": job_summary(cfg),
            "settings": job.settings,  # the report's row key: every setting that tells two jobs apart
            # the state's name: a kept run is restored by it on a machine whose paths differ (experiment.restore)
            "job_key": {"key": job.state.name, "version": JOB_KEY_VERSION},
        }
    )
    if trusted := job.datamodule.splits.info.get("trusted"):
        metrics["trusted"] = trusted  # k, use, where it was drawn from and its example ids
    if missing := job.datamodule.splits.info.get("missing_labels"):
        metrics["noise"]["missing_labels"] = missing  # incomplete: missed, turned negative, dropped
    if resampled := job.datamodule.splits.info.get("negative_sampling"):
        metrics["noise"]["negative_sampling"] = resampled  # NA pairs drawn after the noise, missed ones among them
    if job.reports["step_weighting"]:
        metrics["train/step_weighting"] = job.reports["step_weighting"]
    metrics.update(dataset_metrics(job))
    for slot in ("params", "loss"):  # what the slot measured before training (GLC: its corruption estimate)
        if job.reports.get(slot) is not None:
            metrics[slot] = job.reports[slot]
    if job.selection.report is not None:
        metrics["selection"] = {
            k: v for k, v in job.selection.report.items() if k not in ("ids", "gains", "class_share")
        }
    if (weights := job.reports["weights"]) is not None:
        keys = ("auroc_clean_vs_noisy", "ess_fraction", "mean_weight_clean", "mean_weight_noisy")
        metrics["weights"] = {k: weights[k] for k in keys}
        if weights.get("detector"):
            metrics["weights"]["cleanlab_auroc_clean_vs_noisy"] = weights["detector"]["cleanlab"][
                "auroc_clean_vs_noisy"
            ]
        metrics["cache"] = weights["cache"]
    metrics["run"] = {"processes": world_size(), "seconds": {k: round(v, 1) for k, v in job.seconds.items()}}
    return metrics


def dataset_metrics(job: Job) -> dict:
    """The metrics the dataset's reader names beside the task's (DocRED F1 / Ign F1), else none."""
    if job.reader.test_metrics is None:
        return {}
    from pydoc import locate

    metric = locate(job.reader.test_metrics)
    labels, negative = job.datamodule.labels, job.datamodule.splits.negative_label
    return metric(job.reader, job.module.eval_records["test"], labels, negative, job.cfg["seed"])


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
        "reference": (cfg.get("reference") or {}).get("name") if reads_reference(method) else None,
        "weights": {k: v for k, v in method["weights"].items() if k != "_target_"},
        "select": method["select"],
        "params": method["params"],
    }


def write_weight_outputs(job: Job) -> None:
    """weights.json (diagnostics), weights.jsonl (every example's terms and weight), weights.png, cleanlab.json."""
    run_dir, data, weight_set, report = job.run_dir, job.data, job.weight_set, job.reports["weights"]
    trusted = data.trusted_ids()
    w = [weight_set.weights[f["id"]] for f in data.features]
    labels, noisy = [e.label for e in data.examples], [e.is_noisy for e in data.examples]
    atomic_write_json(run_dir / "weights.json", {k: v for k, v in report.items() if k != "detector"})
    plot_weights(run_dir / "weights.png", w, labels, noisy, f"{job.cfg['run_name']} weights")
    rows = [
        {
            "id": e.id,
            "label": e.label,
            "clean_label": e.clean_label,
            "is_noisy": e.is_noisy,
            "trusted": e.id in trusted,  # a gold example of the trusted seed (never corrupted)
            "weight": weight_set.weights[e.id],
            **{f"logp_{k}": float(v[i]) for k, v in weight_set.scores.items()},
        }
        for i, e in enumerate(data.examples)
    ]
    atomic_write_jsonl(run_dir / "weights.jsonl", rows)
    if report.get("detector"):
        atomic_write_json(run_dir / "cleanlab.json", report["detector"])


def log_outputs_to_wandb(job: Job, metrics: dict) -> None:
    """The job's outputs in its W&B run (the same as a restored job logs), and the run's id in the job state."""
    from lightning.pytorch.loggers import WandbLogger

    from atlantis.experiment.wandb import log_job_outputs, record_run

    for logger in job.loggers:
        if isinstance(logger, WandbLogger):
            log_job_outputs(logger.experiment, job.run_dir, metrics)
            record_run(job.state, logger.experiment)


def link_checkpoints(run_dir: Path, checkpoint_dir: Path) -> None:
    """run_dir/checkpoints points at the job's state folder, where reruns find them."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    link = run_dir / "checkpoints"
    if not link.exists():
        link.symlink_to(checkpoint_dir.resolve(), target_is_directory=True)


def save_merged_model(module, tokenizer, out: Path) -> Path:
    """The tested model with its adapters or sparse deltas folded in, as a plain HF directory (atomically)."""
    model = module.params_policy.merge(module.model)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log.info("merged model written to %s", out)
    return out
