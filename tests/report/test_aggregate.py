import json

import numpy as np
import pandas as pd
import pytest

from atlantis.report.aggregate import bootstrap_diff, write_report


def fake_run(root, method, noise, seed, score, ess=0.5):
    path = root / f"{method}-{noise}-{seed}"
    path.mkdir(parents=True)
    config = {
        "dataset": "semeval",
        "model": "tiny",
        "noise_kind": "uniform",
        "noise": noise,
        "method": method,
        "reference": "finetune" if method == "atlantis" else None,
        "seed": seed,
    }
    weights = {"auroc_clean_vs_noisy": 0.7, "ess_fraction": ess} if method == "atlantis" else None
    (path / "metrics.json").write_text(json.dumps({"config": config, "test/f1_official": score, "weights": weights}))


def test_report_means_stds_and_paired_differences(tmp_path):
    sft = {0: 0.80, 1: 0.82, 2: 0.78}
    atl = {0: 0.70, 1: 0.75, 2: 0.71}
    for seed in sft:
        fake_run(tmp_path, "sft", 0.2, seed, sft[seed])
        fake_run(tmp_path, "atlantis", 0.2, seed, atl[seed])
    paths = write_report(tmp_path)
    table = pd.read_csv(paths["csv"]).set_index("method")
    assert table.loc["sft", "mean"] == pytest.approx(0.80)
    assert table.loc["sft", "std"] == pytest.approx(np.std([0.80, 0.82, 0.78], ddof=1))
    diff = np.mean([atl[s] - sft[s] for s in sft])
    assert table.loc["atlantis", "minus_sft"] == pytest.approx(diff)
    assert table.loc["atlantis", "ci_lo"] <= diff <= table.loc["atlantis", "ci_hi"]
    assert "| atlantis | - | finetune | 3 |" in paths["markdown"].read_text()
    assert paths["plot"].stat().st_size > 1000


def test_bootstrap_interval_is_seeded_and_contains_the_mean():
    a, b = np.array([0.7, 0.75, 0.71, 0.69]), np.array([0.8, 0.82, 0.78, 0.8])
    first, second = bootstrap_diff(a, b), bootstrap_diff(a, b)
    assert first == second and first[1] <= first[0] <= first[2] < 0


def test_arms_on_other_seeds_than_the_baseline_are_compared_unpaired_and_say_so(tmp_path):
    # a grid still running: SFT has seeds 0 and 1, ATLANTIS seeds 1 and 2 (same count, different seeds)
    for seed, score in ((0, 0.80), (1, 0.60)):
        fake_run(tmp_path, "sft", 0.2, seed, score)
    for seed, score in ((1, 0.70), (2, 0.90)):
        fake_run(tmp_path, "atlantis", 0.2, seed, score)
    fake_run(tmp_path, "sft", 0.5, 0, 0.5)  # and at 0.5 one SFT run against three ATLANTIS runs
    for seed, score in ((0, 0.6), (1, 0.7), (2, 0.8)):
        fake_run(tmp_path, "atlantis", 0.5, seed, score)
    paths = write_report(tmp_path)
    table = pd.read_csv(paths["csv"]).set_index(["method", "noise"])
    row = table.loc[("atlantis", 0.2)]
    # the difference of the means (0.8 - 0.7), each side resampled on its own, never runs of different seeds paired
    assert row["minus_sft"] == pytest.approx(0.1)
    assert row["interval"] == "unpaired seeds" and row["ci_hi"] - row["ci_lo"] > 0.1
    assert np.isnan(table.loc[("atlantis", 0.5), "ci_lo"])  # one SFT run: no spread to resample
    markdown = paths["markdown"].read_text()
    assert "+0.2000 no interval (unpaired: other seeds than sft)" in markdown
    assert "Unpaired rows" in markdown


def test_a_paired_difference_needs_one_baseline_run_per_run():
    with pytest.raises(ValueError, match="one b per a"):
        bootstrap_diff(np.array([0.1, 0.2]), np.array([0.1]))


def test_no_runs_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        write_report(tmp_path)


