"""W&B for a sweep a researcher reads in the UI: one run per job, grouped by multirun, never failing a job.

- `make_wandb_logger`: the job's run (Lightning's WandbLogger). Its id comes from the job key, so the same job
  is one W&B run however often its sweep reruns; its group is the multirun (`logger.group`), its job type the
  method; its config has flat keys a group-by menu reads (dataset, model, method, weights_*, noise, seed...) and
  the full resolved config under `cfg`.
- `log_job_outputs`: what the job wrote (scores, per-class table, confusion matrix, predictions, weights split
  clean vs corrupted, selection, step weightings), read back from its folder, so a job that trained and a job
  restored from its state log the same things.
- `log_restored_job`: a job skipped because it completed earlier still gets its run.
- `log_sweep_report`: one run per multirun holding the report table and plot.

Offline (no key or network) every run is written under the job's folder for `wandb sync`. Every call here is
wrapped: W&B failing logs a warning and the job goes on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
# A restored job's validation curve is logged once: the job's state records that its run has it.
RUN_RECORD = "wandb_run.json"
PREDICTION_ROWS = 2000  # a predictions table larger than this keeps its first rows (the file has them all)


def never_fails(fn):
    """W&B must never fail or stop a job: an error is a warning, and the job's own files have everything."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001
            log.warning("W&B: %s failed (%s); the job goes on, its files have everything", fn.__name__, err)
            return None

    return wrapper


def run_id(settings_key: str) -> str:
    """The W&B run id of a job: its key, so a rerun of the same sweep resumes the run instead of adding one."""
    return hashlib.sha256(settings_key.encode()).hexdigest()[:24]


def run_mode(logger_cfg: dict) -> str:
    return logger_cfg.get("mode") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")


def make_wandb_logger(cfg: dict, run_dir: Path, job_key: str | None = None):
    """A WandbLogger whose run has started; if an online start fails (no network), an offline one.

    Returns None when W&B cannot start at all: the run goes on with its CSV log.
    """

    def start(mode: str):
        logger = _wandb_logger(cfg, run_dir, mode, job_key)
        logger.experiment  # noqa: B018  (starts the run now, inside the fallback's try)
        return logger

    logger = start_with_fallback(run_mode(cfg["logger"]), start)
    if logger is None:
        log.warning("running without W&B; the CSV log in %s has every metric", run_dir)
    return logger


def start_with_fallback(mode: str, start):
    """`start(mode)`, and if that fails (no network), `start("offline")`; None when W&B cannot start at all."""
    for attempt in dict.fromkeys([mode, "offline"]):
        try:
            return start(attempt)
        except Exception as err:  # W&B must never fail a run
            log.warning("W&B could not start in %s mode (%s)", attempt, err)
            finish_wandb()
    return None


def run_arguments(cfg: dict, run_dir: Path, mode: str, job_key: str | None) -> dict:
    """wandb.init's arguments for a job's run (WandbLogger passes them through)."""
    logger_cfg = cfg["logger"]
    arguments = dict(
        project=logger_cfg["project"],
        entity=logger_cfg.get("entity"),
        group=logger_cfg.get("group"),
        job_type=cfg["method"]["name"],
        name=Path(run_dir).name,
        tags=run_tags(cfg),
        dir=str(run_dir),
        mode=mode,
        config={**flat_config(cfg), "cfg": cfg},
        reinit="finish_previous",
        settings=quiet_settings(),
    )
    if job_key is not None:
        arguments.update(id=run_id(job_key), resume="allow")
    return arguments


def quiet_settings():
    """W&B's own console lines kept to what matters (where an offline run is, how to sync it)."""
    import wandb

    return wandb.Settings(quiet=True)


def _wandb_logger(cfg: dict, run_dir: Path, mode: str, job_key: str | None):
    from lightning.pytorch.loggers import WandbLogger

    class JobWandbLogger(WandbLogger):
        """The module's hyperparameters go under `module`: at top level its `model` (a spec) would replace
        the flat `model` (the pair's name) that W&B's group-by reads."""

        def log_hyperparams(self, params) -> None:
            super().log_hyperparams({"module": dict(params)})

    arguments = run_arguments(cfg, run_dir, mode, job_key)
    return JobWandbLogger(save_dir=arguments.pop("dir"), **arguments)


def run_tags(cfg: dict) -> list[str]:
    from atlantis.experiment.fallback import ran_name

    tags = [
        f"dataset:{ran_name(cfg, 'dataset')}",
        f"model:{ran_name(cfg, 'model')}",
        f"method:{cfg['method']['name']}",
        f"noise:{cfg['noise']}",
        f"seed:{cfg['seed']}",
    ]
    # The slots the method preset is made of, by class name (SelectFisher, ImportanceWeights, TopLayers...).
    tags += [f"{slot}:{name}" for slot, name in slot_classes(cfg["method"]).items()]
    return tags


