"""`python -m atlantis.experiment.inspect_cli [overrides]`: a few examples token by token with their roles.

Extra overrides: +inspect_split=validation, +inspect_n=4, +per_token=true (one line per token).
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from atlantis.experiment.resolvers import register_resolvers

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
register_resolvers()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    from atlantis.data.inspect_tokens import print_examples
    from atlantis.experiment.config import plain
    from atlantis.experiment.fallback import apply_fallback
    from atlantis.experiment.pipeline import build_datamodule, role_tokenizer
    from atlantis.models.loading import load_tokenizer

    cfg = apply_fallback(plain(cfg))
    tokenizer = load_tokenizer(role_tokenizer(cfg["model"], "large"))  # the trained model's encoding
    datamodule = build_datamodule(cfg, tokenizer)
    print(
        print_examples(
            datamodule,
            split=cfg.get("inspect_split", "train"),
            n=cfg.get("inspect_n", 2),
            per_token=cfg.get("per_token", False),
        )
    )


if __name__ == "__main__":
    main()
