import json

import pytest

from atlantis.methods.ablate import ablate, to_markdown


def test_replay_matches_the_options(tmp_path):
    rows = [
        {"label": "A", "is_noisy": False, "logp_large": -1.0, "logp_small": -1.0, "logp_reference": -0.1},
        {"label": "A", "is_noisy": True, "logp_large": -1.0, "logp_small": -1.0, "logp_reference": -3.0},
        {"label": "B", "is_noisy": False, "logp_large": -5.0, "logp_small": -1.0, "logp_reference": -0.2},
        {"label": "B", "is_noisy": True, "logp_large": -5.0, "logp_small": -1.0, "logp_reference": -2.0},
    ]
    (tmp_path / "weights.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = ablate(tmp_path)
    assert len(results) == 12
    plain = next(r for r in results if not r["per_class"] and r["temperature"] == 1 and r["clip"] is None)
    per_class = next(r for r in results if r["per_class"] and r["temperature"] == 1 and r["clip"] is None)
    assert plain["auroc"] == pytest.approx(0.75)  # clean B (-5.2) loses to noisy A (-4.0)
    assert per_class["auroc"] == pytest.approx(1.0)  # within each class the clean example outweighs
    assert per_class["class_mean_min"] == pytest.approx(1.0) == pytest.approx(per_class["class_mean_max"])
    assert plain["class_mean_max"] > 10 * plain["class_mean_min"]
    assert "| True | 1 | - | 1.000 |" in to_markdown(results)
