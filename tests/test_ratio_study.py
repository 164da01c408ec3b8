"""The training-free ratio analysis: every weight option from one set of signals (demo pair: code paths only)."""

import json

import numpy as np

from tests.conftest import job_config
from tests.methods.test_compose import TINY


def test_every_weight_option_is_judged_on_the_same_signals(tmp_path):
    from atlantis.experiment.ratio_study import OPTIONS, run

    cfg = job_config(
        *TINY, "model.kind=causal", "reference=crossfit", "reference.folds=2", "noise=0.5",
        f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}", f"ratio_study.out={tmp_path / 'out'}",
    )  # fmt: skip
    out = run(cfg)
    report = json.loads((out / "report.json").read_text())
    rows = [json.loads(line) for line in (out / "weights.jsonl").read_text().splitlines()]
    assert set(report["options"]) == set(OPTIONS) and len(rows) == report["n"] == 24
    assert report["corrupted"] == sum(r["is_noisy"] for r in rows) == 12
    # alpha 1 is the paper's formula, alpha 0 the reference alone: the same weights, number for number
    for a, b in (("alpha_1.0", "paper"), ("alpha_0.0", "reference_only")):
        np.testing.assert_allclose([r[f"w_{a}"] for r in rows], [r[f"w_{b}"] for r in rows], rtol=1e-12)
    # every row can be recomputed: the paper's log-weight is the sum of the signed terms
    log_w = np.array([r["logp_large"] - r["logp_small"] + r["logp_reference"] for r in rows])
    w = np.exp(log_w - log_w.max())
    np.testing.assert_allclose(w / w.mean(), [r["w_paper"] for r in rows], rtol=1e-9)
    assert set(report["top_label_is_clean"]) == {"large", "small", "reference"}
    assert "| per_class_t4 |" in (out / "report.md").read_text()
    assert (out / "report.png").stat().st_size > 1000