def test_old_and_new_run_folders_aggregate_together(tmp_path):
    fake_run(tmp_path / "old", "sft", 0.2, 0, 0.8)  # metrics.json as written before the method slots
    new = tmp_path / "new" / "run"
    new.mkdir(parents=True)
    config = {
        "dataset": "semeval",
        "model": "tiny",
        "noise_kind": "uniform",
        "noise": 0.2,
        "method": "atlantis",
        "reference": "finetune",
        "seed": 0,
        "weights": {"terms": ["large", "small", "reference"], "reduction": "sum"},
        "select": {"_target_": "atlantis.methods.select.SelectAll"},
        "params": {"_target_": "atlantis.methods.params.FullParams"},
    }
    (new / "metrics.json").write_text(json.dumps({"config": config, "test/f1_official": 0.7}))
    paths = write_report(tmp_path)
    table = pd.read_csv(paths["csv"])
    assert sorted(table["method"]) == ["atlantis", "sft"]
    assert table.loc[table.method == "atlantis", "minus_sft"].iloc[0] == pytest.approx(-0.1)


def test_jobs_that_differ_in_one_option_are_two_rows(tmp_path):
    for temperature, score in ((1.0, 0.5), (4.0, 0.7)):
        path = tmp_path / f"t{temperature}"
        path.mkdir()
        config = {"dataset": "semeval", "model": "tiny", "noise_kind": "uniform", "noise": 0.2, "method": "atlantis"}
        config.update(reference="finetune", seed=0)
        settings = {"seed": 0, "method": {"name": "atlantis", "weights": {"temperature": temperature}}}
        metrics = {"config": config, "settings": settings, "test/f1_official": score}
        (path / "metrics.json").write_text(json.dumps(metrics))
    sft = tmp_path / "sft"  # its weighting has no temperature: no "temperature=nan" in its row
    sft.mkdir()
    config = dict(config, method="sft", reference=None)
    settings = {"seed": 0, "method": {"name": "sft", "weights": {"_target_": "UnitWeights"}}}
    (sft / "metrics.json").write_text(json.dumps({"config": config, "settings": settings, "test/f1_official": 0.4}))
    table = pd.read_csv(write_report(tmp_path)["csv"], keep_default_na=False)
    assert len(table) == 3 and sorted(table["mean"]) == [0.4, 0.5, 0.7]
    assert sorted(table["variant"]) == ["", "weights.temperature=1.0", "weights.temperature=4.0"]


def test_each_row_is_compared_with_the_baseline_on_its_own_selection(tmp_path):
    # SFT on all, on FisherSFT's and on a random quarter in one folder: ATLANTIS on FisherSFT's quarter is
    # compared with SFT on that quarter, ATLANTIS on all with SFT on all, and a selection SFT did not run with SFT
    # on all; never with the three SFT runs pooled.
    selections = {
        "all": {"_target_": "atlantis.methods.select.SelectAll"},
        "fisher": {"_target_": "atlantis.methods.select.SelectFisher", "budget": 0.25},
        "random": {"_target_": "atlantis.methods.select.SelectRandom", "budget": 0.25},
        "cleanlab": {"_target_": "atlantis.methods.confident.SelectCleanlab"},
    }
    scores = {("sft", "all"): 0.45, ("sft", "fisher"): 0.20, ("sft", "random"): 0.17}
    scores.update({("atlantis", "all"): 0.47, ("atlantis", "fisher"): 0.19, ("atlantis", "cleanlab"): 0.40})
    for (method, selection), score in scores.items():
        path = tmp_path / f"{method}-{selection}"
        path.mkdir()
        config = {"dataset": "semeval", "model": "tiny", "noise_kind": "uniform", "noise": 0.2, "method": method}
        config.update(reference=None, seed=0)
        settings = {"seed": 0, "method": {"name": method, "select": selections[selection]}}
        metrics = {"config": config, "settings": settings, "test/f1_official": score}
        (path / "metrics.json").write_text(json.dumps(metrics))
    table = pd.read_csv(write_report(tmp_path)["csv"])
    diff = {(r.method, r.variant.split("=")[1].split(",")[0]): r.minus_sft for r in table.itertuples()}
    assert diff[("atlantis", "SelectAll")] == pytest.approx(0.47 - 0.45)
    assert diff[("atlantis", "SelectFisher")] == pytest.approx(0.19 - 0.20)
    assert diff[("atlantis", "SelectCleanlab")] == pytest.approx(0.40 - 0.45)
    assert set(table.loc[table.method != "sft", "interval"]) == {"seeds"}  # paired, one run each


