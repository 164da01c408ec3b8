"""Every config composes; every sweep file expands to the jobs it promises."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tests.conftest import REPO

SWEEPS = sorted(p.stem for p in (REPO / "sweeps").glob("*.yaml"))
GROUPS = {
    group: sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))
    for group in ("dataset", "model", "method", "noise_kind", "reference", "logger", "trainer")
}


def compose_job(config_dir, name="config", overrides=()):
    with initialize_config_dir(str(config_dir), version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(("group", "option"), [(g, o) for g, options in GROUPS.items() for o in options])
def test_every_option_composes(group, option):
    overrides = [f"{group}={option}"]
    if group == "noise_kind" and option == "file":
        overrides.append("noise_kind.predictions_file=weak.jsonl")
    cfg = compose_job(REPO / "conf", overrides=overrides)
    OmegaConf.resolve(cfg.model)
    assert cfg.noise == 0.0 and cfg.model.kind in ("seq2seq", "causal")


def test_trainer_preset_follows_the_pair():
    assert compose_job(REPO / "conf", overrides=["model=flan_t5"]).trainer.batch_size == 32
    qwen = compose_job(REPO / "conf", overrides=["model=qwen2_1.5b_7b"]).trainer
    assert (qwen.batch_size, qwen.accumulate_grad_batches, qwen.lr) == (1, 16, 2e-5)


def test_noise_is_a_plain_rate_on_the_command_line():
    cfg = compose_job(REPO / "conf", overrides=["noise=0.2", "noise_kind=llm_like"])
    assert cfg.noise == 0.2 and cfg.noise_kind.name == "llm_like"


def test_atlantis_normalises_per_class_and_atlantis_paper_keeps_the_papers_formula():
    # the default moved on the study's evidence (docs/study_cpu); reproductions need the plain formula
    default = compose_job(REPO / "conf", overrides=["method=atlantis"]).method.weights
    paper = compose_job(REPO / "conf", overrides=["method=atlantis_paper"]).method.weights
    crossfit = compose_job(REPO / "conf", overrides=["method=atlantis_crossfit"]).method.weights
    assert default.per_class and crossfit.per_class and default.temperature == 1.0
    assert (paper.per_class, paper.temperature, paper.clip, paper.reduction) == (False, 1.0, None, "sum")


def test_the_studys_paper_formula_arm_stays_the_papers_formula():
    from tests.conftest import job_config

    # +baseline=atlantis_crossfit is the study's paper-formula arm (shown as `atlantis` in its committed runs)
    assert job_config("experiment=demo", "+baseline=atlantis_crossfit")["method"]["weights"]["per_class"] is False


def test_crossfit_method_sets_its_reference():
    cfg = compose_job(REPO / "conf", overrides=["method=atlantis_crossfit"])
    assert cfg.method.name == "atlantis" and cfg.reference.name == "crossfit"


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_files_compose_and_expand(name):
    # As `python run.py -m --config-dir sweeps --config-name NAME` sees it.
    cfg = compose_job(REPO / "sweeps", name, [f"hydra.searchpath=[file://{REPO / 'conf'}]"])
    params = cfg.hydra.sweeper.params
    overrides = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    n_jobs = 1
    for override in overrides:
        n_jobs *= len(list(override.sweep_iterator())) if override.is_sweep_override() else 1
    assert n_jobs >= 4, f"{name}: a sweep of {n_jobs} jobs"
    if name != "smollm2_cpu_study":
        assert "seed" in params, f"{name} sweeps no seeds"


@pytest.mark.parametrize("baseline", sorted(p.stem for p in (REPO / "conf" / "baseline").glob("*.yaml")))
def test_every_baseline_recipe_composes_to_its_method(baseline):
    from tests.conftest import job_config

    cfg = job_config("experiment=demo", f"+baseline={baseline}")
    # the crossfit recipes keep their method's name: the report's reference column says crossfit
    names = {
        "atlantis_crossfit": "atlantis_paper",  # the paper's formula: named as method=atlantis_paper
        "atlantis_crossfit_tempered": "atlantis_tempered",
        "atlantis_crossfit_per_class": "atlantis_per_class",
        "atlantis_crossfit_tempered4": "atlantis_tempered4",
        "ref_only_crossfit": "ref_only",
        "ratio_only_crossfit": "ratio_only",
        "cleanlab_trusted": "cleanlab",  # reference=trusted
        "atlantis_trusted": "atlantis",
        "ref_only_trusted": "ref_only",
    }
    assert cfg["method"]["name"] == names.get(baseline, baseline)
    frozen = cfg["method"]["params"]["_target_"].endswith("Frozen")
    assert frozen == (baseline in ("zero_shot", "few_shot"))
    assert (cfg["prompt"]["shots"] > 0) == (baseline == "few_shot")


def test_jobs_that_differ_in_their_selection_get_their_own_folder_name():
    # bash sweeps/study_cpu.sh extended runs SFT on all, on FisherSFT's and on a random quarter one line after another
    # into one sweep folder: with one name (and the same job number) the last one's outputs replaced the others'
    names = {
        select: compose_job(REPO / "conf", overrides=["experiment=demo", f"method/select={select}"]).run_name
        for select in ("all", "fisher", "random")
    }
    assert names["all"].endswith("-sft-noise0.0-seed0")
    assert names["fisher"].endswith("-sft-fisher0.25-noise0.0-seed0")
    assert names["random"].endswith("-sft-random0.25-noise0.0-seed0")
    budget = compose_job(REPO / "conf", overrides=["method/select=random", "method.select.budget=100"]).run_name
    assert "-sft-random100-" in budget
    assert "-cleanlab-noise" in compose_job(REPO / "conf", overrides=["method=cleanlab"]).run_name  # said once


def test_every_function_of_the_job_reads_on_one_screen():
    """run_job and every function in atlantis/experiment/ under 60 lines (ruff's C901 bounds their branching)."""
    import ast

    long = []
    for path in sorted((REPO / "atlantis" / "experiment").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long
