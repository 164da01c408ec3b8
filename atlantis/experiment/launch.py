"""A sweep job on several processes: its ranks are launched from the task function, not by re-running the sweep.

Lightning's DDP launcher starts ranks 1..N-1 by re-running the process's command line. Under `python run.py -m`
that line is the whole sweep, so every rank would run every job. Instead, a multirun job that needs N processes
runs its own single-job command (`python run.py <this job's overrides> hydra.run.dir=<its folder>`) as a child;
for that plain run Lightning's launcher is the supported one: it starts the ranks of that one job. When an
external launcher already started every rank (SLURM with one task per device, torchrun), the job runs in place.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from atlantis.utils.distributed import launched_externally, processes_per_job

log = logging.getLogger(__name__)
RUN_PY = Path(__file__).resolve().parents[2] / "run.py"


class JobProcessesFailed(RuntimeError):
    """The child running a sweep job's ranks failed; its own failure.json says why."""


def needs_own_launch(cfg: dict) -> bool:
    """Whether a multirun job must start its ranks itself (N > 1 processes that nobody else starts)."""
    return processes_per_job(cfg["trainer"]) > 1 and not launched_externally()


def check_slurm_tasks(cfg: dict) -> None:
    """Inside a SLURM allocation the ranks are SLURM's tasks: refuse at start a job asking for more processes per
    node than SLURM started (Lightning would stop at `fit` with a mismatch), naming the command that works."""
    tasks = os.environ.get("SLURM_NTASKS_PER_NODE") or os.environ.get("SLURM_NTASKS")
    if (
        not os.environ.get("SLURM_JOB_ID")
        or tasks is None
        or os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive")
    ):
        return
    devices = processes_per_job(dict(cfg["trainer"], num_nodes=1))
    if devices > 1 and int(tasks.split("(")[0]) != devices:
        raise ValueError(
            f"trainer.devices={devices} in a SLURM job of {tasks} task(s) per node: SLURM must start one task per "
            f"device. Use launcher=slurm hydra.launcher.tasks_per_node={devices} hydra.launcher.gpus_per_node="
            f"{devices} trainer.devices={devices} strategy=ddp (docs/distributed.md)"
        )


def single_job_command(hydra_cfg, run_dir: Path) -> list[str]:
    """The plain run of this sweep job: the same config source, its overrides, its folder."""
    command = [sys.executable, str(RUN_PY), "--config-name", hydra_cfg.job.config_name]
    for source in hydra_cfg.runtime.config_sources:
        if source.provider == "command-line" and source.schema == "file":
            command += ["--config-dir", source.path]
    return command + list(hydra_cfg.overrides.task) + [f"hydra.run.dir={run_dir}", "hydra.output_subdir=null"]


def run_job_in_child(hydra_cfg, run_dir: Path, processes: int, overrides: Sequence[str] = ()) -> dict:
    """Run the job's ranks in a child process and return the metrics rank zero wrote; `overrides`: values the
    child, a single run, cannot know (the sweep's W&B group)."""
    command = single_job_command(hydra_cfg, Path(run_dir).resolve()) + list(overrides)
    log.info("job %s: %d processes, launched as one run: %s", hydra_cfg.job.num, processes, " ".join(command))
    env = dict(os.environ, HYDRA_FULL_ERROR="1")
    done = subprocess.run(command, env=env, cwd=RUN_PY.parent, check=False)
    failure = Path(run_dir) / "failure.json"
    if done.returncode != 0:
        why = json.loads(failure.read_text())["error"] if failure.is_file() else "no failure.json"
        raise JobProcessesFailed(f"the job's {processes} processes exited with {done.returncode}: {why}")
    return json.loads((Path(run_dir) / "metrics.json").read_text())
