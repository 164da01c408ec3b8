"""One job on N processes gives one process's numbers: the same global batches, every evaluation example once,
one writer. Two CPU processes (gloo) stand in for a node of GPUs."""

import json
import os
import subprocess
import sys
from collections import Counter
from types import SimpleNamespace

import pytest

from atlantis.eval.metrics import classification_report
from tests.conftest import REPO
from tests.wandb_records import offline_run

# The causal tiny pair has no dropout, so its training is deterministic on any number of processes.
SMALL = ["experiment=demo", "model.kind=causal", "dataset.reader.sizes=[96,40,50]", "trainer.accelerator=cpu"]
SMALL += ["trainer.max_epochs=2", "trainer.enable_progress_bar=false"]
SCORES = ("test/f1_official", "test/f1_macro", "test/f1_micro", "test/accuracy", "val/best_f1")


def run(tmp_path, name: str, *overrides: str, multirun: bool = False) -> subprocess.CompletedProcess:
    paths = [f"paths.output_dir={tmp_path / 'out'}", f"paths.cache_dir={tmp_path / 'cache'}"]
    where = f"hydra.sweep.dir={tmp_path / name}" if multirun else f"hydra.run.dir={tmp_path / name}"
    command = [sys.executable, "run.py", *(["-m"] if multirun else []), *SMALL, *paths, where, *overrides]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("WANDB_API_KEY", None)  # logger=wandb runs offline here
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def metrics(folder) -> dict:
    return json.loads((folder / "metrics.json").read_text())