def test_cross_validation_folds_are_replicates_paired_by_fold(tmp_path):
    # ADE's 10 folds: one row per method, mean over folds, the difference paired fold by fold.
    scores = {"sft": [0.70, 0.80, 0.60], "atlantis": [0.72, 0.83, 0.61]}
    for method, per_fold in scores.items():
        for fold, score in enumerate(per_fold):
            path = tmp_path / f"{method}-{fold}"
            path.mkdir()
            config = {"dataset": "ade", "model": "tiny", "noise_kind": "uniform", "noise": 0.0, "method": method}
            config.update(reference=None, seed=0)
            settings = {"seed": 0, "dataset": {"name": "ade", "reader": {"fold": fold}}, "method": {"name": method}}
            metrics = {"config": config, "settings": settings, "test/f1_official": score}
            (path / "metrics.json").write_text(json.dumps(metrics))
    table = pd.read_csv(write_report(tmp_path)["csv"]).set_index("method")
    assert len(table) == 2 and table.loc["sft", "n_seeds"] == 3
    assert table.loc["atlantis", "mean"] == pytest.approx(np.mean(scores["atlantis"]))
    diffs = np.subtract(scores["atlantis"], scores["sft"])
    assert table.loc["atlantis", "minus_sft"] == pytest.approx(diffs.mean())
    assert table.loc["atlantis", "ci_lo"] >= diffs.min() - 1e-9  # paired: within the per-fold differences


@pytest.mark.parametrize("seeds", [1, 3])
def test_the_interval_resamples_test_examples_paired_within_each_seed(tmp_path, seeds):
    from atlantis.eval.metrics import classification_report

    rng = np.random.default_rng(0)
    labels = ["A", "B", "Other"]
    index = {label: i for i, label in enumerate(labels)}
    diffs = []
    for seed in range(seeds):
        gold = [labels[i] for i in rng.integers(0, 3, 200)]
        preds = {
            "sft": [g if rng.random() < 0.5 else "Other" for g in gold],
            "atlantis": [g if rng.random() < 0.8 else "Other" for g in gold],
        }
        scores = {}
        for method, predicted in preds.items():
            report = classification_report([index[g] for g in gold], [index[p] for p in predicted], labels, "Other")
            scores[method] = report["f1_official"]
            fake_run(tmp_path, method, 0.5, seed, scores[method])
            rows = [
                {"id": f"x{i}", "gold": g, "predicted": p}
                for i, (g, p) in enumerate(zip(gold, predicted, strict=True))
            ]
            (tmp_path / f"{method}-0.5-{seed}" / "predictions.jsonl").write_text("\n".join(map(json.dumps, rows)))
        diffs.append(scores["atlantis"] - scores["sft"])
    paths = write_report(tmp_path)
    row = pd.read_csv(paths["csv"]).set_index("method").loc["atlantis"]
    assert row["interval"] == "examples × seeds" and row["n_seeds"] == seeds
    assert row["minus_sft"] == pytest.approx(np.mean(diffs))
    assert 0 < row["ci_lo"] < row["minus_sft"] < row["ci_hi"]
    assert "no interval" not in paths["markdown"].read_text()


