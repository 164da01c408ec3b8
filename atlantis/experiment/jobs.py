"""Jobs that survive sweeps: a state folder per job configuration (resume, skip), failure records, and a
summary at the end of a multirun."""

from __future__ import annotations

import json
import logging
import os
import shutil
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from atlantis.signals.cache import file_sha256, folder_beside, result_params
from atlantis.signals.identity import local_paths, run_job_key, settings_key
from atlantis.utils.io import atomic_write_json

log = logging.getLogger(__name__)
# Settings that do not change a job's result, so they do not enter its key. The strategy, devices and nodes
# change how fast a job runs, never its numbers (atlantis.data.sampling: the same global batches on any world).
RUNTIME_KEYS = (
    "hydra", "paths", "logger", "launcher", "run_name", "resume", "offline_model", "model_tiny_sizes",
    "save_model", "compare_cleanlab", "labeller", "keep_checkpoints",  # extra outputs or other commands, same result
    "strategy", "ratio_study", "verbose",
)  # fmt: skip
RUNTIME_TRAINER_KEYS = ("enable_progress_bar", "log_every_n_steps", "eval_batch_size", "devices", "num_nodes")
FAILURE_FILE = "failure.json"


def job_settings(cfg: dict) -> dict:
    """Everything that decides a job's result (the resolved config less what only changes how it runs)."""
    kept = {k: v for k, v in cfg.items() if k not in RUNTIME_KEYS}
    kept["trainer"] = {k: v for k, v in cfg["trainer"].items() if k not in RUNTIME_TRAINER_KEYS}
    if not (kept.get("trusted") or {}).get("per_class"):
        kept.pop("trusted", None)  # no trusted seed: the jobs (and keys) of before it existed
    elif not weighs_gold_examples(kept):
        kept["trusted"] = {k: v for k, v in kept["trusted"].items() if k != "weigh_gold"}  # acts on nothing here
    if "noise_kind" in kept:
        kept["noise_kind"] = noise_identity(kept["noise_kind"])
    if isinstance(kept.get("method", {}).get("params"), dict):
        kept["method"] = dict(kept["method"], params=result_params(kept["method"]["params"]))
    if isinstance((kept.get("reference") or {}).get("params"), dict):
        kept["reference"] = dict(kept["reference"], params=result_params(kept["reference"]["params"]))
    return kept


def weighs_gold_examples(cfg: dict) -> bool:
    """Whether trusted.weigh_gold can act: gold examples train beside the weak ones (use=union) and the method's
    weights slot weighs examples (fixed weights or a per-step factor). Elsewhere it is left out of the key."""
    if (cfg.get("trusted") or {}).get("use", "union") != "union":
        return False
    target = ((cfg.get("method") or {}).get("weights") or {}).get("_target_")
    if not target:
        return False
    from hydra.utils import get_class  # the plugin's module imports torch: only for a trusted job

    from atlantis.methods.base import Weights

    plugin = get_class(target)
    return plugin.example_weights is not Weights.example_weights or plugin.step_weight is not Weights.step_weight


# Noise kinds whose labels changed meaning, with the version they are at: their jobs and signals get new keys.
# incomplete 2: a missed relation of a pair that keeps another is dropped, not turned into "no relation";
# 3: a dataset that samples its negatives (Re-DocRED) draws them after the noise, the missed pairs among them;
# 4: what a subsample's documents lack of that draw comes from the pairs other documents left.
NOISE_KIND_VERSIONS = {"incomplete": 4}


def noise_identity(options: dict) -> dict:
    """Noise options as keys need them: with the content hash of the label files they name (a relabelled file
    is a new job) and the version of the noise kind's meaning where it changed."""
    out = dict(options)
    for key in ("weak_file", "predictions_file"):
        path = options.get(key)
        if isinstance(path, str) and Path(path).is_file():
            out[f"{key}_sha256"] = file_sha256(Path(path))
    if (version := NOISE_KIND_VERSIONS.get(options.get("name"))) is not None:
        out["version"] = version
    return out


def job_key(cfg: dict) -> str:
    """A hash of everything that decides a job's result."""
    return settings_key(job_settings(cfg))


def job_state_dir(cfg: dict, settings: dict | None = None) -> Path:
    """Where a job keeps its checkpoints and, once done, its metrics: shared by every rerun of that job.
    `settings`: the job's job_settings when already computed (they hash the weak-label files)."""
    key = settings_key(settings) if settings is not None else job_key(cfg)
    return Path(cfg["paths"]["output_dir"]) / "state" / key


def completed_metrics(state: Path) -> dict | None:
    path = state / "metrics.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        log.warning("ignoring unreadable %s (the job runs again)", path)
        return None


ARTIFACTS = "artifacts"  # in a job's state: a copy of every output file, so a skipped job's folder is whole


