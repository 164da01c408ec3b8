"""Padding waste of training batches on the real SemEval prompts: random vs length-grouped batches.

python -m benchmarks.padding_waste [--batch-size 16]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import RESULTS, datamodule, merge_results, parse_sized, tokenizer_and_examples


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--n", type=int, default=7200)
    args = parse_sized(parser, argv, n=64)
    tokenizer, splits, data = tokenizer_and_examples(args.n)
    dm = datamodule(tokenizer, splits, batch_size=args.batch_size)
    out = {"what": "padded tokens / all tokens in training batches", "data": data, "batch_size": args.batch_size}
    for name, grouped in (("random", False), ("length_grouped", True)):
        dm.group_by_length = grouped
        torch.manual_seed(0)
        real = padded = 0
        for batch in dm.train_dataloader():
            real += int(batch["attention_mask"].sum())
            padded += batch["attention_mask"].numel()
        out[name] = 1 - real / padded
    print(
        f"padding waste at batch {args.batch_size} ({data}): random {100 * out['random']:.1f}%, "
        f"length-grouped {100 * out['length_grouped']:.1f}%"
    )
    merge_results(RESULTS / "cpu.json", "padding_waste", out)
    return out


if __name__ == "__main__":
    main()