@pytest.mark.slow
def test_a_two_process_job_scores_every_test_example_once_and_matches_one_process(tmp_path):
    ddp = ["strategy=ddp", "trainer.devices=2", "noise=0.2", "method=atlantis"]
    run(tmp_path, "two", *ddp)
    run(tmp_path, "one", "trainer.devices=1", "noise=0.2", "method=atlantis", "resume=false")
    two, one = metrics(tmp_path / "two"), metrics(tmp_path / "one")
    assert two["run"]["processes"] == 2 and one["run"]["processes"] == 1
    rows = [json.loads(line) for line in (tmp_path / "two" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == len({r["id"] for r in rows}) == two["data"]["test"]["n_kept"] == 50
    labels = sorted(two["test/per_class"])  # macro-F1 and accuracy do not depend on the labels' order
    recomputed = classification_report(
        [labels.index(r["gold"]) for r in rows],
        [labels.index(r["predicted"]) if r["predicted"] is not None else -1 for r in rows],
        labels,
        None,
    )
    assert recomputed["f1_macro"] == pytest.approx(two["test/f1_macro"], abs=1e-12)
    assert recomputed["accuracy"] == pytest.approx(two["test/accuracy"], abs=1e-12)
    # the same checkpoint chosen, the same validation history, the same test scores
    assert two["test/checkpoint"] == one["test/checkpoint"]
    assert [h["f1"] for h in two["val/history"]] == pytest.approx([h["f1"] for h in one["val/history"]], abs=1e-9)
    assert {k: two[k] for k in SCORES} == pytest.approx({k: one[k] for k in SCORES}, abs=1e-9)
    assert two["settings"] == one["settings"]  # the strategy and devices are not part of what a job is
    # one writer: no second copy of any output, no weights file per rank
    outputs = sorted(p.name for p in (tmp_path / "two").iterdir() if not p.name.endswith(".log"))
    assert outputs.count("metrics.json") == 1 and "weights.jsonl" in outputs


@pytest.mark.slow
def test_evaluating_a_model_on_one_and_on_two_processes_gives_identical_metrics(tmp_path):
    zero_shot = ["method=zero_shot", "noise=0.0"]  # no training: only the evaluation is distributed
    run(tmp_path, "two", *zero_shot, "strategy=ddp", "trainer.devices=2")
    run(tmp_path, "one", *zero_shot, "trainer.devices=1", "resume=false")
    two, one = metrics(tmp_path / "two"), metrics(tmp_path / "one")
    keys = [k for k in two if k.startswith("test/") and k != "test/checkpoint"]
    assert {k: two[k] for k in keys} == {k: one[k] for k in keys}
    read = [(tmp_path / d / "predictions.jsonl").read_text() for d in ("two", "one")]
    assert read[0] == read[1]  # the same predictions, in the test split's order


@pytest.mark.slow
def test_a_two_job_ddp_multirun_runs_once(tmp_path):
    result = run(
        tmp_path, "sweep", "strategy=ddp", "trainer.devices=2", "noise=0.2,0.5", "method=small_loss",
        "trainer.max_epochs=1", "trainer.batch_size=8", "logger=wandb", multirun=True,
    )  # fmt: skip
    assert result.stdout.count("Launching 2 jobs locally") + result.stderr.count("Launching 2 jobs locally") == 1
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert summary["counts"]["done"] == 2 and summary["counts"]["failed"] == 0
    for job in (tmp_path / "sweep").glob("[01]_*"):
        m = metrics(job)
        assert m["run"]["processes"] == 2
        history = m["train/step_weighting"]  # counted over both ranks' shares: every training example once
        assert history[0]["examples"] == m["data"]["train"]["n_kept"]
        # the job ran as a single-run child: it still joins the sweep's W&B group (rank zero's one run)
        assert offline_run(job)["group"] == f"{tmp_path.name}_sweep"


# ---- the samplers, without processes ------------------------------------------------------------
def datamodule(batch_size=8, n=37):
    from atlantis.data.datamodule import RelationDataModule
    from atlantis.data.splits import build_splits
    from atlantis.data.synthetic import SyntheticReader
    from atlantis.models.loading import load_tokenizer

    splits = build_splits(SyntheticReader([n, 11, 11]), noise_rate=0.2, seed=3)
    dm = RelationDataModule(splits, load_tokenizer("builtin"), "causal", batch_size=batch_size, eval_batch_size=4)
    dm.setup()
    dm.set_train_weights({f["id"]: 0.5 + i / 10 for i, f in enumerate(dm.features["train"])})
    return dm


def epoch(dm, world: int, rank: int, loader: str = "train_dataloader", seed_epoch: int = 1) -> list[dict]:
    dm.trainer = SimpleNamespace(world_size=world, global_rank=rank)
    loader = getattr(dm, loader)()
    if hasattr(loader.batch_sampler.sampler, "set_epoch"):
        loader.batch_sampler.sampler.set_epoch(seed_epoch)
    return list(loader)


@pytest.mark.parametrize("world", [2, 3])
def test_each_global_batch_is_the_one_process_batch_split_over_the_ranks(world):
    dm = datamodule()
    single = epoch(dm, 1, 0)
    shares = [epoch(dm, world, r) for r in range(world)]
    assert all(len(s) == len(single) for s in shares)  # DDP steps in lockstep
    pairs = Counter()
    for step, batch in enumerate(single):
        joined = [i for s in shares for i, pad in zip(s[step]["ids"], s[step]["padding"].tolist(), strict=True)
                  if not pad]  # fmt: skip
        assert joined == batch["ids"]  # the same examples, in rank order = batch order
        for s in shares:
            assert s[step]["global_batch_size"] == len(batch["ids"])
            pairs.update(
                (i, w) for i, w, pad in zip(s[step]["ids"], s[step]["weight"].tolist(), s[step]["padding"].tolist(),
                                           strict=True) if not pad
            )  # fmt: skip
    single_pairs = Counter((i, w) for b in single for i, w in zip(b["ids"], b["weight"].tolist(), strict=True))
    assert pairs == single_pairs and sum(single_pairs.values()) == 37


def test_a_share_left_empty_gets_one_zero_weight_padding_row():
    from atlantis.data.sampling import share

    assert [k.index for k in share([5, 6, 7], 2, 0)] == [5, 6] and [k.index for k in share([5, 6, 7], 2, 1)] == [7]
    (pad,) = share([9], 2, 1)
    assert pad.padding and pad.global_size == 1
    dm = datamodule()
    batch = dm.collator([dm.train_dataloader().dataset[pad]])
    assert batch["weight"].tolist() == [0.0] and batch["padding"].tolist() == [True]


def test_evaluation_shards_cover_every_example_and_run_as_many_batches():
    from atlantis.data.sampling import EvalShard

    dm = datamodule()
    for split, loader in (("validation", "val_dataloader"), ("test", "test_dataloader")):
        shares = [[i for b in epoch(dm, 3, r, loader) for i in b["ids"]] for r in range(3)]
        assert set().union(*shares) == {f["id"] for f in dm.features[split]}  # the repeats are gathered away by index
        assert len({len(s) for s in shares}) == 1  # every rank as many examples, so as many batches
    assert [list(EvalShard(1, 2, r)) for r in range(2)] == [[0], [0]]  # a split smaller than the world


def test_the_global_loss_is_the_one_process_loss():
    import torch

    from atlantis.models.loss import weighted_batch_loss

    nll, w = torch.rand(7), torch.rand(7)
    whole = weighted_batch_loss(nll, w)
    shares = [(slice(0, 4), 7 / 2), (slice(4, 7), 7 / 2)]  # sizes 4 and 3, denominator global / world
    mean_over_ranks = sum(weighted_batch_loss(nll[s], w[s], d) for s, d in shares) / 2
    torch.testing.assert_close(mean_over_ranks, whole)


def test_a_sweep_job_runs_its_ranks_as_one_plain_run(tmp_path):
    from atlantis.experiment.launch import needs_own_launch, single_job_command

    hydra_cfg = SimpleNamespace(
        job=SimpleNamespace(config_name="study", num=3),
        runtime=SimpleNamespace(
            config_sources=[
                SimpleNamespace(provider="hydra", schema="pkg", path="hydra.conf"),
                SimpleNamespace(provider="command-line", schema="file", path="/repo/sweeps"),
            ]
        ),
        overrides=SimpleNamespace(task=["noise=0.2", "strategy=ddp", "trainer.devices=2"]),
    )
    command = single_job_command(hydra_cfg, tmp_path / "3_job")
    assert "-m" not in command and command[2:] == [
        "--config-name", "study", "--config-dir", "/repo/sweeps", "noise=0.2", "strategy=ddp", "trainer.devices=2",
        f"hydra.run.dir={tmp_path / '3_job'}", "hydra.output_subdir=null",
    ]  # fmt: skip
    assert needs_own_launch({"trainer": {"devices": 2, "accelerator": "cpu"}})
    assert not needs_own_launch({"trainer": {"devices": 1, "accelerator": "cpu"}})


def test_a_slurm_job_with_fewer_tasks_than_devices_is_refused_at_start(monkeypatch):
    from atlantis.experiment.launch import check_slurm_tasks, needs_own_launch

    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_JOB_NAME", "sweep")
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "1")
    with pytest.raises(ValueError, match="hydra.launcher.tasks_per_node=4"):
        check_slurm_tasks({"trainer": {"devices": 4, "accelerator": "cpu"}})  # run.py asks before anything runs
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "4")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert not needs_own_launch({"trainer": {"devices": 4, "accelerator": "cpu"}})  # SLURM started the ranks