def slot_classes(method_cfg: dict) -> dict:
    out = {}
    for slot in ("select", "weights", "loss", "params"):
        target = ((method_cfg.get(slot) or {}).get("_target_") or "").rsplit(".", 1)[-1]
        if target:
            out[slot] = target
    return out


def flat_config(cfg: dict) -> dict:
    """Top-level keys W&B's group-by and filter menus read directly: what a report groups by."""
    from atlantis.experiment.fallback import ran_name
    from atlantis.methods.method import reads_reference

    method, model = cfg["method"], cfg["model"]
    flat = {
        "dataset": ran_name(cfg, "dataset"),
        "model": ran_name(cfg, "model"),
        "model_small": spec_name(model.get("small")),
        "model_large": spec_name(model.get("large")),
        "method": method["name"],
        "noise": cfg["noise"],
        "noise_kind": (cfg.get("noise_kind") or {}).get("name"),
        "seed": cfg["seed"],
        # only where the method reads it (as metrics.json and the reports): SFT on "crossfit" would split a group-by
        "reference": (cfg.get("reference") or {}).get("name") if reads_reference(method) else None,
        **{f"{slot}_class": name for slot, name in slot_classes(method).items()},
    }
    for slot in ("weights", "select", "params"):
        for key, value in (method.get(slot) or {}).items():
            if key != "_target_" and not isinstance(value, dict):
                flat[f"{slot}_{key}"] = ",".join(map(str, value)) if isinstance(value, list) else value
    return flat


def spec_name(spec) -> str | None:
    """A base model's name as a config value: its hub id or local path, its last part."""
    if not isinstance(spec, dict):
        return None
    source = spec.get("gguf_file") or spec.get("name_or_path")
    return str(source).rstrip("/").rsplit("/", 1)[-1] if source else None


# ---- what a job logs -------------------------------------------------------------------------------
SUMMARY_PREFIXES = ("test/", "val/best")


@never_fails
def log_job_outputs(run, run_dir: Path, metrics: dict) -> None:
    """Summary scores and the tables, charts and histograms of the files the job wrote in `run_dir`."""
    run_dir = Path(run_dir)
    summary = {k: v for k, v in metrics.items() if k.startswith(SUMMARY_PREFIXES) and is_number(v)}
    noise = metrics.get("noise", {}).get("rate")
    if "test/f1_official" in summary and noise is not None:
        # one key per noise rate: the dashboard's bar panel for a noise rate plots only that rate's runs
        summary[f"by_noise/{noise}/test_f1_official"] = summary["test/f1_official"]
    for key, value in (metrics.get("weights") or {}).items():
        if is_number(value):
            summary[f"weights/{key}"] = value
    if (selection := metrics.get("selection")) is not None:
        summary.update({f"selection/{k}": v for k, v in selection.items() if is_number(v)})
    run.summary.update(summary)
    tables = {
        "test/per_class": per_class_table(metrics.get("test/per_class")),
        "train/step_weighting": rows_table(metrics.get("train/step_weighting")),
        **prediction_charts(run_dir),
        **weight_charts(run_dir),
        **selection_tables(run_dir),
    }
    run.log({k: v for k, v in tables.items() if v is not None}, commit=True)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def rows_table(rows: list[dict] | None):
    """A wandb.Table of a list of flat records (their union of keys, in first-seen order)."""
    import wandb

    if not rows:
        return None
    columns = list(dict.fromkeys(k for row in rows for k in row if not isinstance(row[k], (dict, list))))
    return wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])


def per_class_table(per_class: dict | None):
    if not per_class:
        return None
    return rows_table([{"class": label, **scores} for label, scores in per_class.items()])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def prediction_charts(run_dir: Path) -> dict:
    """The predictions table (id, sentence, gold, predicted, correct) and W&B's confusion-matrix chart."""
    import wandb

    path = run_dir / "predictions.jsonl"
    if not path.is_file():
        return {}
    rows = read_jsonl(path)
    table = wandb.Table(
        columns=["id", "sentence", "gold", "predicted", "correct"],
        data=[[r["id"], r["text"], str(r["gold"]), str(r["predicted"]), r["gold"] == r["predicted"]]
              for r in rows[:PREDICTION_ROWS]],
    )  # fmt: skip
    charts = {"test/predictions": table}
    if (run_dir / "confusion_matrix.png").is_file():
        charts["test/confusion_matrix_image"] = wandb.Image(str(run_dir / "confusion_matrix.png"))
    if rows and isinstance(rows[0]["gold"], str):  # classification: one label per example
        classes = sorted({r["gold"] for r in rows} | {r["predicted"] for r in rows if r["predicted"] is not None})
        invalid = "<invalid>"
        names = classes + ([invalid] if any(r["predicted"] is None for r in rows) else [])
        index = {name: i for i, name in enumerate(names)}
        charts["test/confusion_matrix"] = wandb.plot.confusion_matrix(
            y_true=[index[r["gold"]] for r in rows],
            preds=[index[r["predicted"] if r["predicted"] is not None else invalid] for r in rows],
            class_names=names,
            title="test confusion matrix (rows gold)",
        )
    return charts


