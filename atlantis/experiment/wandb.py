"""W&B logging that never fails a run: offline without a key or network, one run per job."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def make_wandb_logger(cfg: dict, run_dir: Path):
    """A WandbLogger whose run has started; if an online start fails (no network), an offline one.

    Returns None when W&B cannot start at all: the run goes on with its CSV log.
    """
    logger_cfg = cfg["logger"]
    mode = logger_cfg.get("mode") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    for attempt in dict.fromkeys([mode, "offline"]):
        try:
            logger = _wandb_logger(cfg, run_dir, attempt)
            logger.experiment  # noqa: B018  (starts the run now, inside the try)
            return logger
        except Exception as err:  # W&B must never fail a run
            log.warning("W&B could not start in %s mode (%s)", attempt, err)
            finish_wandb()
    log.warning("running without W&B; the CSV log in %s has every metric", run_dir)
    return None


def _wandb_logger(cfg: dict, run_dir: Path, mode: str):
    from lightning.pytorch.loggers import WandbLogger

    from atlantis.experiment.fallback import ran_name

    logger_cfg = cfg["logger"]
    tags = [
        f"dataset:{ran_name(cfg, 'dataset')}",
        f"model:{ran_name(cfg, 'model')}",
        f"method:{cfg['method']['name']}",
        f"noise:{cfg['noise']}",
        f"seed:{cfg['seed']}",
    ]
    # The slots the method preset is made of, by class name (SelectFisher, ImportanceWeights, TopLayers...).
    for slot in ("select", "weights", "params"):
        target = ((cfg["method"].get(slot) or {}).get("_target_") or "").rsplit(".", 1)[-1]
        if target:
            tags.append(f"{slot}:{target}")
    return WandbLogger(
        project=logger_cfg["project"],
        entity=logger_cfg.get("entity"),
        group=logger_cfg.get("group"),
        name=cfg["run_name"],
        tags=tags,
        save_dir=str(run_dir),
        mode=mode,
        config=cfg,
        reinit="finish_previous",
    )


def finish_wandb() -> None:
    """End the active W&B run, so the next job of a multirun starts its own."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()
