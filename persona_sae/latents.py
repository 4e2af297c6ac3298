"""Any SAE -> one in-memory sae-lens ``SAE``, so later commands accept all of them via ``--sae``.

An *SAE spec* is a folder (ours or any SAELens ``cfg.json`` + ``sae_weights.safetensors``), a
sparsify folder (``cfg.json`` + ``sae.safetensors``), a dictionary_learning folder or ``ae.pt``
(loaded with ``weights_only=True``, never unpickled), or ``RELEASE/SAE_ID`` from the SAELens registry.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import load_file

from persona_sae import UserError
from persona_sae import distributed as D
from persona_sae.models import load_model


def load_sae(spec: str, device: str = "cpu"):
    """Load an SAE spec (see module docstring) as a sae-lens SAE in eval mode."""
    from sae_lens import SAE

    p = Path(spec).expanduser()
    if p.is_file() and p.suffix == ".pt":
        return _dictionary_learning(p.parent if p.name == "ae.pt" else p, p).to(device).eval()
    if p.is_dir():
        if (p / "sae_weights.safetensors").is_file() and (p / "cfg.json").is_file():
            try:
                return SAE.load_from_disk(str(p), device=device).eval()
            except (KeyError, ValueError, TypeError) as e:
                raise UserError(f"{p} is not a loadable SAELens SAE: {e}") from None
        if (p / "sae.safetensors").is_file() and (p / "cfg.json").is_file():
            return _sparsify(p).to(device).eval()
        if (p / "ae.pt").is_file():
            return _dictionary_learning(p, p / "ae.pt").to(device).eval()
        subs = sorted(d.name for d in p.iterdir() if d.is_dir() and (d / "cfg.json").is_file())
        hint = f" (it has SAE subfolders: {', '.join(subs)})" if subs else ""
        raise UserError(f"{p} holds no SAE: expected cfg.json + sae_weights.safetensors, a sparsify "
                        f"sae.safetensors or a dictionary_learning ae.pt{hint}")
    if p.exists():
        raise UserError(f"SAE spec {spec} is a file but not an ae.pt")
    if "/" in spec and not spec.startswith((".", "/", "~")):
        return _registry(spec, device)
    raise UserError(f"SAE not found: {spec}")


def sae_checksum(sae) -> str:
    """sha256 over the weights, so results and labels can name the exact SAE they were made with."""
    h = hashlib.sha256()
    for k, v in sorted(sae.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _registry(spec: str, device: str):
    from sae_lens import SAE
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    release, _, sae_id = spec.partition("/")
    directory = get_pretrained_saes_directory()
    if release not in directory:
        raise UserError(f"SAE not found: {spec} is neither a folder nor a SAELens registry release")
    try:
        return SAE.from_pretrained(release, sae_id, device=device).eval()
    except ValueError as e:
        raise UserError(f"SAELens release {release} has no SAE '{sae_id}': {str(e).splitlines()[0][:200]}") from None
    except OSError as e:  # offline, or not in the local HF cache
        raise UserError(f"could not download SAELens SAE {spec} (offline?): {str(e).splitlines()[0][:200]}") from None


def _build(cls_cfg, cls_sae, weights: dict[str, torch.Tensor], **cfg):
    sae = cls_sae(cls_cfg(**cfg))
    missing = set(sae.state_dict()) - set(weights)
    if missing:
        raise UserError(f"SAE weights lack {', '.join(sorted(missing))}")
    sae.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    return sae


def _sparsify(p: Path):
    """sparsify (EleutherAI) TopK SAE: relu(encoder(x - b_dec)), top-k, then @ W_dec + b_dec."""
    from sae_lens import TopKSAE, TopKSAEConfig

    cfg = json.loads((p / "cfg.json").read_text())
    w = load_file(str(p / "sae.safetensors"))
    if cfg.get("skip_connection") or "W_skip" in w:
        raise UserError(f"{p}: sparsify SAEs with a skip connection (transcoders) are not supported")
    if cfg.get("transcode"):  # reads one hook and writes another: not an SAE of one residual stream
        raise UserError(f"{p}: sparsify transcoders (cfg.json transcode: true) are not supported")
    if cfg.get("activation", "topk") != "topk":
        raise UserError(f"{p}: sparsify activation {cfg['activation']!r} is not supported (only topk)")
    enc = w["encoder.weight"]
    return _build(TopKSAEConfig, TopKSAE, {"W_enc": enc.T.contiguous(), "b_enc": w["encoder.bias"],
                                           "W_dec": w["W_dec"], "b_dec": w["b_dec"]},
                  d_in=enc.shape[1], d_sae=enc.shape[0], k=int(cfg["k"]), apply_b_dec_to_input=True)


DL_CLASSES = ("AutoEncoder", "AutoEncoderTopK", "BatchTopKSAE", "JumpReluAutoEncoder")


def _dictionary_learning(folder: Path, ae: Path):
    """dictionary_learning (Marks et al.) AutoEncoder, AutoEncoderTopK, BatchTopKSAE or JumpReluAutoEncoder.

    ``config.json``'s ``trainer.dict_class`` decides when the weights alone cannot: AutoEncoderTopK and
    BatchTopKSAE store the same tensors, but the first keeps each token's top k and the second, at
    inference, every activation above its learnt threshold."""
    from sae_lens import JumpReLUSAE, JumpReLUSAEConfig, StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig

    try:
        sd = torch.load(ae, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle with code in it, or not a torch file
        raise UserError(f"{ae} is not a plain tensor state dict (refused to unpickle it): {str(e).splitlines()[0][:150]}") from None
    cfg = {}
    if (folder / "config.json").is_file():
        cfg = json.loads((folder / "config.json").read_text()).get("trainer", {})
    cls = cfg.get("dict_class")
    if cls is not None and cls not in DL_CLASSES:
        raise UserError(f"{ae}: dictionary_learning dict_class {cls!r} is not supported "
                        f"(supported: {', '.join(DL_CLASSES)})")
    if cls is None and "k" in sd and "threshold" in sd:
        raise UserError(f"{ae}: AutoEncoderTopK or BatchTopKSAE? They encode differently; put the run's "
                        f"config.json (trainer.dict_class) beside ae.pt")
    if cls == "BatchTopKSAE":  # relu(encoder(x - b_dec)) kept above the threshold: JumpReLU's formula
        enc = sd["encoder.weight"]
        th = torch.as_tensor(sd["threshold"]).float().expand(enc.shape[0]).contiguous()
        if (th < 0).any():
            raise UserError(f"{ae}: the BatchTopKSAE threshold was never set (-1: training did not finish)")
        return _build(JumpReLUSAEConfig, JumpReLUSAE, {"W_enc": enc.T.contiguous(), "b_enc": sd["encoder.bias"],
                                                       "W_dec": sd["decoder.weight"].T.contiguous(), "b_dec": sd["b_dec"],
                                                       "threshold": th},
                      d_in=enc.shape[1], d_sae=enc.shape[0], apply_b_dec_to_input=True)
    if "threshold" in sd and "W_enc" in sd:  # JumpReluAutoEncoder: x @ W_enc + b_enc, no b_dec subtraction
        return _build(JumpReLUSAEConfig, JumpReLUSAE, {k: sd[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold")},
                      d_in=sd["W_enc"].shape[0], d_sae=sd["W_enc"].shape[1], apply_b_dec_to_input=False)
    if "encoder.weight" not in sd:
        raise UserError(f"{ae}: unknown dictionary_learning layout (keys: {', '.join(sorted(sd)[:6])})")
    enc, dec = sd["encoder.weight"], sd["decoder.weight"]
    w = {"W_enc": enc.T.contiguous(), "b_enc": sd["encoder.bias"], "W_dec": dec.T.contiguous()}
    if "k" in sd or "k" in cfg:  # AutoEncoderTopK: relu(encoder(x - b_dec)), top-k
        k = int(sd["k"]) if "k" in sd else int(cfg["k"])
        return _build(TopKSAEConfig, TopKSAE, {**w, "b_dec": sd["b_dec"]}, d_in=enc.shape[1], d_sae=enc.shape[0],
                      k=k, apply_b_dec_to_input=True)
    # AutoEncoder: relu(encoder(x - bias)), decoder(f) + bias
    return _build(StandardSAEConfig, StandardSAE, {**w, "b_dec": sd["bias"]}, d_in=enc.shape[1], d_sae=enc.shape[0],
                  apply_b_dec_to_input=True)


def check_latents(latents, d_sae: int) -> None:
    """Every latent index must exist in the SAE."""
    bad = [j for j in latents if not 0 <= j < d_sae]
    if bad:
        raise UserError(f"latent {bad[0]} is out of range: the SAE has latents 0..{d_sae - 1}")


def check_fits(sae, model, layer: int, hook: str) -> None:
    """The SAE must read a hook the model has, at the model's width (else every number is garbage)."""
    model.hook_name(layer, hook)
    if sae.cfg.d_in != model.d_model:
        raise UserError(f"SAE d_in {sae.cfg.d_in} does not match {model.spec}'s d_model {model.d_model}")


