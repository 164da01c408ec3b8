"""W&B logging that never fails a run: offline without a key or network, one run per job."""

from __future__ import annotations

import os
from pathlib import Path


def make_wandb_logger(cfg: dict, run_dir: Path):
    from lightning.pytorch.loggers import WandbLogger

    logger_cfg = cfg["logger"]
    mode = logger_cfg.get("mode") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    tags = [
        f"dataset:{cfg['dataset']['name']}",
        f"model:{cfg['model']['name']}",
        f"method:{cfg['method']['name']}",
        f"noise:{cfg['noise']}",
        f"seed:{cfg['seed']}",
    ]
    return WandbLogger(
        project=logger_cfg.get("project", "atlantis"),
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