def test_kept_runs_remake_the_same_tables(tmp_path):
    from atlantis.report.aggregate import keep_runs

    for seed, (a, b) in enumerate([(0.8, 0.7), (0.82, 0.75)]):
        fake_run(tmp_path / "out", "sft", 0.2, seed, a)
        fake_run(tmp_path / "out", "atlantis", 0.2, seed, b)
        (tmp_path / "out" / f"sft-0.2-{seed}" / "last.ckpt").write_text("big")
        (tmp_path / "out" / f"atlantis-0.2-{seed}" / "weights.jsonl").write_text('{"id": "1", "weight": 0.5}\n')
    first = write_report(tmp_path / "out", out=tmp_path / "a")
    assert keep_runs(tmp_path / "out", tmp_path / "kept") == 4
    assert not list((tmp_path / "kept").rglob("*.ckpt"))
    # every example's terms and weight travel with a weighting run: its detector figures can be recomputed
    assert len(list((tmp_path / "kept").rglob("weights.jsonl"))) == 2
    second = write_report(tmp_path / "kept", out=tmp_path / "b")
    for key in ("csv", "markdown", "runs_csv"):
        assert first[key].read_text().replace(str(tmp_path / "out"), "") == second[key].read_text().replace(
            str(tmp_path / "kept"), ""
        )


def test_keeping_runs_never_overwrites_another_job(tmp_path):
    # A one-job rerun is its sweep's job 0, which in the kept folder is another job: it replaces its own earlier run
    # (wherever that is kept) and leaves job 0 alone; a new job whose folder is taken is kept beside it.
    from atlantis.report.aggregate import keep_runs

    def run(root, folder, temperature, score):
        (root / folder).mkdir(parents=True)
        settings = {"seed": 0, "method": {"name": "atlantis", "weights": {"temperature": temperature}}}
        metrics = {"config": {"method": "atlantis", "seed": 0}, "settings": settings, "test/f1_official": score}
        (root / folder / "metrics.json").write_text(json.dumps(metrics))

    kept, rerun = tmp_path / "kept", tmp_path / "rerun"
    run(kept, "grid/0_atlantis", 0.25, 0.20)
    run(kept, "grid/1_atlantis", 0.5, 0.29)
    run(rerun, "grid/0_atlantis", 0.5, 0.31)  # the rerun of kept job 1
    run(rerun, "other/0_atlantis", 2.0, 0.26)
    run(kept, "other/0_atlantis", 4.0, 0.24)
    assert keep_runs(rerun, kept) == 2

    def score(folder):
        return json.loads((kept / folder / "metrics.json").read_text())["test/f1_official"]

    assert (score("grid/0_atlantis"), score("grid/1_atlantis"), score("other/0_atlantis")) == (0.20, 0.31, 0.24)
    (beside,) = (kept / "other").glob("0_atlantis~*")
    assert score(beside.relative_to(kept)) == 0.26 and len(beside.name) == len("0_atlantis~") + 8
    assert len(list(kept.rglob("metrics.json"))) == 4
    assert keep_runs(rerun, kept) == 2 and len(list(kept.rglob("metrics.json"))) == 4  # again: nothing new


def test_a_skipped_rerun_leaves_its_kept_run_as_it_is(tmp_path):
    # A sweep run again after restore skips its finished jobs and writes each one's metrics stamped "skipped": the
    # same result, which must not rewrite the committed run.
    from atlantis.report.aggregate import keep_runs

    metrics = {"config": {"method": "sft", "seed": 1}, "settings": {"seed": 1}, "test/f1_official": 0.47}
    for root, extra in (("kept", {}), ("rerun", {"skipped": {"reason": "completed earlier"}})):
        (tmp_path / root / "0_sft").mkdir(parents=True)
        (tmp_path / root / "0_sft" / "metrics.json").write_text(json.dumps(dict(metrics, **extra)))
    before = (tmp_path / "kept" / "0_sft" / "metrics.json").read_text()
    keep_runs(tmp_path / "rerun", tmp_path / "kept")
    assert (tmp_path / "kept" / "0_sft" / "metrics.json").read_text() == before


