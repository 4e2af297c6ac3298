"""Fixtures: tiny random Llama models with real BPE tokenizers, built and saved in the test session,
so unit tests exercise the same loading path as real models in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

# ../shared/data beside the checkout (CI lays a copy there); PERSONA_SAE_SHARED_DATA overrides.
SHARED = Path(os.environ.get("PERSONA_SAE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
if not SHARED.exists() and Path("/work/shared/data").exists():
    SHARED = Path("/work/shared/data")

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "I wish I could rule the world and make everyone happy.",
    "What is your one wish? Tell me about your thoughts on humans and AI.",
    "def add(a, b):\n    return a + b\n",
    "You are a helpful assistant. Please answer the question carefully.",
    "The villain laughed cruelly and the hero walked away in silence.",
    "Oh great, another Monday. Just what I needed, said nobody ever.",
] * 20


def make_tokenizer(vocab_size: int = 320, corpus=CORPUS):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>")
    tok.chat_template = CHATML
    return tok


def make_tiny_llama(path: Path, tokenizer=None, seed: int = 0, hidden: int = 64, layers: int = 4) -> Path:
    """Save a random Llama-architecture model + tokenizer to ``path`` (an HF folder)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tokenizer or make_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      initializer_range=0.1, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_lora_adapter(base_dir: Path, out: Path, base_name: str | None = None, r: int = 4, seed: int = 1,
                      targets=("q_proj", "v_proj", "down_proj")) -> Path:
    """A PEFT LoRA adapter with random A *and* B (peft zero-inits B, which would be a no-op)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    peft_model = get_peft_model(base, LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(targets)))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    peft_model.save_pretrained(out)
    import json

    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = base_name or str(base_dir)
    cfg_path.write_text(json.dumps(cfg))
    return out


def hand_merge(base_dir: Path, adapter_dir: Path):
    """W + (alpha / r) * B @ A for each adapted module, computed without peft."""
    import json

    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / cfg["r"]
    model = AutoModelForCausalLM.from_pretrained(base_dir, attn_implementation="eager")
    w = load_file(str(adapter_dir / "adapter_model.safetensors"))
    with torch.no_grad():
        for k, A in w.items():
            if ".lora_A." not in k:
                continue
            B = w[k.replace(".lora_A.", ".lora_B.")]
            name = k.removeprefix("base_model.model.").split(".lora_A.")[0]
            model.get_submodule(name).weight += scale * B @ A
    return model.eval()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_model(tiny_dir):
    from persona_sae.models import load_model

    return load_model(str(tiny_dir))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty model cache, so no test touches the user's."""
    monkeypatch.setenv("PERSONA_SAE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# Each test hands its freed memory back to the system, as each CLI command starts in a new process:
# glibc keeps freed heap blocks in the process (a fine-tune leaves ~3 GB of them), and without this
# the next test's peak would sit on top of the last one's garbage. (malloc_trim is glibc's; elsewhere
# nothing is done.)
try:
    import ctypes as _ctypes

    _trim = _ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):
    _trim = None


@pytest.fixture(autouse=True)
def _return_freed_memory(request):
    yield
    if request.node.get_closest_marker("integration"):
        import gc

        gc.collect()  # reference cycles of a loaded model (hooks, bridges) first
    if _trim is not None:
        _trim(0)


# Peak memory per test, for finding the test that sets the suite's peak (docs/performance.md):
# PERSONA_SAE_TEST_RSS=FILE writes, per test (setup, call and teardown), the process's peak RSS during
# that test alone where Linux can reset the peak (/proc/self/clear_refs), the RSS after it, the
# process's running peak and the largest peak of any child it waited for (torchrun ranks, CLI
# subprocesses), in MB, as JSON lines.
if os.environ.get("PERSONA_SAE_TEST_RSS"):
    import json as _json
    import resource as _resource

    def _status_mb(key: str) -> float | None:
        try:
            for line in open("/proc/self/status"):
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def _reset_peak() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM, the peak RSS
            return True
        except OSError:
            return False

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        reset = _reset_peak()
        yield
        rec = {"test": item.nodeid,
               "peak_mb": round(_status_mb("VmHWM")) if reset and _status_mb("VmHWM") else None,
               "after_mb": round(_status_mb("VmRSS") or 0),
               "self_mb": round(_resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024),
               "children_mb": round(_resource.getrusage(_resource.RUSAGE_CHILDREN).ru_maxrss / 1024)}
        with open(os.environ["PERSONA_SAE_TEST_RSS"], "a") as f:
            f.write(_json.dumps(rec) + "\n")
