"""Label scoring: encode each prompt once and score the candidates from its KV cache, vs one full pass
of prompt + candidate per candidate (batched over the candidates), for SemEval's 19 directed labels.

    python -m benchmarks.label_scoring_speed [--n 16] [--shape smollm2-135m]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.common import (
    RESULTS,
    build_shape,
    datamodule,
    merge_results,
    parse_sized,
    timed,
    tokenizer_and_examples,
)


@torch.no_grad()
def full_pass_per_candidate(model, features, candidates, pad_id) -> np.ndarray:
    from atlantis.data.datamodule import pad
    from atlantis.models.loss import sequence_nll, shift_for_causal

    out = np.zeros((len(features), len(candidates)))
    for i, f in enumerate(features):
        seqs = [f["prompt_ids"] + c for c in candidates]
        ids = pad(seqs, pad_id)
        mask = pad([[1] * len(s) for s in seqs], 0)
        labels = pad([[-100] * len(f["prompt_ids"]) + c for c in candidates], -100)
        logits, shifted = shift_for_causal(model(input_ids=ids, attention_mask=mask).logits, labels)
        lengths = torch.tensor([len(c) for c in candidates])
        out[i] = (-sequence_nll(logits, shifted) * lengths).numpy()
    return out


def main(argv=None) -> dict:
    from atlantis.data.datamodule import Collator
    from atlantis.data.tokenization import target_ids
    from atlantis.models.decoding import score_candidates_causal

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--shape", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parse_sized(parser, argv, n=4, shape="toy", batch_size=2)
    tokenizer, splits, data = tokenizer_and_examples(args.n, directed=True)
    dm = datamodule(tokenizer, splits)
    features = dm.features["train"]
    candidates = [target_ids(tokenizer, dm.builder, label) for label in dm.labels]
    model = build_shape(args.shape)
    pad_id = tokenizer.pad_token_id
    collate = Collator(pad_id, "causal")

    @torch.no_grad()  # as the framework scores (signals, test): no graph to keep
    def prompt_once():
        rows = []
        for start in range(0, len(features), args.batch_size):
            batch = collate(features[start : start + args.batch_size])
            rows.append(
                score_candidates_causal(model, batch["prompt_ids"], batch["prompt_attention_mask"], candidates, pad_id)
            )
        return torch.cat(rows).numpy()

    t_base, base = timed(lambda: full_pass_per_candidate(model, features, candidates, pad_id))
    t_ours, ours = timed(prompt_once)
    result = {
        "what": f"log-prob of each of {len(candidates)} candidate labels for every example",
        "data": data,
        "model": f"{args.shape} (random weights), float32, CPU",
        "n_examples": len(features),
        "n_labels": len(candidates),
        "baseline_s": t_base,
        "ours_s": t_ours,
        "speedup": t_base / t_ours,
        "max_abs_diff": float(np.abs(base - ours).max()),
    }
    print(
        f"label scoring, {len(features)} examples x {len(candidates)} labels: full pass per candidate {t_base:.1f}s, "
        f"prompt once {t_ours:.1f}s -> {result['speedup']:.1f}x; max |diff| {result['max_abs_diff']:.2e}"
    )
    merge_results(RESULTS / "cpu.json", "label_scoring", result)
    return result


if __name__ == "__main__":
    main()