def artifact_source(state: Path) -> Path | None:
    """Where a completed job's output files are: its state's copy, else (older states) its first run folder."""
    if (state / ARTIFACTS).is_dir():
        return state / ARTIFACTS
    source = Path((state / "run_dir.txt").read_text().strip()) if (state / "run_dir.txt").is_file() else None
    return source if source is not None and (source / "metrics.json").is_file() else None


def link_or_copy(source: str, target: str) -> None:
    """A hard link where the file system allows it (a merged 7B model is not copied twice), else a copy."""
    if os.path.lexists(target):
        if os.path.exists(target) and os.path.samefile(source, target):
            return  # a rerun into the job's own folder: its files already are the state's copy
        os.unlink(target)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def copy_outputs(source: Path, target: Path) -> None:
    """Every file and folder a job wrote, but not its log, failure record or links (checkpoints)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        # wandb/: a W&B run belongs to the folder that wrote it (a restored job writes its own, same run id)
        if path.is_symlink() or path.name in (FAILURE_FILE, "run.log", ".hydra", ARTIFACTS, "wandb"):
            continue
        if path.is_file():
            link_or_copy(str(path), str(target / path.name))
        elif path.is_dir():
            shutil.copytree(path, target / path.name, dirs_exist_ok=True, copy_function=link_or_copy)


def reuse_completed(state: Path, run_dir: Path, metrics: dict, wanted: Sequence[str] = ()) -> dict | None:
    """Fill `run_dir` with a completed job's outputs instead of running it again; None when they are gone or
    lack an output this run asks for (`wanted`, e.g. the merged `model`): the job then runs again (resuming
    from its last checkpoint) rather than leave a folder with less than a fresh run."""
    source = artifact_source(state)
    missing = [name for name in wanted if source is not None and not (source / name).exists()]
    if source is None or missing:
        what = f"lack {missing}" if missing else "are gone"
        log.warning("job %s completed earlier but its outputs %s; running it again", state.name, what)
        return None
    if source.resolve() != run_dir.resolve():
        copy_outputs(source, run_dir)
    metrics = dict(metrics, skipped={"reason": "completed earlier", "state": str(state), "from": str(source)})
    atomic_write_json(run_dir / "metrics.json", metrics)
    log.info("skipping: this job completed earlier (%s); set resume=false to run it again", source)
    return metrics


def mark_completed(state: Path, run_dir: Path, metrics: dict) -> None:
    state.mkdir(parents=True, exist_ok=True)  # a job that does not train wrote no checkpoint there
    (state / "run_dir.txt").write_text(str(run_dir.resolve()))
    tmp = state / f".{ARTIFACTS}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    copy_outputs(run_dir, tmp)
    shutil.rmtree(state / ARTIFACTS, ignore_errors=True)
    tmp.rename(state / ARTIFACTS)
    atomic_write_json(state / "metrics.json", metrics)  # last: a job is complete once its metrics are here


def set_aside_other_job(run_dir: Path, settings: dict) -> Path | None:
    """Move another job's outputs out of `run_dir` before this job writes there, to a sibling named by that job's
    key; None when the folder is empty or holds this same job. Two command lines into one sweep folder can give
    two jobs one folder (the same job number and name, e.g. one option apart), and the second would overwrite the
    first's metrics and leave its other files beside its own; the report reads the folders, not the job states."""
    found = completed_metrics(run_dir)
    other = settings_key(found["settings"]) if found and found.get("settings") else None
    if other is None or other == settings_key(settings):
        return None
    target = folder_beside(run_dir, other)
    target.mkdir(exist_ok=True)
    for path in run_dir.iterdir():
        if path.name not in (".hydra", "run.log"):  # Hydra has already written this job's
            if (target / path.name).is_dir():  # that job set aside before: its newer outputs replace the older
                shutil.rmtree(target / path.name)
            os.replace(path, target / path.name)
    log.warning("%s held another job's outputs: moved to %s", run_dir, target)
    return target


CHECKPOINTS_KEPT = {"all": ("best", "last"), "best": ("best",), "none": ()}


def checkpoints_kept(keep: str) -> tuple[str, ...]:
    """Which checkpoints a completed job keeps (`keep_checkpoints`: all / best / none), checked before it runs."""
    if keep not in CHECKPOINTS_KEPT:
        raise ValueError(f"keep_checkpoints must be one of {sorted(CHECKPOINTS_KEPT)}, got {keep!r}")
    return CHECKPOINTS_KEPT[keep]


def prune_checkpoints(state: Path, kept: tuple[str, ...]) -> None:
    """Delete a completed job's checkpoints but the `kept` kinds: a finished job never resumes, and a sweep of
    1.6 GB checkpoints (SmolLM2 with its optimizer state) fills a disk long before its metrics do."""
    for path in (state / "checkpoints").glob("*.ckpt"):
        if ("last" if path.name.startswith("last") else "best") not in kept:
            shutil.rmtree(path) if path.is_dir() else path.unlink()  # DeepSpeed's checkpoints are folders


