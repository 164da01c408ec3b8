"""GPU throughput and model-FLOPs utilisation of training and scoring at real Qwen2 shapes (random
weights, bf16), and what full fine-tuning of the 7B shape takes on one 80 GB GPU.

    python -m benchmarks.gpu_throughput [--out benchmarks/results/gpu.json] [--smoke]

Model FLOPs per token: 6·N (training) or 2·N (scoring) with N the non-embedding parameters, plus the
LM head on the target positions only (2·d·V per projected position forward) and causal attention
(6·L·d·T training, 2·L·d·T forward, averaged over positions). The LM head over prompt positions is
not counted: the task does not need it (see `atlantis.models.forward`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time

import torch

from benchmarks.common import build_shape, count_params, fit_steps, machine, parse_sized


def matmul_ceiling(device) -> float:
    """Measured bf16 dense matmul rate (TFLOP/s) on this GPU: the MFU denominator."""
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(20):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n**3 * 20 / (start.elapsed_time(end) / 1000) / 1e12


def make_batch(vocab: int, batch: int, length: int, n_targets: int, device) -> dict:
    g = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(0, vocab, (batch, length), generator=g)
    labels = ids.clone()
    labels[:, : length - n_targets] = -100
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "labels": labels.to(device),
        "weight": torch.rand(batch, generator=g).to(device) + 0.5,
    }


def flops_per_step(model, batch: dict, training: bool) -> float:
    cfg = model.config
    b, t = batch["input_ids"].shape
    n_targets = int((batch["labels"][:, 1:] != -100).sum())
    mult = 6 if training else 2
    body = mult * count_params(model, non_embedding=True) * b * t
    if cfg.tie_word_embeddings:  # the tied LM head was excluded with the embedding: add its target share
        body += mult * cfg.hidden_size * cfg.vocab_size * n_targets
    else:  # untied: its parameters sit inside N; replace the all-position count by the target share
        body -= mult * cfg.hidden_size * cfg.vocab_size * (b * t - n_targets)
    attention = mult * cfg.num_hidden_layers * cfg.hidden_size * t * b * t  # causal: half of 2·T per token
    return float(body + attention)


def time_steps(step, n_warmup: int, n_steps: int) -> float:
    for _ in range(n_warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n_steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / n_steps


def train_variants(
    shape: str,
    batch_size: int,
    length: int,
    n_targets: int,
    peak: float,
    steps: int,
    variants=("bare_full", "bare_target", "lightning"),
    compile_model: bool = False,
) -> list[dict]:
    from atlantis.models.forward import example_nll
    from atlantis.models.loss import sequence_nll, shift_for_causal, weighted_batch_loss

    device = torch.device("cuda")
    model = build_shape(shape, dtype=torch.float32, device=device).train()
    batch = make_batch(model.config.vocab_size, batch_size, length, n_targets, device)
    flops = flops_per_step(model, batch, training=True)
    if compile_model:
        model.base_model.compile()  # in place: fuses the norms, activations and rotary embeddings
    suffix = " + compile" if compile_model else ""
    results = []

    def bare(full_logits: bool):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)  # as RelationLM's (foreach on GPU)
        forward = model

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                if full_logits:
                    logits = forward(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                    nll = sequence_nll(*shift_for_causal(logits, batch["labels"]))
                else:
                    nll = example_nll(forward, "causal", batch)[0]
                loss = weighted_batch_loss(nll, batch["weight"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    bare_variants = {
        "bare_full": ("bare loop, full logits", True),
        "bare_target": ("bare loop, target-only LM head", False),
    }
    for name, full_logits in (bare_variants[v] for v in variants if v in bare_variants):
        step = bare(full_logits)
        name += suffix
        torch.cuda.reset_peak_memory_stats()
        seconds = time_steps(step, 3, steps)
        results.append(dict(variant=name, step_s=seconds, mem_gb=torch.cuda.max_memory_allocated() / 2**30))
        step = None  # drop this optimizer's states before the next variant
        gc.collect()
        torch.cuda.empty_cache()

    if "lightning" in variants:
        results.append(lightning_step(model, batch, batch_size, steps, suffix))
    tokens = batch_size * length
    for r in results:
        r.update(
            shape=shape,
            batch=f"{batch_size}x{length}",
            tokens_per_s=tokens / r["step_s"],
            tflops=flops / r["step_s"] / 1e12,
            mfu=flops / r["step_s"] / 1e12 / peak,
        )
    return results


def lightning_step(model, batch: dict, batch_size: int, steps: int, suffix: str) -> dict:
    """The framework: RelationLM under Lightning's Trainer with bf16-mixed, on the same batch."""
    from atlantis.models.module import RelationLM

    module = RelationLM(
        model={"name_or_path": "benchmark"},
        kind="causal",
        tokenizer="builtin",
        labels=["a"],
        label_token_ids=[[0]],
        lr=1e-5,
        warmup_ratio=0.0,
        model_object=model,
        tokenizer_object=_FakeTokenizer(),
    )
    cpu_batch = {k: v.cpu() for k, v in batch.items()}
    cpu_batch["ids"] = [str(i) for i in range(batch_size)]
    torch.cuda.reset_peak_memory_stats()
    timer, _ = fit_steps(module, [cpu_batch] * (3 + steps), skip=3, accelerator="gpu", precision="bf16-mixed")
    return dict(
        variant="Lightning RelationLM (bf16-mixed)" + suffix,
        step_s=timer.mean(),
        mem_gb=torch.cuda.max_memory_allocated() / 2**30,
    )


