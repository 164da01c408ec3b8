"""Entry point: `python run.py [overrides]` for one job, `python run.py -m ...` for a sweep."""

from __future__ import annotations

import os
import secrets

import hydra
from omegaconf import DictConfig, OmegaConf

# One id per process, so runs started in the same second never share a folder.
_PROCESS_UID = f"{os.getpid()}{secrets.token_hex(2)}"
OmegaConf.register_new_resolver("uid", lambda: _PROCESS_UID, replace=True)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from atlantis.pipeline import run_job
    from atlantis.utils.wandb import finish_wandb

    try:
        metrics = run_job(cfg, HydraConfig.get().runtime.output_dir)
    finally:
        finish_wandb()
    return metrics.get("test/f1_official")


if __name__ == "__main__":
    main()
