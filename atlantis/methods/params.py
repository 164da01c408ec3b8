"""The `params` slot: what is trained, and whether anything is (the hooks: atlantis.methods.base.Params)."""

from __future__ import annotations

import hashlib
import itertools
import logging

import torch

from atlantis.methods.base import Params

log = logging.getLogger(__name__)


class FullParams(Params):
    """Every parameter trains."""

    def apply(self, model):
        for param in model.parameters():
            param.requires_grad = True
        return model


class Frozen(Params):
    """Nothing trains: the job only tests (zero/few-shot prompting)."""

    trains = False

    def apply(self, model):
        for param in model.parameters():
            param.requires_grad = False
        return model


class TopLayers(Params):
    """The top `n` transformer blocks (and the final norm) train; everything below is frozen.

    cache_lower: the frozen blocks' output for each training example is computed once (the first time the
    example is seen) and reused in every later step, so a step runs only the top `n` blocks forward and
    backward. Exact for decoder-only Llama / Qwen2 / Gemma-3-type models without attention dropout (checked); the cache
    holds [tokens, hidden size] floats per training example (~55 MB for 400 SemEval examples at SmolLM2's 576).
    """

    def __init__(self, n: int = 8, cache_lower: bool = False):
        if n < 1:
            raise ValueError(f"top_layers needs n >= 1, got {n}")
        self.n, self.cache_lower = n, cache_lower
        self.lower: dict[str, torch.Tensor] = {}

    def apply(self, model):
        n_blocks = freeze_lower_layers(model, self.n)
        self.n_lower = max(0, n_blocks - self.n)
        if self.cache_lower and self.n_lower == 0:
            log.info("top_layers.cache_lower: every block trains, nothing frozen to cache; the full pass runs")
            self.cache_lower = False
        if self.cache_lower:
            from atlantis.models.forward import SLICEABLE_DECODERS, plain_lm_head

            model_type = getattr(model.config, "model_type", None)
            if model_type not in SLICEABLE_DECODERS or not plain_lm_head(model):  # how fast, not what: same training
                log.info("top_layers.cache_lower serves %s models, not %r: the full pass runs",
                         sorted(SLICEABLE_DECODERS), model_type)  # fmt: skip
                self.cache_lower = False
                return model
            if getattr(model.config, "attention_dropout", 0.0):
                raise ValueError(
                    "top_layers.cache_lower needs attention_dropout = 0 (cached frozen outputs must not vary)"
                )
        return model

    def example_nll(self, model, kind: str, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean target NLL [B], target counts [B]); with cache_lower, the frozen blocks' outputs from the cache
        (this policy then owns the training forward pass)."""
        if not self.cache_lower:
            return super().example_nll(model, kind, batch)
        from atlantis.models.forward import lower_hidden_states, nll_from_last_hidden, upper_last_hidden

        ids, mask = batch["ids"], batch["attention_mask"]
        lengths = mask.sum(dim=1).tolist()
        missing = [i for i, key in enumerate(ids) if key not in self.lower]
        if missing:  # right-padded rows: an example's real tokens come first, so its states do not depend on the batch
            computed = lower_hidden_states(model, batch["input_ids"][missing], mask[missing], self.n_lower)
            for row, i in enumerate(missing):
                self.lower[ids[i]] = computed[row, : lengths[i]].cpu()
        lower = torch.zeros(mask.shape[0], mask.shape[1], self.lower[ids[0]].shape[-1], dtype=self.lower[ids[0]].dtype)
        for i, key in enumerate(ids):
            lower[i, : lengths[i]] = self.lower[key]
        last = upper_last_hidden(model, lower.to(mask.device), mask, self.n_lower)
        nll, target = nll_from_last_hidden(model, last, batch["labels"])
        count = target.sum(dim=1)
        return nll.sum(dim=1) / count.clamp(min=1), count


# Every Linear of the blocks, per architecture (the output layer is never adapted).
# T5: self- and cross-attention, encoder and decoder, and the feed-forward; Qwen2/Llama: attention and MLP.
ALL_LINEAR = {
    "t5": ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


class LoRA(Params):
    """LoRA adapters through HF `peft`, injected in place; only the adapters train.

    target_modules: a list, `all-linear` (every Linear of the blocks; default) or `peft` (peft's
    per-architecture default, q and v).
    """

    def __init__(self, r: int = 8, alpha: int = 16, dropout: float = 0.05, target_modules="all-linear"):
        if r < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {r}")
        self.r, self.alpha, self.dropout, self.target_modules = r, alpha, dropout, target_modules

    def targets(self, model) -> list[str] | None:
        if self.target_modules == "peft":
            return None  # peft picks its default for the architecture
        return linear_targets(model, self.target_modules)

    def apply(self, model):
        from peft import LoraConfig, inject_adapter_in_model

        config = LoraConfig(
            r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=self.targets(model)
        )
        model = inject_adapter_in_model(config, model)
        for name, param in model.named_parameters():
            param.requires_grad = "lora_" in name
        return model

    def merge(self, model):
        """Fold every adapter into its base weight and put the plain Linear back."""
        from peft.tuners.lora import LoraLayer

        for name, module in list(model.named_modules()):
            if isinstance(module, LoraLayer):
                module.merge()
                parent_name, _, child = name.rpartition(".")
                setattr(model.get_submodule(parent_name) if parent_name else model, child, module.get_base_layer())
        return model


def linear_targets(model, target_modules="all-linear") -> list[str]:
    """Names (last component) of the block Linears to adapt: a list, or `all-linear` for the architecture."""
    if isinstance(target_modules, (list, tuple)):
        return list(target_modules)
    model_type = getattr(model.config, "model_type", "")
    if model_type not in ALL_LINEAR:
        raise ValueError(f"no all-linear targets known for {model_type!r}; set method.params.target_modules")
    names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    return sorted(names & set(ALL_LINEAR[model_type]))


class SparseDelta(torch.nn.Module):
    """W' = W + scatter(idx, v): `v` (k values) is the only trainable tensor of a sparsely tuned Linear."""

    def __init__(self, indices: torch.Tensor, dtype=torch.float32):
        super().__init__()
        self.register_buffer("indices", indices.long())
        self.values = torch.nn.Parameter(torch.zeros(len(indices), dtype=dtype))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.flatten().index_add(0, self.indices, self.values.to(weight.dtype)).view_as(weight)


