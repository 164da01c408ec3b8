"""SLURM without a cluster: the submitit presets compose to the launcher and the sbatch script a cluster needs,
and a demo sweep runs through submitit's local executor (one process per job, as on the cluster)."""

import json
import os
import subprocess
import sys
from dataclasses import fields

import pytest
import yaml
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf
from omegaconf import OmegaConf

from tests.conftest import REPO

PLUGIN = "hydra_plugins.hydra_submitit_launcher.submitit_launcher"
SLURM_ONLY = {"partition", "array_parallelism"}  # keys of the slurm preset that the local executor has no field for


def compose_with_hydra(*overrides: str):
    """The whole config run.py would see, hydra node included (the launcher is read from it)."""
    from hydra import compose, initialize_config_dir

    from atlantis.experiment.resolvers import register_resolvers

    register_resolvers()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def preset(name: str) -> dict:
    return yaml.safe_load((REPO / "conf" / "launcher" / f"{name}.yaml").read_text())["hydra"]["launcher"]


def test_slurm_preset_composes_to_the_submitit_slurm_launcher():
    launcher = compose_with_hydra("launcher=slurm").hydra.launcher
    assert launcher._target_ == f"{PLUGIN}.SlurmLauncher"
    assert {key: launcher[key] for key in preset("slurm")} == preset("slurm")
    assert set(launcher) == {f.name for f in fields(SlurmQueueConf)}
    unresolved = OmegaConf.to_container(launcher)["submitit_folder"]
    assert unresolved == "${hydra.sweep.dir}/.submitit/%j"  # logs and pickles beside the jobs


def test_slurm_local_preset_is_the_slurm_preset_less_its_slurm_only_keys():
    launcher = compose_with_hydra("launcher=slurm_local").hydra.launcher
    assert launcher._target_ == f"{PLUGIN}.LocalLauncher"
    local_fields = {f.name for f in fields(LocalQueueConf)}
    assert set(preset("slurm")) - local_fields == SLURM_ONLY
    shared = {key: value for key, value in preset("slurm").items() if key in local_fields}
    assert preset("slurm_local") == shared
    assert {key: launcher[key] for key in shared} == shared


def test_multi_gpu_slurm_job_asks_for_one_task_per_gpu_under_srun(tmp_path, monkeypatch):
    """docs/distributed.md's multi-GPU line: the sbatch script submitit would submit, without sbatch."""
    from hydra.utils import instantiate
    from submitit.slurm.slurm import SlurmExecutor

    cfg = compose_with_hydra(
        "launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=4",
        "hydra.launcher.tasks_per_node=4",
        "trainer.devices=4",
        "strategy=ddp",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    assert cfg.trainer.devices == cfg.hydra.launcher.tasks_per_node == cfg.hydra.launcher.gpus_per_node == 4
    assert cfg.strategy._target_ == "lightning.pytorch.strategies.DDPStrategy"

    class Submitted(Exception):
        pass

    scripts = []

    def submit(executor, command):
        scripts.append(executor._make_submission_file_text(command, "uid"))
        raise Submitted

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # as if srun were installed
    monkeypatch.setattr(SlurmExecutor, "_submit_command", submit)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    with pytest.raises(Submitted):
        launcher.launch([["noise=0.2"], ["noise=0.5"]], initial_job_idx=0)
    (script,) = scripts
    for line in ["--ntasks-per-node=4", "--gpus-per-node=4", "--nodes=1", "--partition=gpu", "--array=0-1%2"]:
        assert f"#SBATCH {line}\n" in script, script
    assert "\nsrun " in script  # Lightning's SLURMEnvironment reads the ranks srun sets (SLURM_PROCID, ...)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["launcher=slurm_local", "hydra/launcher=submitit_local"])  # ours, the plugin's
def test_sweep_runs_through_submitits_local_executor(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    command = [sys.executable, "run.py", "-m", "experiment=demo", launcher, "noise=0.2,0.5", "method=sft"]
    command += [f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}"]
    command += ["dataset.reader.sizes=[24,8,8]", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Submitit 'local' sweep output dir" in result.stdout + result.stderr

    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name.split("_")[0] for p in jobs] == ["0", "1"]
    noises = sorted(json.loads((job / "metrics.json").read_text())["config"]["noise"] for job in jobs)
    assert noises == [0.2, 0.5]
    summary = json.loads((sweep / "summary.json").read_text())
    assert summary["counts"]["done"] == 2 and summary["counts"]["failed"] == 0, summary

    # submitit's own folder: one per job (named by its process id), each with its logs and pickled result
    submitit_jobs = [p for p in (sweep / ".submitit").iterdir() if p.is_dir() and p.name != "%j"]
    assert len(submitit_jobs) == 2
    for folder in submitit_jobs:
        assert (folder / f"{folder.name}_0_result.pkl").is_file()
        assert "Job completed successfully" in (folder / f"{folder.name}_0_log.out").read_text()