def weight_charts(run_dir: Path) -> dict:
    """log10 weights as histograms of the clean and the corrupted examples, and the mass per class."""
    import numpy as np
    import wandb

    path = run_dir / "weights.jsonl"
    if not path.is_file():
        return {}
    rows = read_jsonl(path)
    log_w = {
        flag: np.log10([max(r["weight"], 1e-30) for r in rows if r["is_noisy"] is flag]) for flag in (False, True)
    }
    charts = {f"weights/log10_{name}": wandb.Histogram(log_w[flag])
              for name, flag in (("clean", False), ("corrupted", True)) if len(log_w[flag])}  # fmt: skip
    diagnostics = run_dir / "weights.json"
    if diagnostics.is_file():
        per_class = json.loads(diagnostics.read_text()).get("per_class") or {}
        charts["weights/per_class_mass"] = rows_table([{"class": k, **v} for k, v in per_class.items()])
    if (run_dir / "weights.png").is_file():
        charts["weights/histogram"] = wandb.Image(str(run_dir / "weights.png"))
    return charts


def selection_tables(run_dir: Path) -> dict:
    """FisherSFT's (or any selector's) class shares, selected vs full."""
    path = run_dir / "selection.json"
    if not path.is_file():
        return {}
    shares = json.loads(path.read_text()).get("class_share") or {}
    return {"selection/class_share": rows_table([{"class": k, **v} for k, v in shares.items()])}


def log_history(run, metrics: dict) -> None:
    """The validation curve from metrics.json, against `epoch` (as Lightning logs it during training)."""
    for point in metrics.get("val/history") or []:
        run.log({"epoch": point["epoch"], "val/f1": point["f1"]})


# ---- jobs that did not train here, and the sweep --------------------------------------------------
@never_fails
def log_restored_job(cfg: dict, run_dir: Path, job_key: str, state: Path, metrics: dict) -> None:
    """A job skipped because it completed earlier gets its W&B run (the same id as when it trained)."""
    logger = make_wandb_logger(cfg, run_dir, job_key)
    if logger is None:
        return
    try:
        run = logger.experiment
        record = state / RUN_RECORD
        if not record.is_file() or json.loads(record.read_text()).get("id") != run.id:
            log_history(run, metrics)  # the run never had its curve (it trained without W&B)
        log_job_outputs(run, run_dir, metrics)
        record_run(state, run)
    finally:
        finish_wandb()


@never_fails
def record_run(state: Path, run) -> None:
    """The job's state remembers its W&B run: a restored job then does not log its curve again."""
    from atlantis.utils.io import atomic_write_json

    state.mkdir(parents=True, exist_ok=True)
    atomic_write_json(state / RUN_RECORD, {"id": run.id, "project": run.project, "group": run.group})


@never_fails
def log_sweep_report(logger_cfg: dict, sweep_dir: Path, paths: dict) -> None:
    """One run in the multirun's group holding the report table (report.csv) and its plot."""
    import pandas as pd
    import wandb

    from atlantis.report.wandb import sweep_group_name

    group = logger_cfg.get("group") or sweep_group_name(sweep_dir)
    arguments = dict(project=logger_cfg["project"], entity=logger_cfg.get("entity"), group=group, job_type="report",
                     name=f"report-{group}", id=run_id(f"report:{group}"), resume="allow", dir=str(sweep_dir),
                     config={"sweep_dir": str(sweep_dir)}, reinit="finish_previous",
                     settings=quiet_settings())  # fmt: skip
    run = start_with_fallback(run_mode(logger_cfg), lambda mode: wandb.init(mode=mode, **arguments))
    if run is None:
        return
    try:
        frame = pd.read_csv(paths["csv"])
        run.log({"report/table": wandb.Table(dataframe=frame.astype(object).where(frame.notna(), None))})
        if Path(paths["plot"]).is_file():
            run.log({"report/plot": wandb.Image(str(paths["plot"]))})
    finally:
        run.finish()


def finish_wandb() -> None:
    """End the active W&B run, so the next job of a multirun starts its own."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()
