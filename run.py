"""Entry point: `python run.py [overrides]` for one job, `python run.py -m ...` for a sweep."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from atlantis.experiment.resolvers import register_resolvers

register_resolvers()
log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from atlantis.experiment.config import plain
    from atlantis.experiment.console import quiet_libraries
    from atlantis.experiment.jobs import record_failure
    from atlantis.experiment.launch import JobProcessesFailed, check_slurm_tasks, needs_own_launch, run_job_in_child
    from atlantis.experiment.pipeline import run_job
    from atlantis.experiment.wandb import finish_wandb
    from atlantis.utils.distributed import is_global_zero, processes_per_job

    quiet_libraries(verbose=bool(cfg.get("verbose")))
    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    try:
        job_cfg = plain(cfg)
        check_slurm_tasks(job_cfg)  # before anything runs: a SLURM job whose tasks are not its devices
        if hydra_cfg.mode == RunMode.MULTIRUN and needs_own_launch(job_cfg):
            # a sweep job on N processes starts its own ranks (re-running the sweep's command line would run the
            # whole sweep on every rank)
            group = job_cfg["logger"].get("group") if job_cfg["logger"]["name"] == "wandb" else None
            metrics = run_job_in_child(
                hydra_cfg, run_dir, processes_per_job(job_cfg["trainer"]), [f"logger.group={group}"] if group else []
            )
        else:
            metrics = run_job(cfg, run_dir)
    except Exception as err:
        if is_global_zero() and not isinstance(err, JobProcessesFailed):  # the child recorded its own failure
            record_failure(run_dir, err)
        if hydra_cfg.mode != RunMode.MULTIRUN:
            raise
        # In a sweep one failed job must not stop the others; the summary at the end reports it.
        log.exception("job %s failed; the sweep goes on (traceback in %s/failure.json)", hydra_cfg.job.num, run_dir)
        return None
    finally:
        finish_wandb()
    return metrics.get("test/f1_official")


if __name__ == "__main__":
    main()