def test_a_labellers_natural_rate_is_its_own_row_with_its_measured_share_of_wrong_labels(tmp_path):
    # noise_kind=labeller at its natural rate runs as noise 0.0: never pooled with clean labels, and the table
    # says how many training labels were wrong (measured), not the nominal 0.0.
    for kind, n_noisy, score in (("uniform", 0, 0.8), ("labeller", 300, 0.3)):
        path = tmp_path / kind
        path.mkdir()
        config = {"dataset": "semeval", "model": "tiny", "noise_kind": kind, "noise": 0.0, "method": "sft"}
        config.update(reference=None, seed=0)
        data = {"train": {"n_kept": 400, "n_noisy": n_noisy}}
        metrics = {"config": config, "test/f1_official": score, "data": data}
        (path / "metrics.json").write_text(json.dumps(metrics))
    paths = write_report(tmp_path)
    table = pd.read_csv(paths["csv"]).set_index("noise_kind")
    assert table.loc["labeller", "train_noise"] == pytest.approx(0.75) and table.loc["uniform", "train_noise"] == 0
    assert table.loc["labeller", "mean"] == pytest.approx(0.3)
    assert "| labeller | 0.0 | 0.750 | sft |" in paths["markdown"].read_text()
    assert paths["plot"].stat().st_size > 1000


def test_detector_and_per_class_tables_average_a_settings_seeds(tmp_path):
    for seed, (auroc, top_clean, other_weight) in enumerate(((0.6, 0.3, 2.0), (0.8, 0.5, 1.0))):
        fake_run(tmp_path, "atlantis", 0.5, seed, 0.5)
        run = tmp_path / f"atlantis-0.5-{seed}"
        detector = {
            "n": 10,
            "n_corrupted": 5,
            "reference": {"top_is_clean": top_clean, "top_is_clean_where_corrupted": 0.2, "top_is_given": 0.6},
            "cleanlab": {"auroc_clean_vs_noisy": auroc, "precision_at_m": 0.6, "precision": 0.5},
            "atlantis_weights": {
                "auroc_clean_vs_noisy": auroc,
                "precision_at_m": 0.6,
                "matched_budget": {"precision": 0.4},
            },
        }
        (run / "cleanlab.json").write_text(json.dumps(detector))
        per_class = {
            "Other": {"mean_weight": other_weight, "frequency": 0.5},
            "A": {"mean_weight": 0.5, "frequency": 0.5},
        }
        (run / "weights.json").write_text(json.dumps({"per_class": per_class}))
    paths = write_report(tmp_path)
    detectors = paths["detectors"].read_text()
    assert (
        "| uniform 0.5 · atlantis (finetune) | 2 | 0.500 ± 0.000 | 0.400 ± 0.141 | 0.200 ± 0.000 | 0.700 ± 0.141 |"
        in detectors
    )
    assert "| Other | 1.50 (50 %) |" in paths["weights_per_class"].read_text()
    # the weighting runs leave the folder (moved, or rerun elsewhere): their tables go with them
    for seed in (0, 1):
        for name in ("cleanlab.json", "weights.json"):
            (tmp_path / f"atlantis-0.5-{seed}" / name).unlink()
    assert "detectors" not in write_report(tmp_path) and not paths["detectors"].exists()
    assert not paths["weights_per_class"].exists()


def test_the_same_job_in_two_sweep_folders_counts_once(tmp_path):
    # A piece of a grid run into its own folder, then the whole grid (which skipped that job): one run, not 2 seeds.
    for folder, method, score in (("piece", "sft", 0.4), ("grid", "sft", 0.4), ("grid", "atlantis", 0.5)):
        path = tmp_path / folder / method
        path.mkdir(parents=True)
        config = {"dataset": "semeval", "model": "tiny", "noise_kind": "uniform", "noise": 0.5, "method": method}
        config.update(reference=None, seed=0)
        settings = {"seed": 0, "method": {"name": method}}
        metrics = {"config": config, "settings": settings, "test/f1_official": score}
        (path / "metrics.json").write_text(json.dumps(metrics))
    table = pd.read_csv(write_report(tmp_path)["csv"]).set_index("method")
    assert table.loc["sft", "n_seeds"] == 1 and table.loc["atlantis", "n_seeds"] == 1
    assert table.loc["atlantis", "minus_sft"] == pytest.approx(0.1)