def sae_layer(sae, layer: int = -1) -> tuple[int, str]:
    """The layer and hook an SAE reads, from its metadata (or ``layer`` when given)."""
    name = getattr(sae.cfg.metadata, "hook_name", None) or ""
    m = re.fullmatch(r"blocks\.(\d+)\.hook_(\w+)", name)
    if layer >= 0:
        return layer, m.group(2) if m else "resid_post"
    if not m:
        raise UserError(f"the SAE names no blocks.L.hook_* hook ({name!r}); pass --layer")
    return int(m.group(1)), m.group(2)


def logit_lens(model, sae, latents: list[int], k: int = 5, chunk: int = 1024) -> tuple[list[list[str]], list[list[str]]]:
    """Tokens each decoder direction promotes and suppresses through the final norm's scale and the
    unembedding (a cheap look at what a latent *writes*). In chunks of latents: all at once is
    [latents, vocab], 13 GB for 65,536 latents and SmolLM2's 49,152 tokens."""
    hf, tok = model.hf, model.tokenizer
    W_U = hf.get_output_embeddings().weight.detach().float()  # [vocab, d]
    norm = getattr(getattr(hf, "model", hf), "norm", None)
    scale = norm.weight.detach().float() if norm is not None and hasattr(norm, "weight") else 1.0
    W_dec = sae.W_dec.detach().float()
    top, bot = [], []
    for s in range(0, len(latents), chunk):
        logits = (W_dec[latents[s:s + chunk]] * scale) @ W_U.T
        top += logits.topk(k, dim=1).indices.tolist()
        bot += (-logits).topk(k, dim=1).indices.tolist()
    dec = lambda ids: [tok.decode([i]) for i in ids]  # noqa: E731
    return [dec(t) for t in top], [dec(b) for b in bot]


