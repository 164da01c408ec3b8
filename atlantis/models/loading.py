"""Models and tokenizers from a hub id, a local directory, a GGUF file, or a tiny config (no download)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from atlantis.utils.hub import check_local_path
from atlantis.utils.random_state import preserved_random_state

log = logging.getLogger(__name__)
BUILTIN_TOKENIZER = "builtin"
TINY = "tiny"


def load_tokenizer(name_or_path: str, gguf_file: str | None = None):
    """'builtin' (in-memory BPE), a local directory or a hub id. Sets a pad token if the tokenizer lacks one."""
    if name_or_path == BUILTIN_TOKENIZER:
        from atlantis.data.builtin_tokenizer import build_builtin_tokenizer

        return build_builtin_tokenizer()
    from transformers import AutoTokenizer

    check_local_path(name_or_path, "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None:
        log.warning(
            "tokenizer %s has no pad token; using its EOS token %r for padding", name_or_path, tokenizer.eos_token
        )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tiny_model(kind: str, vocab_size: int, pad_token_id: int, eos_token_id: int, seed: int = 0, **sizes):
    """A randomly initialised small T5 (seq2seq) or Qwen2 (causal) built from a config, seeded.

    It stands in for a pretrained checkpoint, so its weights depend on `seed` only, and building it leaves the
    global random stream (data order, dropout) as it was.
    """
    with preserved_random_state():
        torch.manual_seed(seed)
        return _tiny_model(kind, vocab_size, pad_token_id, eos_token_id, **sizes)


def _tiny_model(kind: str, vocab_size: int, pad_token_id: int, eos_token_id: int, **sizes):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, Qwen2Config, T5Config

    if kind == "seq2seq":
        config = T5Config(
            vocab_size=vocab_size,
            d_model=sizes.get("hidden_size", 64),
            d_ff=sizes.get("intermediate_size", 128),
            d_kv=sizes.get("head_dim", 32),
            num_layers=sizes.get("num_layers", 2),
            num_decoder_layers=sizes.get("num_layers", 2),
            num_heads=sizes.get("num_heads", 2),
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            decoder_start_token_id=pad_token_id,
            tie_word_embeddings=False,
        )
        return AutoModelForSeq2SeqLM.from_config(config)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=sizes.get("hidden_size", 64),
        intermediate_size=sizes.get("intermediate_size", 128),
        num_hidden_layers=sizes.get("num_layers", 2),
        num_attention_heads=sizes.get("num_heads", 2),
        num_key_value_heads=sizes.get("num_kv_heads", 1),
        max_position_embeddings=sizes.get("max_position_embeddings", 1024),
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        bos_token_id=eos_token_id,
        tie_word_embeddings=True,
    )
    return AutoModelForCausalLM.from_config(config)


def _auto_class(kind: str):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    if kind not in ("seq2seq", "causal"):
        raise ValueError(f"model kind must be 'seq2seq' or 'causal', got {kind!r}")
    return AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM


def _plain_copy_dir(name_or_path: str, gguf_file: str, cache_dir: str | None) -> Path | None:
    if not cache_dir:
        return None
    stat = os.stat(Path(name_or_path) / gguf_file)
    key = json.dumps([str(Path(name_or_path).resolve()), gguf_file, stat.st_size, int(stat.st_mtime)])
    return Path(cache_dir) / "models" / hashlib.sha256(key.encode()).hexdigest()[:16]


def load_pretrained(kind: str, name_or_path: str, gguf_file: str | None = None, cache_dir: str | None = None):
    """A pretrained model in float32 from a hub id or local directory (optionally a GGUF file in it).

    A GGUF checkpoint is dequantised once and saved as a plain checkpoint under `cache_dir`, so later
    loads take a second instead of half a minute.
    """
    check_local_path(name_or_path)
    auto = _auto_class(kind)
    if not gguf_file:
        return auto.from_pretrained(name_or_path, dtype=torch.float32)
    plain = _plain_copy_dir(name_or_path, gguf_file, cache_dir)
    if plain is not None and (plain / "config.json").is_file() and (plain / "model.safetensors").is_file():
        return auto.from_pretrained(plain, dtype=torch.float32)
    # Building the plain copy initialises weights at random; a later load from the copy does not.
    with preserved_random_state():
        return _dequantise(auto, name_or_path, gguf_file, plain)


def _dequantise(auto, name_or_path: str, gguf_file: str, plain: Path | None):
    log.info("dequantising %s/%s (about 30 s on 2 cores)", name_or_path, gguf_file)
    model = auto.from_pretrained(name_or_path, gguf_file=gguf_file, dtype=torch.float32)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    if plain is not None:
        # A GGUF-loaded model cannot save_pretrained itself: copy its weights into a plain model.
        plain_model = auto.from_config(config)
        plain_model.load_state_dict(model.state_dict())
        plain.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=plain.parent, prefix=".tmp-"))
        plain_model.save_pretrained(tmp)
        shutil.rmtree(plain, ignore_errors=True)
        os.replace(tmp, plain)
        return plain_model
    return model


def build_model(spec: dict, kind: str, tokenizer_len: int, pad_token_id: int, eos_token_id: int, cache_dir=None):
    """The model a spec names: {'name_or_path': 'tiny' | hub id | dir, 'gguf_file': .., 'tiny': {sizes}}."""
    name = spec.get("name_or_path")
    if not name:
        raise ValueError(f"model spec {spec!r} names no model (name_or_path)")
    if name == TINY:
        sizes = dict((spec.get("tiny") or {}).get(kind) or {})
        return tiny_model(kind, tokenizer_len, pad_token_id, eos_token_id, **sizes)
    model = load_pretrained(kind, name, spec.get("gguf_file"), cache_dir)
    check_vocabulary(model, tokenizer_len, f"{name}/{spec.get('gguf_file') or ''}".rstrip("/"))
    return model


def check_vocabulary(model, tokenizer_len: int, what: str) -> None:
    """Refuse a model whose embedding table is smaller than its tokenizer: a token id past the table would index
    outside it (an error at best, another token's row on some kernels)."""
    rows = model.get_input_embeddings().num_embeddings
    if rows < tokenizer_len:
        raise ValueError(
            f"{what}: its embedding table has {rows} rows but the tokenizer it is given has {tokenizer_len} tokens; "
            "give each model its own tokenizer (model.small.tokenizer / model.large.tokenizer)"
        )