def batches_digest(batches: list[dict]) -> str:
    """sha256 of the tensors of a list of batches: what a salience pass actually saw."""
    digest = hashlib.sha256()
    for batch in batches:
        for key in sorted(batch):
            value = batch[key]
            if torch.is_tensor(value):
                digest.update(f"{key}{value.dtype}{tuple(value.shape)}".encode())
                digest.update(value.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def global_top_k(scores: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Flat indices per layer of the k largest non-negative scores over all layers; ties go to the earlier
    layer and index. Exact without concatenating the layers (at 7B that copy alone would be 26 GB): the k-th
    largest value is found by bisection on the float bits (monotone for x >= 0), one counting pass each.
    """

    def bits(s: torch.Tensor) -> torch.Tensor:
        return s.detach().float().flatten().view(torch.int32)

    def count_at_least(threshold: int) -> int:
        return sum(int((bits(s) >= threshold).sum()) for s in scores.values())

    low, high = 0, 0x7F800000  # +inf's bits; count_at_least(low) = all entries >= k
    while low < high:  # the largest threshold that still keeps k entries: the k-th largest value's bits
        mid = (low + high + 1) // 2
        if count_at_least(mid) >= k:
            low = mid
        else:
            high = mid - 1
    ties_left = k - count_at_least(low + 1)  # entries equal to the k-th value still to take, in order
    chosen = {}
    for name, s in scores.items():
        b = bits(s)
        above = torch.nonzero(b > low).flatten()
        equal = torch.nonzero(b == low).flatten()[: max(ties_left, 0)]
        ties_left -= len(equal)
        picked = torch.cat([above, equal]).sort().values
        if len(picked):
            chosen[name] = picked.cpu()
    return chosen


SALIENCE = ("gradient", "magnitude", "snip", "random")


class Sparse(Params):
    """SPEFT (Liu et al., ACL 2025): a static mask of the most salient entries of the block Linears' weights,
    chosen once before training; only those entries train, as index + value vectors added to frozen weights.

    salience: `gradient` |mean batch gradient| (the paper's winner), `magnitude` |W|, `snip` |W · gradient|,
    `random`; computed over `score_batches` training batches with the method's example weights.
    density: share of the adapted weights trained (or `count`: an exact number); per_layer: the same share in
    every layer instead of one global top-k. Checkpoints hold the (indices, values) only.
    """

    def __init__(
        self,
        density: float = 0.01,
        count: int | None = None,
        salience: str = "gradient",
        score_batches: int = 8,
        per_layer: bool = False,
        target_modules="all-linear",
        seed: int = 0,
    ):
        if salience not in SALIENCE:
            raise ValueError(f"salience must be one of {SALIENCE}, got {salience!r}")
        if count is None and not 0 < density < 1:
            raise ValueError(f"density must be in (0, 1) (use params=full for everything), got {density}")
        self.density, self.count, self.salience = density, count, salience
        self.score_batches, self.per_layer, self.target_modules, self.seed = (
            score_batches,
            per_layer,
            target_modules,
            seed,
        )

    def apply(self, model):
        for param in model.parameters():
            param.requires_grad = False  # nothing trains until `prepare` picks the mask
        return model

    def layers(self, model) -> dict[str, torch.nn.Linear]:
        names = set(linear_targets(model, self.target_modules))
        output = model.get_output_embeddings()
        return {
            name: m
            for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in names and m is not output
        }

    def scores(self, module, batches: list[dict]) -> dict[str, torch.Tensor]:
        from atlantis.models.forward import example_nll
        from atlantis.models.loss import weighted_batch_loss

        layers = self.layers(module.model)
        if self.salience == "magnitude":
            return {n: m.weight.detach().abs().float() for n, m in layers.items()}
        if self.salience == "random":
            g = torch.Generator().manual_seed(self.seed)
            return {n: torch.rand(m.weight.shape, generator=g) for n, m in layers.items()}
        for m in layers.values():
            m.weight.requires_grad_(True)
            m.weight.grad = None
        was_training = module.model.training
        module.model.eval()  # no dropout: the salience of the weights, not of a dropout draw
        for batch in batches:
            nll, _ = example_nll(module.model, module.kind, batch)
            weighted_batch_loss(nll, batch["weight"]).backward()  # the method's own weighted objective
        module.model.train(was_training)
        n = len(batches)
        out = {}
        for name, m in layers.items():
            # |mean gradient| (or |W * mean gradient|), in place in the gradient's memory: no second 7B-sized copy
            score = m.weight.grad.div_(max(n, 1))
            if self.salience == "snip":
                score.mul_(m.weight.detach())
            out[name] = score.abs_()
            m.weight.grad = None
            m.weight.requires_grad_(False)
        return out

    def choose(self, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Flat indices per layer: a global top-k over all layers, or the top share of each; ties by index."""
        total = sum(s.numel() for s in scores.values())
        k = self.count if self.count is not None else int(round(self.density * total))
        if not 0 < k < total:
            raise ValueError(f"sparse: {k} trained entries of {total} adapted weights; use params=full for all")
        if self.per_layer:
            return {
                n: torch.topk(s.flatten(), max(1, int(round(k * s.numel() / total))), sorted=False)
                .indices.sort()
                .values.cpu()
                for n, s in scores.items()
            }
        return global_top_k(scores, k)

    def install(self, model, chosen: dict[str, torch.Tensor]):
        from torch.nn.utils import parametrize

        modules = dict(model.named_modules())
        for name, indices in chosen.items():
            linear = modules[name]
            if parametrize.is_parametrized(linear, "weight"):
                continue  # restored already (a reload of the same mask)
            delta = SparseDelta(indices, linear.weight.dtype).to(linear.weight.device)
            parametrize.register_parametrization(linear, "weight", delta)
        for param_name, param in model.named_parameters():
            param.requires_grad = param_name.endswith(".parametrizations.weight.0.values")
        return model

    def options(self) -> dict:
        return {
            k: getattr(self, k)
            for k in ("density", "count", "salience", "score_batches", "per_layer", "target_modules", "seed")
        }

    def prepare(self, module, loader, cache=None, model_key=None) -> dict:
        batches = list(itertools.islice(loader, self.score_batches))
        if cache is None or model_key is None:
            chosen = self.choose(self.scores(module, batches))
        else:  # like the signals: the same model, batches and options give the same mask, computed once
            spec = {"model": model_key, "batches": batches_digest(batches), "options": self.options(), "version": 1}

            def build(tmp):
                torch.save(self.choose(self.scores(module, batches)), tmp / "mask.pt")

            path = cache.get_or_create("sparse_masks", spec, build, "sparse mask")
            chosen = torch.load(path / "mask.pt", weights_only=True)
        module.model = self.install(module.model, chosen)
        k = sum(len(i) for i in chosen.values())
        total = sum(m.weight.numel() for m in self.layers(module.model).values())
        log.info(
            "sparse: %d of %d adapted weights train (%.3f %%) in %d layers", k, total, 100 * k / total, len(chosen)
        )
        return {"trained": k, "adapted": total, "layers": {n: len(i) for n, i in chosen.items()}}

    def checkpoint_state(self, state_dict: dict) -> dict:
        return {k: v for k, v in state_dict.items() if ".parametrizations.weight.0." in k}

    def restore(self, model, state_dict: dict, prefix: str = "model."):
        suffix = ".parametrizations.weight.0.indices"
        chosen = {k[len(prefix) : -len(suffix)]: v for k, v in state_dict.items() if k.endswith(suffix)}
        return self.install(model, chosen) if chosen else model

    @property
    def strict_loading(self) -> bool:
        return False  # checkpoints hold the deltas only; the frozen weights come from the model's source

    def merge(self, model):
        from torch.nn.utils import parametrize

        for module in model.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        return model


def freeze_lower_layers(model, trainable_layers: int) -> int:
    """Train only the top `trainable_layers` transformer blocks (and the final norm); freeze the rest. Returns
    the number of blocks."""
    blocks = None
    for path in ("model.layers", "decoder.block", "transformer.h"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            blocks = obj
            break
        except AttributeError:
            continue
    if blocks is None:
        raise ValueError(f"cannot find the transformer blocks of {type(model).__name__} to freeze")
    for param in model.parameters():
        param.requires_grad = False
    for block in list(blocks)[len(blocks) - trainable_layers :]:
        for param in block.parameters():
            param.requires_grad = True
    for name, param in model.named_parameters():
        if "norm" in name and not any(f".{i}." in name for i in range(len(blocks))):
            param.requires_grad = True
    log.info("training the top %d of %d blocks", trainable_layers, len(blocks))
    return len(blocks)