def test_a_setting_one_job_sets_and_another_leaves_null_makes_two_rows(tmp_path):
    # The stronger references: max_epochs 6 vs null (the trainer's), a params policy vs none (the method's).
    references = {
        "default": {"name": "crossfit", "max_epochs": None},
        "epochs": {"name": "crossfit", "max_epochs": 6},
        "full": {"name": "crossfit", "max_epochs": None, "params": {"_target_": "atlantis.methods.params.FullParams"}},
    }
    for (name, reference), score in zip(references.items(), (0.30, 0.29, 0.26), strict=True):
        path = tmp_path / name
        path.mkdir()
        config = {"dataset": "semeval", "model": "tiny", "noise_kind": "uniform", "noise": 0.5, "method": "atlantis"}
        config.update(reference="crossfit", seed=0)
        settings = {"seed": 0, "method": {"name": "atlantis"}, "reference": reference}
        (path / "metrics.json").write_text(
            json.dumps({"config": config, "settings": settings, "test/f1_official": score})
        )
    table = pd.read_csv(write_report(tmp_path)["csv"], keep_default_na=False).set_index("variant")
    assert sorted(table.index) == ["", "reference.max_epochs=6", "reference.params._target_=FullParams"]
    assert table.loc["reference.max_epochs=6", "mean"] == pytest.approx(0.29) and (table["n_seeds"] == 1).all()


def test_options_that_only_differ_between_noise_kinds_stay_out_of_the_variant(tmp_path):
    # The labeller's label file is said by the "labeller" noise kind; it must not be printed on every row.
    kinds = {"uniform": {"name": "uniform"}, "labeller": {"name": "labeller", "weak_file": "/x/weak.jsonl"}}
    for (kind, options), method in ((k, m) for k in kinds.items() for m in ("sft", "atlantis")):
        path = tmp_path / f"{kind}-{method}"
        path.mkdir()
        config = {"dataset": "semeval", "model": "tiny", "noise_kind": kind, "noise": 0.0, "method": method}
        config.update(reference=None, seed=0)
        settings = {"seed": 0, "method": {"name": method}, "noise_kind": options}
        score = {"sft": 0.4, "atlantis": 0.5 if kind == "uniform" else 0.3}[method]
        (path / "metrics.json").write_text(
            json.dumps({"config": config, "settings": settings, "test/f1_official": score})
        )
    table = pd.read_csv(write_report(tmp_path)["csv"], keep_default_na=False)
    assert (table["variant"] == "").all() and len(table) == 4
    atlantis = table[table.method == "atlantis"].set_index("noise_kind")["minus_sft"]
    assert float(atlantis["uniform"]) == pytest.approx(0.1) and float(atlantis["labeller"]) == pytest.approx(-0.1)


@pytest.mark.parametrize("with_predictions", [False, True])
def test_the_table_does_not_depend_on_where_the_runs_were_written(tmp_path, with_predictions):
    """The same runs under folder names that sort the seeds in another order give the same table, to the last
    digit: the interval and every mean (a float sum depends on its order: 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1)."""
    rng = np.random.default_rng(1)
    gold = [["A", "B", "Other"][i] for i in rng.integers(0, 3, 100)]
    runs = []
    for seed in range(3):
        for method, keep in (("sft", 0.4 + 0.1 * seed), ("atlantis", 0.7 - 0.1 * seed)):
            predicted = [g if rng.random() < keep else "Other" for g in gold]
            runs.append((method, seed, sum(p == g for p, g in zip(predicted, gold)) / len(gold), predicted))
    rows = {}
    for layout, folder in (("seed order", lambda seed: f"{seed}"), ("reversed", lambda seed: f"{9 - seed}")):
        for method, seed, score, predicted in runs:
            root = tmp_path / layout / folder(seed)
            fake_run(root, method, 0.5, seed, score, ess=(0.1, 0.2, 0.3)[seed])
            if with_predictions:
                lines = [
                    json.dumps({"id": f"x{i}", "gold": g, "predicted": p})
                    for i, (g, p) in enumerate(zip(gold, predicted))
                ]
                (root / f"{method}-0.5-{seed}" / "predictions.jsonl").write_text("\n".join(lines))
        rows[layout] = pd.read_csv(write_report(tmp_path / layout)["csv"]).set_index("method").loc["atlantis"]
    assert rows["seed order"]["interval"] == ("examples × seeds" if with_predictions else "seeds")
    for column in ("mean", "std", "ess_fraction", "minus_sft", "ci_lo", "ci_hi"):
        assert rows["seed order"][column] == rows["reversed"][column], column


