"""Reading a model's answer: every candidate label's sequence log-prob (prompt encoded once), or greedy ids."""

from __future__ import annotations

import functools
import inspect

import torch

from atlantis.models.loss import IGNORE_INDEX, token_nll


@functools.cache
def _cache_keyword(model_class: type) -> str:
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def cache_kwarg(model, cache) -> dict:
    """A KV cache as the model's forward takes it: `cache=` in newer transformers (which deprecate
    `past_key_values=`), `past_key_values=` in older ones."""
    return {_cache_keyword(type(model)): cache}


def pad_candidates(candidate_ids: list[list[int]], pad_token_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """[C, T] candidate ids (right-padded) and their label tensor with -100 on padding."""
    width = max(len(c) for c in candidate_ids)
    ids = torch.full((len(candidate_ids), width), pad_token_id, dtype=torch.long, device=device)
    labels = torch.full_like(ids, IGNORE_INDEX)
    for i, c in enumerate(candidate_ids):
        ids[i, : len(c)] = torch.tensor(c, device=device)
        labels[i, : len(c)] = ids[i, : len(c)]
    return ids, labels


# The candidate stage scores prompt x candidate pairs, at most this many at a time, so memory stays flat in the
# label count (Re-DocRED: 97 labels x 32 prompts). Decoder-only: the candidates are packed after each prompt
# (logits [B, chunk tokens, V]); seq2seq: the encoder states are repeated per candidate.
MAX_CANDIDATE_ROWS = 1024


def candidate_chunks(n_prompts: int, n_candidates: int, max_rows: int | None = None) -> list[range]:
    """Consecutive candidate ranges whose prompt x candidate rows stay within `max_rows` (one candidate at least)."""
    per_chunk = max(1, (max_rows or MAX_CANDIDATE_ROWS) // max(1, n_prompts))
    return [range(i, min(i + per_chunk, n_candidates)) for i in range(0, n_candidates, per_chunk)]


def score_candidates(model, kind: str, batch: dict, candidate_ids: list[list[int]], pad_token_id: int) -> torch.Tensor:
    """[B, C] sequence log-probs of every candidate label for a collated batch, seq2seq or decoder-only.

    Differentiable (a label-set loss trains through it): evaluation callers run it under torch.no_grad."""
    if kind == "seq2seq":
        return score_candidates_seq2seq(
            model, batch["input_ids"], batch["attention_mask"], candidate_ids, pad_token_id
        )
    return score_candidates_causal(
        model, batch["prompt_ids"], batch["prompt_attention_mask"], candidate_ids, pad_token_id
    )


def score_candidates_seq2seq(model, input_ids, attention_mask, candidate_ids, pad_token_id) -> torch.Tensor:
    """[B, C] sequence log-probs of every candidate; each prompt goes through the encoder once."""
    batch = input_ids.shape[0]
    encoder_out = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
    scores = []
    for chunk in candidate_chunks(batch, len(candidate_ids)):
        n_cand = len(chunk)
        _, cand_labels = pad_candidates([candidate_ids[i] for i in chunk], pad_token_id, input_ids.device)
        hidden = encoder_out.last_hidden_state.repeat_interleave(n_cand, dim=0)
        labels = cand_labels.repeat(batch, 1)
        out = model(
            encoder_outputs=(hidden,),
            attention_mask=attention_mask.repeat_interleave(n_cand, dim=0),
            labels=labels,
            use_cache=False,
        )
        scores.append(-token_nll(out.logits, labels).sum(dim=-1).view(batch, n_cand))
    return torch.cat(scores, dim=1)


# Prompts of a batch that share at least this many leading tokens (a document and its pairs, few-shot
# demonstrations) are scored from one encoding of the shared part.
MIN_SHARED_PREFIX = 32


def shared_prefix_length(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> int:
    """Tokens every (left-padded) prompt of the batch starts with, leaving each at least one of its own."""
    rows = [ids[mask.bool()].tolist() for ids, mask in zip(prompt_ids, prompt_mask, strict=True)]
    shortest = min(len(r) for r in rows)
    n = 0
    while n < shortest - 1 and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def score_candidates_causal(model, prompt_ids, prompt_mask, candidate_ids, pad_token_id) -> torch.Tensor:
    """[B, C] sequence log-probs of every candidate after a left-padded prompt, encoded once (KV cache);
    a prefix shared by the whole batch is encoded once for all of it."""
    if prompt_ids.shape[0] > 1 and (shared := shared_prefix_length(prompt_ids, prompt_mask)) >= MIN_SHARED_PREFIX:
        return score_candidates_shared_prefix(model, prompt_ids, prompt_mask, candidate_ids, pad_token_id, shared)
    positions = (prompt_mask.cumsum(dim=1) - 1).clamp(min=0)
    # Only the last prompt position's logits are needed (it predicts each candidate's first token).
    out = model(
        input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=positions, use_cache=True, logits_to_keep=1
    )
    return score_after_prompt(model, out.past_key_values, out.logits[:, -1], prompt_mask, positions[:, -1:] + 1,
                              candidate_ids, pad_token_id)  # fmt: skip


def score_candidates_shared_prefix(model, prompt_ids, prompt_mask, candidate_ids, pad_token_id, shared: int):
    """As score_candidates_causal, with the first `shared` prompt tokens (common to every row) encoded once:
    the prefix's KV cache is repeated for the rows, each row's own (right-padded) rest follows it."""
    batch, device = prompt_ids.shape[0], prompt_ids.device
    rows = [ids[mask.bool()] for ids, mask in zip(prompt_ids, prompt_mask, strict=True)]
    prefix = rows[0][:shared].unsqueeze(0)
    cache = model(input_ids=prefix, use_cache=True, logits_to_keep=1).past_key_values
    cache.batch_repeat_interleave(batch)
    rests = [r[shared:] for r in rows]
    lengths = torch.tensor([len(r) for r in rests], device=device)
    width = int(lengths.max())
    rest_ids = torch.full((batch, width), pad_token_id, dtype=torch.long, device=device)
    rest_mask = torch.zeros((batch, width), dtype=prompt_mask.dtype, device=device)
    for i, r in enumerate(rests):
        rest_ids[i, : len(r)], rest_mask[i, : len(r)] = r, 1
    mask = torch.cat([torch.ones((batch, shared), dtype=prompt_mask.dtype, device=device), rest_mask], dim=1)
    positions = shared + torch.arange(width, device=device).expand(batch, -1)
    out = model(
        input_ids=rest_ids, attention_mask=mask, position_ids=positions, **cache_kwarg(model, cache), use_cache=True
    )
    last = out.logits[torch.arange(batch, device=device), lengths - 1]  # each row's own last prompt token
    start = (shared + lengths).unsqueeze(1)
    return score_after_prompt(model, out.past_key_values, last, mask, start, candidate_ids, pad_token_id)


def score_after_prompt(model, cache, last_logits, prompt_mask, start, candidate_ids, pad_token_id) -> torch.Tensor:
    """[B, C] candidate log-probs from the prompts' KV cache: `last_logits` [B, V] predict each candidate's first
    token, `start` [B, 1] is the position the candidates begin at, `prompt_mask` masks the cached positions."""
    # Each chunk repeats the prompts' cache and extends it; the prompts' own key/value tensors are never written
    # (repeat and concatenation make new ones), so restoring the references gives the next chunk a clean cache,
    # without a copy and without breaking autograd when a label-set loss trains through this.
    prompt_layers = [(layer.keys, layer.values) for layer in cache.layers]
    scores = []
    for chunk in candidate_chunks(last_logits.shape[0], len(candidate_ids)):
        for layer, (keys, values) in zip(cache.layers, prompt_layers, strict=True):
            layer.keys, layer.values = keys, values
        chunk_ids = [candidate_ids[i] for i in chunk]
        scores.append(score_chunk(model, cache, last_logits, prompt_mask, start, chunk_ids, pad_token_id))
    return torch.cat(scores, dim=1)


def score_chunk(model, cache, last_logits, prompt_mask, start, candidate_ids, pad_token_id) -> torch.Tensor:
    """[B, C] log-probs of one chunk of candidates after the cached prompts.

    The candidates are packed side by side after each prompt, one row per prompt (the prompt's cache is not
    repeated per candidate): a 4D mask lets each candidate token see its prompt and its own earlier tokens only,
    and its position continues the prompt's. `cache` is extended by the chunk's tokens."""
    device, batch = last_logits.device, last_logits.shape[0]
    first = torch.tensor([c[0] for c in candidate_ids], device=device)
    scores = torch.log_softmax(last_logits.float(), dim=-1)[:, first]  # each candidate's first token
    inputs = [(k, j, c[j], c[j + 1]) for k, c in enumerate(candidate_ids) for j in range(len(c) - 1)]
    if not inputs:
        return scores
    owner, offset, token, target = (torch.tensor(column, device=device) for column in zip(*inputs, strict=True))
    length = len(inputs)
    sees_own = (owner[:, None] == owner[None, :]) & (offset[None, :] <= offset[:, None])  # [T, T]
    allowed = torch.cat(
        [prompt_mask.bool()[:, None, None, :].expand(batch, 1, length, -1), sees_own.expand(batch, 1, -1, -1)], dim=-1
    )
    dtype = next(model.parameters()).dtype
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(~allowed, torch.finfo(dtype).min)
    out = model(
        input_ids=token.expand(batch, -1),
        attention_mask=mask,
        position_ids=start + offset,
        **cache_kwarg(model, cache),
        use_cache=True,
    )
    logits = out.logits.float()
    token_logprob = logits.gather(-1, target.expand(batch, -1)[..., None]).squeeze(-1) - logits.logsumexp(dim=-1)
    return scores.index_add(1, owner, token_logprob)


def relations_above_threshold(scores: torch.Tensor, negative_index: int) -> list[list[int]]:
    """Per row, every label scoring above the negative label (none: the pair has no relation)."""
    above = scores > scores[:, negative_index : negative_index + 1]
    return [[i for i, keep in enumerate(row) if keep] for row in above.tolist()]


@torch.no_grad()
def generate_ids(model, kind: str, batch: dict, max_new_tokens: int, pad_token_id: int, eos_token_id: int):
    """Greedy continuation ids (prompt removed) for a batch."""
    if kind == "seq2seq":
        input_ids, mask = batch["input_ids"], batch["attention_mask"]
    else:
        input_ids, mask = batch["prompt_ids"], batch["prompt_attention_mask"]
    out = model.generate(
        input_ids=input_ids,
        attention_mask=mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
    )
    return out if kind == "seq2seq" else out[:, input_ids.shape[1] :]