def persona_cosines(sae, directions) -> dict[str, torch.Tensor]:
    if directions is None:
        return {}
    W = sae.W_dec.detach().float()
    W = W / W.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return {t: W @ v.float() for t, v in directions.vectors.items()}


class OpenSAE(NamedTuple):
    """An SAE ready to read a model: the SAE, its checksum, the hook it reads and (when asked) the model."""

    sae: object
    sha256: str
    layer: int
    hook: str
    model: object = None


def open_sae(spec: str, model: str | None = None, layer: int = -1, dtype: str = "float32", log=print,
             distributed: bool = False, latents=()) -> OpenSAE:
    """The setup every SAE command shares: load, checksum, check ``latents`` are in range, find the layer,
    load the model and check the SAE fits it. Bad SAE specs and latents fail before the (slow) model load.
    ``distributed``: load the model once per node under torchrun (see ``distributed.load_model``)."""
    sae = load_sae(spec)
    check_latents(latents, sae.cfg.d_sae)
    sha = sae_checksum(sae)
    L, hook = sae_layer(sae, layer)
    if model is None:
        return OpenSAE(sae, sha, L, hook)
    m = D.load_model(model, dtype, log) if distributed else load_model(model, dtype=dtype, log=log)
    check_fits(sae, m, L, hook)
    return OpenSAE(sae, sha, L, hook, m)