class _FakeTokenizer:
    """Enough of a tokenizer for RelationLM when only training is timed."""

    pad_token_id = 0
    eos_token_id = 1

    def __len__(self):
        return 2


def scoring(shape: str, batch_size: int, length: int, n_targets: int, peak: float, steps: int) -> dict:
    from atlantis.models.forward import example_nll

    device = torch.device("cuda")
    model = build_shape(shape, dtype=torch.bfloat16, device=device).eval()
    batch = make_batch(model.config.vocab_size, batch_size, length, n_targets, device)
    flops = flops_per_step(model, batch, training=False)

    @torch.inference_mode()
    def step():
        example_nll(model, "causal", batch)

    torch.cuda.reset_peak_memory_stats()
    seconds = time_steps(step, 3, steps)
    out = dict(
        shape=shape,
        variant="scoring (bf16, target-only LM head)",
        batch=f"{batch_size}x{length}",
        step_s=seconds,
        tokens_per_s=batch_size * length / seconds,
        tflops=flops / seconds / 1e12,
        mfu=flops / seconds / 1e12 / peak,
        mem_gb=torch.cuda.max_memory_allocated() / 2**30,
    )
    return out


def scoring_speedup_gpu(shape: str, n: int = 256) -> dict:
    """Weight precomputation on GPU: one example at a time (full logits) vs batched, length-sorted scoring."""
    import numpy as np

    from atlantis.models.loss import sequence_nll, shift_for_causal
    from atlantis.signals.scoring import score_features

    device = torch.device("cuda")
    model = build_shape(shape, dtype=torch.bfloat16, device=device).eval()
    g = torch.Generator().manual_seed(0)
    features = []
    for i in range(n):  # prompts of 80-140 tokens and 5-10 target tokens, like SemEval's
        p_len, t_len = int(torch.randint(80, 141, (1,), generator=g)), int(torch.randint(5, 11, (1,), generator=g))
        ids = torch.randint(0, model.config.vocab_size, (p_len + t_len,), generator=g).tolist()
        labels = [-100] * p_len + ids[p_len:]
        features.append(
            {"id": str(i), "index": i, "input_ids": ids, "labels": labels, "prompt_ids": ids[:p_len], "label_index": 0}
        )

    @torch.inference_mode()
    def one_at_a_time():
        out = []
        for f in features:
            logits = model(input_ids=torch.tensor([f["input_ids"]], device=device)).logits
            nll = sequence_nll(*shift_for_causal(logits, torch.tensor([f["labels"]], device=device)))
            out.append(float(-nll[0]) * sum(t != -100 for t in f["labels"]))
        return np.array(out)

    def batched():
        return score_features(model, "causal", features, 0, "sum", batch_size=64, desc="gpu scoring")

    one_at_a_time(), batched()  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    base = one_at_a_time()
    torch.cuda.synchronize()
    t1 = time.perf_counter()
    ours = batched()
    torch.cuda.synchronize()
    t2 = time.perf_counter()
    return dict(
        shape=shape,
        variant="scoring speedup: batched vs one at a time (bf16)",
        n_examples=n,
        baseline_s=t1 - t0,
        ours_s=t2 - t1,
        speedup=(t1 - t0) / (t2 - t1),
        max_abs_diff_bf16=float(np.abs(base - ours).max()),
    )


