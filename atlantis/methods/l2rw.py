"""Learning to reweight examples (L2RW; Ren et al., ICML 2018): per-step weights from a meta-gradient on a
trusted batch.

At each step, perturb the batch's loss by ε_i per example, take one virtual SGD step θ̂(ε) = θ − α ∇_θ Σ ε_i ℓ_i(θ)
and ask how the trusted batch's loss L_T(θ̂) moves: at ε = 0,

    ∂L_T(θ̂(ε)) / ∂ε_i = −α ∇_θ L_T(θ) · ∇_θ ℓ_i(θ),

so w̃_i = max(0, ∇L_T · ∇ℓ_i) (α only scales), and w_i = w̃_i / Σ_j w̃_j over the batch (all zero: the step
trains nothing). An example whose gradient agrees with the gold batch's counts; one that pulls against it
does not. Here the B dot products come from one reverse pass on the trusted batch (v = ∇L_T) and one
forward-mode pass on the batch along v (torch.func.jvp): no per-example gradient is ever formed. The weights
are scaled to mean 1 over the batch (the loss divides by |B|), so a batch of agreeing examples trains as SFT.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch.func import functional_call, grad, jvp

from atlantis.methods.base import Weights
from atlantis.methods.weights import padding_rows
from atlantis.utils.distributed import gather_batch


def gradient_alignment(
    per_example_loss: Callable[[dict], torch.Tensor], trusted_loss: Callable[[dict], torch.Tensor], params: dict
) -> torch.Tensor:
    """[B] ∇_θ ℓ_i(θ) · ∇_θ L_T(θ) at θ = `params` (a dict of tensors): per_example_loss(params) -> [B],
    trusted_loss(params) -> a scalar. The negative of L2RW's meta-gradient ∂L_T/∂ε_i, up to the step size."""
    params = {name: p.detach() for name, p in params.items()}
    direction = grad(trusted_loss)(params)
    _, alignment = jvp(per_example_loss, (params,), (direction,))
    return alignment.detach()


def l2rw_weights(alignment: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
    """[B] max(0, alignment) normalised to sum to the number of real rows (mean 1), 0 where `padding`; all zero
    when no example agrees with the trusted batch. Under DDP the sum runs over the global batch."""
    padding = torch.zeros_like(alignment, dtype=torch.bool) if padding is None else padding
    positive = alignment.clamp(min=0).masked_fill(padding, 0.0)
    joined, mine = gather_batch(positive)
    real = int((~gather_batch(padding.float())[0].bool()).sum())
    total = joined.sum()
    if total <= 0:
        return torch.zeros_like(positive)
    return positive * (real / total)


class _ExampleLoss(torch.nn.Module):
    """The model's per-example training NLL as a module, so torch.func can call it with other parameters."""

    def __init__(self, module):
        super().__init__()
        self.model = module.model
        self._policy, self._kind = module.params_policy, module.kind

    def forward(self, batch: dict) -> torch.Tensor:
        return self._policy.example_nll(self.model, self._kind, batch)[0]


class L2RWWeights(Weights):
    """`method/weights=l2rw`: each step's weights from the gradient alignment with a seeded batch of the trusted
    seed (`meta_batch_size` examples, drawn anew each step from (seed, global step), the same on every rank).
    Needs trusted.per_class > 0. About three forward-backward passes a step (the trusted batch's gradient, the
    forward-mode pass, the training step)."""

    def __init__(self, meta_batch_size: int = 16):
        if meta_batch_size < 1:
            raise ValueError(f"meta_batch_size must be >= 1, got {meta_batch_size}")
        self.meta_batch_size = meta_batch_size
        self.trusted: list[dict] = []
        self.seed = 0

    def columns(self, data) -> dict[str, dict[str, float]]:
        if not data.trusted:
            raise ValueError(
                "L2RW reweights each batch by its agreement with a trusted batch, and this job has no trusted seed: "
                "set trusted.per_class=k (k gold-labelled examples per class)"
            )
        self.trusted, self.seed = [dict(f, weight=1.0) for f in data.trusted], data.seed
        return {}

    def meta_batch(self, step: int, collate) -> dict:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        order = torch.randperm(len(self.trusted), generator=generator)[: self.meta_batch_size].tolist()
        return collate([self.trusted[i] for i in order])

    def step_weight(self, nll, n_targets, batch, *, module=None, **_) -> torch.Tensor:
        if module is None:
            raise ValueError("L2RW's step weights need the module (its model's gradients)")
        if not self.trusted:
            raise RuntimeError("L2RW has no trusted batch: columns(data) runs before training")
        from atlantis.data.datamodule import Collator

        collate = Collator(module.tokenizer.pad_token_id, module.kind)
        trusted = {k: v.to(nll.device) if torch.is_tensor(v) else v
                   for k, v in self.meta_batch(module.global_step, collate).items()}  # fmt: skip
        wrapper = _ExampleLoss(module)
        params = {name: p for name, p in wrapper.named_parameters() if p.requires_grad}
        with meta_mode(module.model):
            with torch.no_grad():  # a policy's cached frozen outputs are filled here, never inside a transform
                wrapper(trusted)
            # forward-mode AD has no rule for the fused attention kernels: the math kernel computes the same thing
            with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
                alignment = gradient_alignment(
                    lambda p: functional_call(wrapper, p, (batch,)),
                    lambda p: functional_call(wrapper, p, (trusted,)).mean(),
                    params,
                )
        return l2rw_weights(alignment.to(nll.dtype), padding_rows(batch, nll))


@contextmanager
def meta_mode(model):
    """The model as the meta-gradient needs it: eval mode (no dropout: the two passes see the same network, and the
    training step's random stream is untouched), no activation checkpointing and no input-requires-grad hook (the
    two cannot run inside torch.func's transforms); all restored after."""
    training = model.training
    checkpointing = bool(getattr(model, "is_activation_checkpointing", False))
    model.eval()
    if checkpointing:
        model.activation_checkpointing_disable()  # its input hooks go with it (and come back with it)
    input_hooks = bool(getattr(model, "_require_grads_hooks", None))  # adapters (peft) installed them
    if input_hooks:
        model.disable_input_require_grads()
    try:
        yield
    finally:
        if checkpointing:
            model.activation_checkpointing_enable()  # may install the input hooks again: never twice
        if input_hooks and not getattr(model, "_require_grads_hooks", None):
            model.enable_input_require_grads()
        model.train(training)
