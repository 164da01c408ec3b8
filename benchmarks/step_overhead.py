"""Framework overhead: the Lightning module's weighted step against a bare PyTorch loop doing the same
work (same model init, batches, AdamW, linear schedule, gradient clipping) on CPU.

    python -m benchmarks.step_overhead [--steps 30] [--shape tiny|smollm2-135m]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from benchmarks.common import (
    RESULTS,
    build_shape,
    datamodule,
    fit_steps,
    merge_results,
    parse_sized,
    tokenizer_and_examples,
)


def bare_loop(model, kind, batches, lr, warmup) -> list[float]:
    from transformers import get_linear_schedule_with_warmup

    from atlantis.models.forward import example_nll
    from atlantis.models.loss import weighted_batch_loss

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, len(batches))
    times = []
    for batch in batches:
        start = time.perf_counter()
        loss = weighted_batch_loss(example_nll(model, kind, batch)[0], batch["weight"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times


def lightning_loop(module, batches) -> list[float]:
    return fit_steps(module, batches)[0].times


def measure(shape: str, steps: int, batch_size: int, trainable_layers: int | None) -> dict:
    from atlantis.data.tokenization import target_ids
    from atlantis.methods.params import freeze_lower_layers
    from atlantis.models.loading import tiny_model
    from atlantis.models.module import RelationLM

    tokenizer, splits, data = tokenizer_and_examples(steps * batch_size)
    dm = datamodule(tokenizer, splits, batch_size=batch_size)
    features = dm.features["train"][: steps * batch_size]
    batches = [dm.collator(features[i : i + batch_size]) for i in range(0, len(features), batch_size)]
    if shape == "tiny":
        sizes = dict(hidden_size=128, intermediate_size=256, num_layers=2, num_heads=4, num_kv_heads=2)
        model = tiny_model("causal", len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, **sizes)
    else:
        model = build_shape(shape)
    model.train()
    if trainable_layers:
        freeze_lower_layers(model, trainable_layers)
    module = RelationLM(
        model={"name_or_path": shape},
        kind="causal",
        tokenizer="builtin",
        labels=dm.labels,
        label_token_ids=[target_ids(tokenizer, dm.builder, label) for label in dm.labels],
        lr=1e-4,
        warmup_ratio=0.1,
        tokenizer_object=tokenizer,
        model_object=model,
    )
    initial = copy.deepcopy(model.state_dict())
    torch.manual_seed(0)
    t_lightning = lightning_loop(module, batches)
    model.load_state_dict(initial)
    torch.manual_seed(0)
    t_bare = bare_loop(model, "causal", batches, lr=1e-4, warmup=int(0.1 * len(batches)))
    skip = min(2, len(batches) // 4)  # warm-up steps
    lightning_s = sum(t_lightning[skip:]) / len(t_lightning[skip:])
    bare_s = sum(t_bare[skip:]) / len(t_bare[skip:])
    return {
        "model": shape,
        "data": data,
        "batch_size": batch_size,
        "steps_timed": len(batches) - skip,
        "trainable_layers": trainable_layers,
        "lightning_step_s": lightning_s,
        "bare_step_s": bare_s,
        "ratio": lightning_s / bare_s,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny-steps", type=int, default=40)
    parser.add_argument("--smollm2-steps", type=int, default=6)
    parser.add_argument("--shape", default="smollm2-135m", help="the real-shape model of the second measurement")
    args = parse_sized(parser, argv, tiny_steps=3, smollm2_steps=2, shape="toy")
    torch.manual_seed(0)
    runs = [
        measure("tiny", args.tiny_steps, 16, None),
        measure(args.shape, args.smollm2_steps, 16, 8),
    ]
    for r in runs:
        print(
            f"step overhead {r['model']}: Lightning {r['lightning_step_s'] * 1000:.1f} ms/step, bare loop "
            f"{r['bare_step_s'] * 1000:.1f} ms/step -> ratio {r['ratio']:.3f}"
        )
    result = {
        "what": "mean time per training step, Lightning module vs bare PyTorch loop",
        "runs": runs,
        "ratio_max": max(r["ratio"] for r in runs),
    }
    merge_results(RESULTS / "cpu.json", "step_overhead_detail", result)
    return result


if __name__ == "__main__":
    main()