def seven_b_full_finetune(length: int, steps: int) -> dict:
    """Full fine-tuning of the 7B shape on one GPU: bf16 weights and AdamW states, gradient checkpointing."""
    device = torch.device("cuda")
    from atlantis.models.forward import example_nll
    from atlantis.models.loss import weighted_batch_loss

    torch.cuda.reset_peak_memory_stats()
    model = build_shape("qwen2-7b", dtype=torch.bfloat16, device=device).train()
    model.gradient_checkpointing_enable()
    model.config.use_cache = False
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)  # states in bf16, like the weights
    batch = make_batch(model.config.vocab_size, 1, length, 10, device)
    flops = flops_per_step(model, batch, training=True) * 4 / 3  # recomputation of the forward

    def step():
        loss = weighted_batch_loss(example_nll(model, "causal", batch)[0], batch["weight"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    try:
        seconds = time_steps(step, 2, steps)
        return dict(
            shape="qwen2-7b",
            variant="pure bf16 AdamW + gradient checkpointing",
            batch=f"1x{length}",
            step_s=seconds,
            tokens_per_s=length / seconds,
            tflops=flops / seconds / 1e12,
            mem_gb=torch.cuda.max_memory_allocated() / 2**30,
            fits=True,
        )
    except torch.OutOfMemoryError as err:
        return dict(
            shape="qwen2-7b",
            variant="pure bf16 AdamW + gradient checkpointing",
            fits=False,
            error=str(err).splitlines()[0],
            mem_gb=torch.cuda.max_memory_allocated() / 2**30,
        )


def seven_b_peft(policy: str, length: int, steps: int) -> dict:
    """The 7B shape with a params policy (sparse 1 % or LoRA r=8): bf16 frozen weights, AdamW states for
    the trained entries only (in bf16, like the weights), gradient checkpointing; the same batch as `seven_b_full_finetune`."""
    from types import SimpleNamespace

    from atlantis.methods.params import LoRA, Sparse
    from atlantis.models.forward import example_nll
    from atlantis.models.loss import weighted_batch_loss

    device = torch.device("cuda")
    torch.cuda.reset_peak_memory_stats()
    model = build_shape("qwen2-7b", dtype=torch.bfloat16, device=device).train()
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()  # checkpointed blocks with frozen inputs still need their backward
    model.config.use_cache = False
    batch = make_batch(model.config.vocab_size, 1, length, 10, device)
    if policy == "sparse":
        chooser = Sparse(density=0.01, score_batches=1)  # the real salience pass: one gradient of the batch
        model = chooser.apply(model)
        chooser.prepare(SimpleNamespace(model=model, kind="causal"), [batch])
    else:
        model = LoRA(r=8, alpha=16, dropout=0.0).apply(model)
    setup_gb = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-4, fused=True)

    def step():
        loss = weighted_batch_loss(example_nll(model, "causal", batch)[0], batch["weight"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = time_steps(step, 2, steps)
    return dict(
        shape="qwen2-7b",
        variant=f"{policy} (sparse 1 % / LoRA r=8), bf16 + gradient checkpointing",
        batch=f"1x{length}",
        step_s=seconds,
        tokens_per_s=length / seconds,
        tflops=float("nan"),
        mem_gb=torch.cuda.max_memory_allocated() / 2**30,
        setup_mem_gb=setup_gb,
        trainable=sum(p.numel() for p in trained),
    )


def release(rows: list[dict]) -> None:
    """Free the last part's GPU memory before the next, and show its numbers as they come."""
    gc.collect()
    torch.cuda.empty_cache()
    print(json.dumps(rows[-1]), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "benchmarks/results"), "gpu.json"))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--only", nargs="*", default=None, help="parts: train score 7b 7b-peft tune")
    args = parse_sized(parser, argv, steps=2, length=16)
    if not torch.cuda.is_available():
        raise SystemExit("no GPU here: this benchmark needs CUDA")
    torch.backends.cuda.matmul.allow_tf32 = True
    device = torch.device("cuda")
    peak = matmul_ceiling(device)
    print(f"{torch.cuda.get_device_name(0)}: measured bf16 matmul ceiling {peak:.0f} TFLOP/s", flush=True)
    parts = set(args.only or ["train", "score", "7b", "speedup"])
    rows = []
    for shape, batch_size in (("qwen2-0.5b", 32), ("qwen2-1.5b", 32)):
        if "train" in parts:
            rows += train_variants(shape, batch_size, args.length, 10, peak, args.steps)
            release(rows)
        if "score" in parts:
            rows.append(scoring(shape, 64, args.length, 10, peak, args.steps))
            release(rows)
    if "speedup" in parts:
        for shape in ("qwen2-0.5b", "qwen2-1.5b"):
            rows.append(scoring_speedup_gpu(shape))
            release(rows)
    if "tune" in parts:  # what lifts 1.5B training MFU: more tokens per step, compiled kernels
        for batch_size, compile_model in ((64, False), (64, True), (128, True)):
            rows += train_variants(
                "qwen2-1.5b",
                batch_size,
                args.length,
                10,
                peak,
                args.steps,
                ("bare_target", "lightning"),
                compile_model,
            )
            release(rows)
    if "7b" in parts:
        rows.append(seven_b_full_finetune(args.length, 3))
        release(rows)
    if "7b-peft" in parts:  # against the full fine-tune above (57 GB, 482 tokens/s on the H100)
        for policy in ("sparse", "lora"):
            rows.append(seven_b_peft(policy, args.length, 5))
            release(rows)
    result = {
        "machine": machine(),
        "matmul_ceiling_tflops": peak,
        "rows": rows,
        "sequence": f"{args.length} tokens, the last 10 are targets (a SemEval prompt is ~100-130 tokens)",
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(
        f"\n{'shape':<11} {'variant':<40} {'batch':<7} {'step ms':>8} {'tok/s':>9} {'TFLOP/s':>8} {'MFU':>6} {'mem GB':>7}"
    )
    for r in rows:
        if "speedup" in r:
            print(
                f"{r['shape']:<11} {r['variant']:<40} one at a time {r['baseline_s']:.2f}s, batched {r['ours_s']:.2f}s "
                f"-> {r['speedup']:.1f}x (bf16 max |diff| {r['max_abs_diff_bf16']:.3f})"
            )
            continue
        if "step_s" not in r:
            print(f"{r['shape']:<11} {r['variant']:<40} OOM at {r['mem_gb']:.1f} GB: {r.get('error', '')}")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if "mfu" in r else "-"
        print(
            f"{r['shape']:<11} {r['variant']:<40} {r['batch']:<7} {1000 * r['step_s']:>8.1f} {r['tokens_per_s']:>9.0f} "
            f"{r['tflops']:>8.1f} {mfu:>6} {r['mem_gb']:>7.1f}"
        )


if __name__ == "__main__":
    main()
