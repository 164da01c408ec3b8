"""A study's kept runs (in git) make a sweep resumed on a fresh clone skip the jobs they hold."""

import json

import pytest

from atlantis.experiment.jobs import restore_completed
from atlantis.experiment.pipeline import run_job
from atlantis.experiment.restore import main
from atlantis.report.aggregate import keep_runs
from tests.conftest import job_config


def tiny_job(output_dir, *overrides):
    return job_config(
        "dataset=synthetic", "model=tiny", "dataset.reader.sizes=[40,12,12]", "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false", f"paths.output_dir={output_dir}", f"paths.cache_dir={output_dir}/cache",
        *overrides,
    )  # fmt: skip


def test_a_kept_run_restored_on_a_fresh_machine_is_skipped_with_its_results(tmp_path):
    first = run_job(tiny_job(tmp_path / "a"), tmp_path / "a" / "sweep" / "0_job")
    keep_runs(tmp_path / "a" / "sweep", tmp_path / "kept")
    # another clone: nothing of the first machine's outputs, only the kept runs
    assert main([str(tmp_path / "kept"), "--output-dir", str(tmp_path / "b")]) == {
        "restored": 1, "present": 0, "unkeyed": 0, "moved": 0
    }  # fmt: skip
    again = run_job(tiny_job(tmp_path / "b"), tmp_path / "b" / "sweep" / "0_job")
    assert again["skipped"]["reason"] == "completed earlier" and not (tmp_path / "b" / "cache").exists()
    assert again["test/f1_official"] == first["test/f1_official"]
    assert (tmp_path / "b" / "sweep" / "0_job" / "predictions.jsonl").read_text() == (
        tmp_path / "a" / "sweep" / "0_job" / "predictions.jsonl"
    ).read_text()
    # a run kept before keys were recorded: its settings, hashed here, give the same state
    (kept,) = (tmp_path / "kept").rglob("metrics.json")
    kept.write_text(json.dumps({k: v for k, v in json.loads(kept.read_text()).items() if k != "job_key"}))
    assert restore_completed(tmp_path / "kept", tmp_path / "c")["restored"] == 1
    assert {p.name for p in (tmp_path / "c" / "state").iterdir()} == {
        p.name for p in (tmp_path / "b" / "state").iterdir()
    }
    # restored twice: nothing new; another seed is another job, which runs
    assert restore_completed(tmp_path / "kept", tmp_path / "b")["present"] == 1
    other = run_job(tiny_job(tmp_path / "b", "seed=1"), tmp_path / "b" / "sweep" / "1_job")
    assert "skipped" not in other


def test_a_kept_run_without_settings_runs_again_and_a_broken_one_is_named(tmp_path):
    (tmp_path / "kept" / "old").mkdir(parents=True)
    (tmp_path / "kept" / "old" / "metrics.json").write_text(json.dumps({"test/f1_official": 0.5}))
    assert restore_completed(tmp_path / "kept", tmp_path / "out")["unkeyed"] == 1
    (tmp_path / "kept" / "broken").mkdir()
    (tmp_path / "kept" / "broken" / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"broken/metrics.json: not a readable metrics.json"):
        restore_completed(tmp_path / "kept", tmp_path / "out")


def test_a_job_key_holds_what_a_local_model_folder_holds_not_where_it_is(tmp_path):
    import shutil

    from atlantis.experiment.jobs import settings_key

    def key(folder):
        return settings_key({"model": {"name_or_path": str(folder), "tokenizer": "org/hub-name"}, "seed": 0})

    (tmp_path / "a" / "m").mkdir(parents=True)
    (tmp_path / "a" / "m" / "config.json").write_text('{"layers": 2}')
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # another checkout or worktree holding the same files
    assert key(tmp_path / "a" / "m") == key(tmp_path / "b" / "m")
    (tmp_path / "b" / "m" / "config.json").write_text('{"layers": 3}')
    assert key(tmp_path / "a" / "m") != key(tmp_path / "b" / "m")  # other files: another job


def test_a_kept_run_naming_model_files_this_machine_lacks_is_not_restored(tmp_path, caplog):
    (tmp_path / "kept" / "run").mkdir(parents=True)
    settings = {"model": {"name_or_path": str(tmp_path / "elsewhere" / "gemma")}, "seed": 0}
    (tmp_path / "kept" / "run" / "metrics.json").write_text(json.dumps({"settings": settings}))
    assert restore_completed(tmp_path / "kept", tmp_path / "out")["moved"] == 1
    assert "elsewhere/gemma, not on this machine" in caplog.text and not (tmp_path / "out" / "state").exists()


def test_a_kept_run_with_its_recorded_key_is_restored_though_its_paths_are_gone(tmp_path):
    from atlantis.signals.identity import JOB_KEY_VERSION

    (tmp_path / "kept" / "run").mkdir(parents=True)
    metrics = {"settings": {"model": {"name_or_path": "/elsewhere/gemma"}}, "job_key": {"key": "abc123",
               "version": JOB_KEY_VERSION}}  # fmt: skip
    (tmp_path / "kept" / "run" / "metrics.json").write_text(json.dumps(metrics))
    assert restore_completed(tmp_path / "kept", tmp_path / "out")["restored"] == 1
    assert (tmp_path / "out" / "state" / "abc123" / "metrics.json").is_file()


def test_keeping_a_run_written_before_keys_were_recorded_adds_its_key(tmp_path):
    from atlantis.signals.identity import JOB_KEY_VERSION, settings_key

    settings = {"seed": 0, "method": {"name": "sft"}}
    (tmp_path / "sweep" / "0_job").mkdir(parents=True)
    (tmp_path / "sweep" / "0_job" / "metrics.json").write_text(json.dumps({"settings": settings}))
    keep_runs(tmp_path / "sweep", tmp_path / "kept")
    kept = json.loads((tmp_path / "kept" / "0_job" / "metrics.json").read_text())
    assert kept["job_key"] == {"key": settings_key(settings), "version": JOB_KEY_VERSION}
