"""Per-example target log-likelihood from a model's forward pass, computing logits only where needed.

Relation labels are a few tokens after a prompt of a hundred: for a decoder-only model, projecting
every prompt position onto a 50k-150k vocabulary is most of the LM-head work and memory, and none of it
is used. The fast path projects only target positions; it is taken for architectures whose logits are
a plain linear map of the last hidden state (no soft-capping or scaling), else full logits are used.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from atlantis.models.loss import IGNORE_INDEX, shift_for_causal, token_nll

PLAIN_LM_HEAD = {"llama", "qwen2", "qwen3", "mistral"}
# Gemma's head is plain too unless it soft-caps its logits (Gemma 2 does; Gemma 3's config leaves it off). With
# Gemma-3's 262,144-token vocabulary, full logits would cost several times the transformer.
GEMMA = {"gemma", "gemma3", "gemma3_text"}


def plain_lm_head(model) -> bool:
    """Whether the logits are a plain linear map of the last hidden state (the target-only fast path applies)."""
    model_type = getattr(model.config, "model_type", None)
    if model_type in GEMMA:
        return not getattr(model.config, "final_logit_softcapping", None)
    return model_type in PLAIN_LM_HEAD


def target_token_nll(model, kind: str, input_ids, attention_mask, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """(NLL per target position, mask of target positions), both [B, T'] with T' aligned to the targets."""
    if kind == "seq2seq":
        decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels=labels)
        logits = model(
            input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids, use_cache=False
        ).logits
        targets = labels
    elif plain_lm_head(model):
        hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return nll_from_last_hidden(model, hidden.last_hidden_state, labels)
    else:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        logits, targets = shift_for_causal(logits, labels)
    return token_nll(logits, targets), targets != IGNORE_INDEX


def nll_from_last_hidden(model, last_hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """target_token_nll of a decoder-only model from its final hidden states: the LM head on target positions."""
    hidden = last_hidden[:, :-1]
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    picked = model.get_output_embeddings()(hidden[mask])
    nll = torch.zeros(targets.shape, dtype=torch.float32, device=hidden.device)
    nll[mask] = F.cross_entropy(picked.float(), targets[mask], reduction="none")
    return nll, mask


# Decoders whose blocks run as a slice (only_blocks): each block's attention kind and rotary table follow
# config.layer_types, which the slice narrows with them (Gemma 3: five sliding-window blocks, then one global).
SLICEABLE_DECODERS = PLAIN_LM_HEAD | {"gemma3_text"}


@contextmanager
def only_blocks(model, blocks: slice):
    """The decoder runs only `blocks` of its layers (the others, and their entries of `config.layer_types`, are put
    aside for the duration: the decoder picks block i's mask and position embeddings by i)."""
    base = model.base_model
    every, types = base.layers, getattr(base.config, "layer_types", None)
    base.layers = torch.nn.ModuleList(list(every)[blocks])
    if types is not None:
        base.config.layer_types = list(types)[blocks]
    try:
        yield base
    finally:
        base.layers = every
        if types is not None:
            base.config.layer_types = types


@torch.no_grad()
def lower_hidden_states(model, input_ids, attention_mask, n_lower: int) -> torch.Tensor:
    """[B, T, d] output of the first `n_lower` blocks (the input of the first block above them)."""
    captured = []
    with only_blocks(model, slice(0, n_lower)) as base:
        hook = base.layers[-1].register_forward_hook(lambda _m, _args, out: captured.append(out))
        try:
            base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        finally:
            hook.remove()
    out = captured[-1]
    return out[0] if isinstance(out, tuple) else out


def upper_last_hidden(model, lower: torch.Tensor, attention_mask, n_lower: int) -> torch.Tensor:
    """[B, T, d] final hidden states from the lower blocks' output, running only the blocks above them."""
    with only_blocks(model, slice(n_lower, None)) as base:
        return base(inputs_embeds=lower, attention_mask=attention_mask, use_cache=False).last_hidden_state


def example_nll(model, kind: str, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean NLL over each example's target tokens [B], number of target tokens [B])."""
    nll, mask = target_token_nll(model, kind, batch["input_ids"], batch["attention_mask"], batch["labels"])
    count = mask.sum(dim=1)
    return nll.sum(dim=1) / count.clamp(min=1), count


def target_hidden_states(model, kind: str, batch: dict) -> list[torch.Tensor]:
    """Per example, the inputs of the output layer at its target positions ([m_i, d] each, float32).

    These are the x_ij of the last-layer linearisation (FisherSFT): captured with a hook on the LM head, so
    T5's tied-embedding rescaling is included exactly as the head sees it.
    """
    captured = []
    hook = model.get_output_embeddings().register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
    try:
        _, mask = target_token_nll(model, kind, batch["input_ids"], batch["attention_mask"], batch["labels"])
    finally:
        hook.remove()
    hidden = captured[-1].detach().float()
    if hidden.dim() == 3:  # full-sequence head input: keep the positions that predict a target
        if kind != "seq2seq":
            hidden = hidden[:, :-1]
        hidden = hidden[mask]
    counts = mask.sum(dim=1).tolist()
    return list(torch.split(hidden, counts))