def test_a_report_on_randomly_initialised_models_says_they_are_no_finding():
    import pandas as pd

    from atlantis.report.aggregate import random_model_note

    assert "randomly initialised" in random_model_note(pd.DataFrame({"model": ["tiny", "tiny"]}))
    assert "`tiny←flan_t5`" in random_model_note(pd.DataFrame({"model": ["tiny←flan_t5"]}))  # an offline fallback
    assert random_model_note(pd.DataFrame({"model": ["smollm2"]})) == ""


def test_a_selection_that_reads_the_reference_names_it_and_two_references_are_two_rows(tmp_path):
    # cleanlab on the cross-fitted reference and on the trusted one: runs written before a selection's reference
    # was recorded (config.reference null) still name theirs, from their settings
    cleanlab = {"name": "cleanlab", "select": {"_target_": "atlantis.methods.confident.SelectCleanlab"}}
    for reference, score in (("crossfit", 0.30), ("trusted", 0.35), (None, 0.28)):
        path = tmp_path / str(reference)
        path.mkdir()
        method = (
            cleanlab if reference else {"name": "sft", "select": {"_target_": "atlantis.methods.select.SelectAll"}}
        )
        config = {
            "dataset": "semeval",
            "model": "tiny",
            "noise_kind": "uniform",
            "noise": 0.5,
            "method": method["name"],
        }
        config.update(reference=None, seed=0)
        settings = {"seed": 0, "method": method, "reference": {"name": reference or "crossfit"}}
        (path / "metrics.json").write_text(
            json.dumps({"config": config, "settings": settings, "test/f1_official": score})
        )
    table = pd.read_csv(write_report(tmp_path)["csv"]).set_index(["method", "reference"])
    assert table.loc[("cleanlab", "crossfit"), "mean"] == pytest.approx(0.30)
    assert table.loc[("cleanlab", "trusted"), "mean"] == pytest.approx(0.35)
    assert table.loc[("sft", "-"), "mean"] == pytest.approx(0.28)  # SFT reads no reference, whatever is configured


def test_seeds_run_from_two_checkouts_are_one_setting(tmp_path):
    # seed 0 run in a worktree, seed 1 from a fresh clone: the model paths differ, the setting does not
    for seed, root in ((0, "/work/wt_trusted"), (1, "/check/work/main")):
        for method, score in (("sft", 0.40 + seed / 100), ("atlantis", 0.45 + seed / 100)):
            path = tmp_path / f"{method}-{seed}"
            path.mkdir()
            config = {"dataset": "semeval", "model": "pair", "noise_kind": "uniform", "noise": 0.5, "method": method}
            config.update(reference=None, seed=seed)
            settings = {"seed": seed, "method": {"name": method},
                        "model": {"large": {"name_or_path": f"{root}/models/gemma-3-270m"}}}  # fmt: skip
            metrics = {"config": config, "settings": settings, "test/f1_official": score}
            (path / "metrics.json").write_text(json.dumps(metrics))
    table = pd.read_csv(write_report(tmp_path)["csv"], keep_default_na=False).set_index("method")
    assert table.loc["sft", "n_seeds"] == 2 and table.loc["atlantis", "n_seeds"] == 2
    assert (table["variant"] == "").all()