def record_failure(run_dir: Path, err: BaseException) -> None:
    """failure.json in the job's folder: what failed, where, and the traceback."""
    atomic_write_json(
        Path(run_dir) / FAILURE_FILE,
        {
            "error": f"{type(err).__name__}: {err}",
            "traceback": "".join(traceback.format_exception(err)),
            "time": datetime.now(timezone.utc).isoformat(),
        },
    )


def sweep_status(sweep_dir: Path) -> list[dict]:
    """done / skipped / failed / incomplete for every job folder of a multirun."""
    rows = []
    for job in sorted(p for p in Path(sweep_dir).iterdir() if (p / ".hydra").is_dir()):
        metrics = completed_metrics(job)
        if (job / FAILURE_FILE).is_file():
            failure = json.loads((job / FAILURE_FILE).read_text())
            rows.append({"job": job.name, "status": "failed", "detail": failure["error"].splitlines()[0]})
        elif metrics is None:
            rows.append({"job": job.name, "status": "incomplete", "detail": ""})
        elif metrics.get("skipped"):
            rows.append({"job": job.name, "status": "skipped", "detail": "completed earlier"})
        else:
            rows.append(
                {"job": job.name, "status": "done", "detail": f"test/f1_official {metrics.get('test/f1_official')}"}
            )
    return rows


def sweep_logger(config) -> dict:
    """The multirun's `logger` group, resolved ({} when the config has none)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(config.logger, resolve=True) if "logger" in config else {}


def print_report(sweep_dir: Path) -> dict | None:
    """The sweep's report table (report.md / report.png in the sweep folder), its paths; a report error fails
    nothing (None)."""
    try:
        from atlantis.report.aggregate import write_report

        paths = write_report(sweep_dir)
        print("\n" + paths["markdown"].read_text() + f"\nplot: {paths['plot']}", flush=True)
        return paths
    except Exception as err:  # the jobs' own outputs stand; the report can be rebuilt with `make report`
        log.warning("could not write the sweep report (%s); run `make report DIR=%s`", err, sweep_dir)
        return None


try:
    from hydra.experimental.callback import Callback
except ImportError:  # hydra is only needed at the command line
    Callback = object


class SweepSummary(Callback):
    """At the end of a multirun: a done / failed / skipped table, summary.json, exit 1 if any job failed."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = sweep_status(sweep_dir)
        counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed", "incomplete")}
        atomic_write_json(sweep_dir / "summary.json", {"counts": counts, "jobs": rows})
        lines = [f"multirun summary ({sweep_dir}): " + ", ".join(f"{n} {s}" for s, n in counts.items())]
        lines += [f"  {r['status']:<10} {r['job']}  {r['detail']}" for r in rows]
        print("\n".join(lines), flush=True)
        if counts["done"] + counts["skipped"]:
            paths = print_report(sweep_dir)
            logger_cfg = sweep_logger(config)
            if paths is not None and logger_cfg.get("name") == "wandb":
                from atlantis.experiment.wandb import log_sweep_report

                log_sweep_report(logger_cfg, sweep_dir, paths)
        if counts["failed"] or counts["incomplete"]:
            failed = [r["job"] for r in rows if r["status"] in ("failed", "incomplete")]
            raise SystemExit(f"{len(failed)} job(s) failed: {failed}; see failure.json in each job folder")


def restore_completed(runs: Path, output_dir: Path) -> dict[str, int]:
    """Completed jobs of kept run folders (`atlantis.report --keep-runs`, committed with a study) back into the job
    states under `output_dir`, so that a sweep rerun on a new clone or machine skips them instead of training them
    again. A job is known by the key its run recorded (run_job_key); a run that recorded none and whose settings
    cannot be hashed here (none recorded, or model files not on this machine) is left alone and runs again; so does
    one whose settings this code would key differently (a changed default), as it should."""
    counts = {"restored": 0, "present": 0, "unkeyed": 0, "moved": 0}
    for path in sorted(Path(runs).rglob("metrics.json")):
        try:
            metrics = json.loads(path.read_text())
        except ValueError as err:
            raise ValueError(f"{path}: not a readable metrics.json ({err}); a kept run holds one JSON object") from err
        key = run_job_key(metrics)
        if key is None:
            settings = metrics.get("settings")
            if not isinstance(settings, dict):
                log.warning("%s records no settings: its job cannot be told apart, so it runs again", path)
                counts["unkeyed"] += 1
            else:
                gone = ", ".join(value for value in local_paths(settings) if not os.path.exists(value))
                log.warning("%s: its settings name %s, not on this machine: its job runs again", path, gone)
                counts["moved"] += 1
            continue
        state = Path(output_dir) / "state" / key
        if completed_metrics(state) is not None:
            counts["present"] += 1
            continue
        metrics.pop("skipped", None)  # the run it was kept from may itself have been a skipped rerun
        mark_completed(state, path.parent, metrics)
        counts["restored"] += 1
    return counts
