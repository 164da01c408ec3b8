"""Weight precomputation: batched, length-sorted scoring vs one example at a time with one full forward.

The baseline is what a straightforward re-implementation does: for every example, one forward pass of
prompt + target through the whole model (logits at every position), log-softmax, gather the target
tokens. Ours: `atlantis.signals.scoring.score_features` (length-sorted batches, target-only LM head).
Same model, same examples; the log-probs must agree to 1e-4. One model is timed: ATLANTIS scores
the training set under three, each costing the same.

    python -m benchmarks.scoring_speed [--n 48] [--shape smollm2-135m] [--batch-size 16]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.common import (
    RESULTS,
    build_shape,
    count_params,
    cpu_matmul_gflops,
    datamodule,
    merge_results,
    parse_sized,
    timed,
    tokenizer_and_examples,
)


@torch.no_grad()
def one_at_a_time(model, features) -> np.ndarray:
    out = np.zeros(len(features))
    for i, f in enumerate(features):
        ids = torch.tensor([f["input_ids"]])
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
        labels = torch.tensor(f["labels"])
        positions = torch.nonzero(labels[1:] != -100).squeeze(1)
        out[i] = logp[positions, labels[1:][positions]].sum().item()
    return out


def main(argv=None) -> dict:
    from atlantis.signals.scoring import score_features

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--shape", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parse_sized(parser, argv, n=4, shape="toy", batch_size=2)
    tokenizer, splits, data = tokenizer_and_examples(args.n)
    features = datamodule(tokenizer, splits).features["train"]
    model = build_shape(args.shape)
    model.config.vocab_size = max(model.config.vocab_size, len(tokenizer))
    t_base, base = timed(lambda: one_at_a_time(model, features))
    t_ours, ours = timed(
        lambda: score_features(model, "causal", features, tokenizer.pad_token_id, "sum", batch_size=args.batch_size)
    )
    n_tokens = sum(len(f["input_ids"]) for f in features)
    n_targets = sum(sum(t != -100 for t in f["labels"]) for f in features)
    # The work no implementation can skip: every token through the body, the LM head on the targets.
    flops = 2 * count_params(model) * n_tokens + 2 * model.config.hidden_size * model.config.vocab_size * n_targets
    ceiling = cpu_matmul_gflops()
    result = {
        "what": "score every training example under one model (sum of target log-probs)",
        "data": data,
        "model": f"{args.shape} (random weights), float32, CPU",
        "n_examples": len(features),
        "tokens": n_tokens,
        "batch_size": args.batch_size,
        "baseline_s": t_base,
        "ours_s": t_ours,
        "speedup": t_base / t_ours,
        "max_abs_diff": float(np.abs(base - ours).max()),
        "model_gflop": flops / 1e9,
        "matmul_ceiling_gflops": ceiling,
        "floor_s": flops / 1e9 / ceiling,
        "ours_fraction_of_ceiling": flops / 1e9 / ceiling / t_ours,
        "best_possible_speedup": t_base / (flops / 1e9 / ceiling),
    }
    print(
        f"scoring {len(features)} examples ({n_tokens} tokens) with {args.shape}: one at a time {t_base:.1f}s, "
        f"batched {t_ours:.1f}s -> {result['speedup']:.1f}x; max |diff| {result['max_abs_diff']:.2e}\n"
        f"  floor: {flops / 1e9:.0f} GFLOP at the measured {ceiling:.0f} GFLOP/s matmul rate = {result['floor_s']:.1f}s; "
        f"batched scoring runs at {100 * result['ours_fraction_of_ceiling']:.0f}% of it, so no CPU implementation "
        f"can beat one-at-a-time by more than {result['best_possible_speedup']:.1f}x here"
    )
    merge_results(RESULTS / "cpu.json", "scoring", result)
    return result


if __name__ == "__main__":
    main()