def test_a_plot_names_the_dataset_and_models_it_shows():
    from atlantis.report.aggregate import setting_title

    summary = pd.DataFrame({"dataset": ["semeval", "semeval"], "model": ["smollm2_gemma3", "tiny"]})
    assert setting_title(summary) == "semeval · smollm2_gemma3, tiny"


def test_a_plot_against_noise_gives_each_model_pair_its_own_panel_and_each_arm_one_colour():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atlantis.report.aggregate import plot_against_noise

    rows = [
        {"dataset": "semeval", "model": model, "noise_kind": "uniform", "noise": noise, "x": noise,
         "method": method, "reference": "-", "variant": "", "mean": 0.5, "std": 0.1}
        for model in ("smollm2_gemma3", "gemma3_smollm2") for method in ("sft", "atlantis") for noise in (0.0, 0.5)
    ]  # fmt: skip
    fig = plot_against_noise(plt, pd.DataFrame(rows), "test/f1_official")
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["semeval · gemma3_smollm2", "semeval · smollm2_gemma3"]
    assert [text.get_text() for text in axes[-1].get_legend().get_texts()] == ["atlantis", "sft"]
    lines = [[c.lines[0].get_color() for c in ax.containers] for ax in axes]
    assert lines[0] == lines[1] and len(set(lines[0])) == 2  # the same arm, the same colour, in both panels
    plt.close(fig)


def test_a_baseline_run_in_two_settings_is_not_pooled_into_one(tmp_path, caplog):
    """SFT full and SFT with LoRA beside ATLANTIS: pooled, the two would pass for seeds of one baseline."""
    runs = [("sft", "full", 0.50), ("sft", "lora", 0.30), ("atlantis", "full", 0.55)]
    for seed in (0, 1):
        for method, params, score in runs:
            path = tmp_path / f"{method}-{params}-{seed}"
            path.mkdir()
            config = {"dataset": "semeval", "model": "tiny", "noise_kind": "uniform", "noise": 0.5, "method": method}
            config.update(reference=None, seed=seed)
            settings = {"seed": seed, "method": {"name": method, "params": {"_target_": params}}}
            metrics = {"config": config, "settings": settings, "test/f1_official": score}
            (path / "metrics.json").write_text(json.dumps(metrics))
    table = pd.read_csv(write_report(tmp_path)["csv"]).set_index("method")
    assert "minus_sft" not in table or np.isnan(table.loc["atlantis", "minus_sft"])
    assert "the baseline sft ran in 2 settings here" in caplog.text


def test_a_row_whose_baseline_differs_outside_the_method_says_so(tmp_path):
    """ATLANTIS at lr 1e-4 against SFT at lr 4e-4: the Δ is not the method's alone."""
    for seed in (0, 1):
        for method, lr, score in (("sft", 4e-4, 0.5), ("atlantis", 1e-4, 0.6)):
            path = tmp_path / f"{method}-{seed}"
            path.mkdir()
            config = {"dataset": "semeval", "model": "tiny", "noise_kind": "uniform", "noise": 0.5, "method": method}
            config.update(reference=None, seed=seed)
            settings = {"seed": seed, "method": {"name": method}, "trainer": {"lr": lr, "max_epochs": 3}}
            metrics = {"config": config, "settings": settings, "test/f1_official": score}
            (path / "metrics.json").write_text(json.dumps(metrics))
    paths = write_report(tmp_path)
    table = pd.read_csv(paths["csv"]).set_index("method")
    assert table.loc["atlantis", "minus_sft"] == pytest.approx(0.1)
    assert table.loc["atlantis", "baseline_differs"] == "trainer.lr=0.0001 (baseline 0.0004)"
    assert (
        "its sft differs outside the method too: trainer.lr=0.0001 (baseline 0.0004)" in paths["markdown"].read_text()
    )


@pytest.mark.parametrize("n_arms", [3, 10, 12, 20])
def test_every_arm_of_a_plot_has_its_own_colour(n_arms):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atlantis.report.aggregate import arm_colours

    colours = arm_colours(plt, [f"arm{i}" for i in range(n_arms)])
    assert len({str(c) for c in colours.values()}) == n_arms
