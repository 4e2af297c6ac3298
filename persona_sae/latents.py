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
from persona_sae import models as M
from persona_sae.models import load_model


def load_sae(spec: str, device: str = "cpu"):
    """Load an SAE spec (see module docstring) as a sae-lens SAE in eval mode. A truncated or corrupt
    file, or weights that are not finite, are refused naming the file or tensor: a NaN latent would
    otherwise rank first and every number after it would be garbage."""
    from safetensors import SafetensorError

    try:
        sae = _load_sae(spec, device)
    except SafetensorError as e:
        raise UserError(f"SAE {spec}: a safetensors file is corrupt or truncated ({e})") from None
    except json.JSONDecodeError as e:
        raise UserError(f"SAE {spec}: its config JSON is malformed ({e.msg} at line {e.lineno})") from None
    for name, t in sae.state_dict().items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise UserError(f"SAE {spec}: tensor {name} holds {bad} NaN or inf value(s) of {t.numel()}")
    return sae


def _load_sae(spec: str, device: str = "cpu"):
    from sae_lens import SAE

    p = Path(spec).expanduser()
    if p.is_file() and p.suffix == ".pt":
        return _dictionary_learning(p.parent if p.name == "ae.pt" else p, p).to(device).eval()
    if p.is_dir():
        if (p / "sae_weights.safetensors").is_file() and (p / "cfg.json").is_file():
            saved = json.loads((p / "cfg.json").read_text(encoding="utf-8"))
            arch, norm = str(saved.get("architecture", "")), saved.get("normalize_activations")
            if "transcoder" in arch:  # reads one hook and writes another: no reconstruction to splice or steer
                raise UserError(f"{p}: SAELens architecture {arch!r} is a transcoder (it reads one hook and "
                                f"writes another); persona_sae needs an SAE that reconstructs the activations "
                                f"it reads")
            if norm == "expected_average_only_in":  # SAELens sets "none" once it folds the factor in
                raise UserError(f"{p}: cfg.json says normalize_activations 'expected_average_only_in', so the "
                                f"dataset's norm scaling factor was never folded into the weights and the SAE "
                                f"would read unscaled activations; fold it (sae.fold_activation_norm_scaling_factor) "
                                f"and save again")
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


def _build(cls_cfg, cls_sae, weights: dict[str, torch.Tensor], meta: dict | None = None, **cfg):
    from sae_lens.saes.sae import SAEMetadata

    sae = cls_sae(cls_cfg(**cfg, metadata=SAEMetadata(**(meta or {}))))
    missing = set(sae.state_dict()) - set(weights)
    if missing:
        raise UserError(f"SAE weights lack {', '.join(sorted(missing))}")
    try:
        sae.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    except RuntimeError as e:  # a tensor of the wrong shape
        raise UserError(f"SAE weights do not fit together: {str(e).splitlines()[-1].strip()[:200]}") from None
    return sae


# sparsify cfg.json fields (SparseCoderConfig plus d_in) that leave a TopK SAE's inference unchanged, and
# those that change it with the value under which we can compute it exactly.
SPARSIFY_INERT = {"expansion_factor", "normalize_decoder", "num_latents", "k", "multi_topk", "d_in", "hookpoint"}
SPARSIFY_MATH = {"activation": "topk", "transcode": False, "skip_connection": False, "signed": False}
SPARSIFY_TENSORS = {"encoder.weight", "encoder.bias", "W_dec", "b_dec"}


def _sparsify(p: Path):
    """sparsify (EleutherAI) TopK SAE: relu(encoder(x - b_dec)), top-k, then @ W_dec + b_dec. groupmax (one
    latent per group), transcoders (they predict another module's output), skip connections and signed
    activations compute something else and are refused, as is any field or tensor we do not know."""
    from sae_lens import TopKSAE, TopKSAEConfig

    cfg = json.loads((p / "cfg.json").read_text())
    if not isinstance(cfg, dict):
        raise UserError(f"{p}/cfg.json is not a JSON object")
    for field, ok in SPARSIFY_MATH.items():
        if cfg.get(field, ok) != ok:
            what = {"transcode": "a transcoder (it reads one module and predicts another's output)",
                    "skip_connection": "an SAE with a skip connection (W_skip adds a linear map of its input)"}
            raise UserError(f"{p}: sparsify cfg.json {field}: {json.dumps(cfg[field])} is not supported"
                            f"{' (' + what[field] + ')' if field in what else ''}; only {field}: {json.dumps(ok)} "
                            f"loads exactly")
    unknown = sorted(set(cfg) - SPARSIFY_INERT - set(SPARSIFY_MATH))
    if unknown:
        raise UserError(f"{p}: sparsify cfg.json field(s) {', '.join(unknown)} unknown here and may change what "
                        f"the SAE computes; refusing rather than ignoring them")
    w = load_file(str(p / "sae.safetensors"))
    extra, missing = sorted(set(w) - SPARSIFY_TENSORS), sorted(SPARSIFY_TENSORS - set(w))
    if extra or missing:
        raise UserError(f"{p}/sae.safetensors " + (f"holds tensor(s) {', '.join(extra)} that" if extra else
                        f"lacks tensor(s) {', '.join(missing)} that") + " a sparsify TopK SAE "
                        + ("does not have" if extra else "has"))
    if "k" not in cfg:
        raise UserError(f"{p}/cfg.json names no k")
    enc = w["encoder.weight"]
    return _build(TopKSAEConfig, TopKSAE, {"W_enc": enc.T.contiguous(), "b_enc": w["encoder.bias"],
                                           "W_dec": w["W_dec"], "b_dec": w["b_dec"]}, _sparsify_meta(p, cfg),
                  d_in=enc.shape[1], d_sae=enc.shape[0], k=int(cfg["k"]), apply_b_dec_to_input=True)


SPARSIFY_HOOKPOINT = re.compile(r"(?:[\w.]+\.)?(?:layers|h)\.(\d+)(?:\.(mlp|self_attn|attn))?")
SPARSIFY_HOOKS = {None: "resid_post", "mlp": "mlp_out", "self_attn": "attn_out", "attn": "attn_out"}


def _sparsify_meta(p: Path, cfg: dict) -> dict:
    """Hook and model of a sparsify SAE: sparsify names each SAE's folder after the module it hooks
    (``layers.15``: the output of block 15, TransformerLens' resid_post; ``layers.15.mlp``: mlp_out), and
    the run's config.json one folder up names the model."""
    meta = {}
    run = p.parent / "config.json"
    if run.is_file():
        try:
            model = json.loads(run.read_text()).get("model")
        except (json.JSONDecodeError, AttributeError):
            model = None
        if isinstance(model, str) and model:
            meta["model_name"] = model
    for where, name in (("cfg.json hookpoint", cfg.get("hookpoint")), ("folder name", p.name)):
        m = SPARSIFY_HOOKPOINT.fullmatch(name or "")
        if m:
            return {**meta, "hook_name": f"blocks.{m.group(1)}.hook_{SPARSIFY_HOOKS[m.group(2)]}",
                    "hook_source": f"sparsify {where} {name}"}
    return meta


# The tensors each dictionary_learning class saves in ae.pt (its state_dict). A tensor outside its class's
# set could change the math we would not compute, so it is refused by name rather than dropped.
_TOPK = frozenset({"encoder.weight", "encoder.bias", "decoder.weight", "b_dec", "k", "threshold"})
DL_TENSORS = {"AutoEncoder": frozenset({"encoder.weight", "encoder.bias", "decoder.weight", "bias"}),
              "AutoEncoderTopK": _TOPK, "BatchTopKSAE": _TOPK,
              "JumpReluAutoEncoder": frozenset({"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}),
              "MatryoshkaBatchTopKSAE": frozenset({"W_enc", "b_enc", "W_dec", "b_dec", "k", "threshold", "group_sizes"})}
DL_OPTIONAL = {"AutoEncoderTopK": {"k", "threshold"}}  # early AutoEncoderTopK saved neither (k: config.json)
DL_SPELLINGS = {"MatroyshkaBatchTopKSAE": "MatryoshkaBatchTopKSAE"}  # the class's first spelling
DL_CLASSES = tuple(DL_TENSORS)


def _dl_class(ae: Path, sd: dict, named) -> str:
    """The dictionary_learning class of a state dict: ``config.json``'s ``trainer.dict_class`` when
    present (checked against the tensors), else the one class whose tensors these are."""
    keys = set(sd)
    if named is not None:
        cls = DL_SPELLINGS.get(named, named)
        if cls not in DL_TENSORS:
            raise UserError(f"{ae}: dictionary_learning dict_class {named!r} is not supported "
                            f"(supported: {', '.join(DL_CLASSES)})")
        want = DL_TENSORS[cls]
        extra, missing = keys - want, want - keys - DL_OPTIONAL.get(cls, set())
        if extra:
            raise UserError(f"{ae} holds tensor(s) {', '.join(sorted(extra))} that dictionary_learning's {cls} "
                            f"does not have; refusing rather than ignoring them")
        if missing:
            raise UserError(f"{ae} lacks tensor(s) {', '.join(sorted(missing))} of dictionary_learning's {cls}")
        return cls
    fits = [c for c, want in DL_TENSORS.items() if want - DL_OPTIONAL.get(c, set()) <= keys <= want]
    if fits == ["AutoEncoderTopK", "BatchTopKSAE"]:
        raise UserError(f"{ae}: AutoEncoderTopK or BatchTopKSAE? They encode differently; put the run's "
                        f"config.json (trainer.dict_class) beside ae.pt")
    if not fits:
        raise UserError(f"{ae}: unknown dictionary_learning layout (tensors: {', '.join(sorted(keys)[:8])}); "
                        f"supported classes: {', '.join(DL_CLASSES)}")
    return fits[0]


def _dictionary_learning(folder: Path, ae: Path):
    """dictionary_learning (Marks et al.) AutoEncoder, AutoEncoderTopK, BatchTopKSAE, JumpReluAutoEncoder
    or MatryoshkaBatchTopKSAE, computing what the class's ``encode``/``decode`` compute after its
    ``from_pretrained``.

    AutoEncoderTopK and BatchTopKSAE store the same tensors, but the first keeps each token's top k and
    the second, at inference, every activation above its learnt threshold; ``config.json``'s
    ``trainer.dict_class`` decides. A Matryoshka SAE at inference has every group active, so it is a
    BatchTopKSAE in W_enc/W_dec layout."""
    from sae_lens import JumpReLUSAE, JumpReLUSAEConfig, StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig

    try:
        sd = torch.load(ae, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle with code in it, or not a torch file
        raise UserError(f"{ae} is not a plain tensor state dict (refused to unpickle it): {str(e).splitlines()[0][:150]}") from None
    if not isinstance(sd, dict):
        raise UserError(f"{ae} is not a state dict (it holds a {type(sd).__name__})")
    if isinstance(sd.get("ae"), dict):  # trainSAE's backup_steps file: biases not yet rescaled by norm_factor
        raise UserError(f"{ae} is a training backup (step {sd.get('step')}), not a finished SAE: its biases "
                        f"lack the activation norm scaling applied at the end of training")
    cfg = {}
    if (folder / "config.json").is_file():
        cfg = json.loads((folder / "config.json").read_text()).get("trainer", {})
    meta = _dl_meta(folder, cfg)
    cls = _dl_class(ae, sd, cfg.get("dict_class"))
    if "k" in sd and isinstance(cfg.get("k"), int) and int(sd["k"]) != cfg["k"]:
        raise UserError(f"{ae}: its k {int(sd['k'])} and config.json trainer.k {cfg['k']} differ")
    if cls == "JumpReluAutoEncoder":  # x @ W_enc + b_enc (no b_dec subtraction), kept above each threshold
        return _build(JumpReLUSAEConfig, JumpReLUSAE, {k: sd[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold")},
                      meta, d_in=sd["W_enc"].shape[0], d_sae=sd["W_enc"].shape[1], apply_b_dec_to_input=False)
    if cls == "MatryoshkaBatchTopKSAE":
        w = {k: sd[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec")}
    else:
        enc, dec = sd["encoder.weight"], sd["decoder.weight"]
        w = {"W_enc": enc.T.contiguous(), "b_enc": sd["encoder.bias"], "W_dec": dec.T.contiguous(),
             "b_dec": sd["bias" if cls == "AutoEncoder" else "b_dec"]}
    d_in, d_sae = w["W_enc"].shape
    if cls in ("BatchTopKSAE", "MatryoshkaBatchTopKSAE"):  # relu(...) kept above the threshold: JumpReLU's formula
        th = torch.as_tensor(sd["threshold"]).float()
        if th.numel() != 1 or float(th) < 0:
            raise UserError(f"{ae}: the {cls} threshold was never set (-1: training did not finish)")
        return _build(JumpReLUSAEConfig, JumpReLUSAE, {**w, "threshold": th.expand(d_sae).contiguous()}, meta,
                      d_in=d_in, d_sae=d_sae, apply_b_dec_to_input=True)
    if cls == "AutoEncoderTopK":  # relu(encoder(x - b_dec)), top-k
        if "k" not in sd and not isinstance(cfg.get("k"), int):
            raise UserError(f"{ae}: an AutoEncoderTopK whose k is in neither ae.pt nor config.json trainer.k")
        k = int(sd["k"]) if "k" in sd else cfg["k"]
        return _build(TopKSAEConfig, TopKSAE, w, meta, d_in=d_in, d_sae=d_sae, k=k, apply_b_dec_to_input=True)
    # AutoEncoder: relu(encoder(x - bias)), decoder(f) + bias; from_pretrained scales each decoder column to
    # unit norm and the encoder row by the same factor (the April-update trainer leaves them free), and so do we
    sae = _build(StandardSAEConfig, StandardSAE, w, meta, d_in=d_in, d_sae=d_sae, apply_b_dec_to_input=True)
    sae.fold_W_dec_norm()
    return sae


DL_SUBMODULE = re.compile(r"(resid_post|resid_out|resid_pre|mlp_out|attn_out)_layer_?(\d+)")


def _dl_meta(folder: Path, trainer: dict) -> dict:
    """Hook and model of a dictionary_learning SAE from its config.json (``trainer.layer``,
    ``trainer.submodule_name`` such as ``resid_post_layer_3``, ``trainer.lm_name``), else from the
    folder names its releases use (``resid_out_layer3/trainer_0``)."""
    meta = {"model_name": trainer["lm_name"]} if isinstance(trainer.get("lm_name"), str) else {}
    sub = trainer.get("submodule_name")
    m = DL_SUBMODULE.fullmatch(sub) if isinstance(sub, str) else None
    hook = None if m is None else "resid_post" if m.group(1) == "resid_out" else m.group(1)
    if isinstance(trainer.get("layer"), int):
        layer = trainer["layer"]
        if m and int(m.group(2)) != layer:
            raise UserError(f"{folder}: config.json trainer.layer {layer} and submodule_name {sub} name different layers")
        src = f"dictionary_learning config.json trainer.layer {layer}" + (f", submodule_name {sub}" if m else "")
    elif m:
        layer, src = int(m.group(2)), f"dictionary_learning config.json submodule_name {sub}"
    else:
        for name in (folder.name, folder.parent.name):
            m = DL_SUBMODULE.fullmatch(name)
            if m:
                hook = "resid_post" if m.group(1) == "resid_out" else m.group(1)
                layer, src = int(m.group(2)), f"dictionary_learning folder name {name}"
                break
        else:
            return meta
    if hook is None:  # a layer without a readable hook: the residual stream, said so in the source
        hook, src = "resid_post", f"{src}; hook resid_post assumed"
    return {**meta, "hook_name": f"blocks.{layer}.hook_{hook}", "hook_source": src}


def check_latents(latents, d_sae: int) -> None:
    """Every latent index must exist in the SAE."""
    bad = [j for j in latents if not 0 <= j < d_sae]
    if bad:
        raise UserError(f"latent {bad[0]} is out of range: the SAE has latents 0..{d_sae - 1}")


def check_fits(sae, model, layer: int | None, hook: str | None) -> None:
    """The SAE must read a hook the model has (when its layer is known), at the model's width (else
    every number is garbage)."""
    if layer is not None:
        model.hook_name(layer, hook)
    if sae.cfg.d_in != model.d_model:
        raise UserError(f"SAE d_in {sae.cfg.d_in} does not match {model.spec}'s d_model {model.d_model}")


TL_HOOK = re.compile(r"blocks\.(\d+)\.hook_(\w+)")
NO_LAYER = ("names no layer (no blocks.L.hook_* hook_name in cfg.json, no sparsify layers.N folder, no "
            "dictionary_learning trainer.layer)")


class Where(NamedTuple):
    """The layer and hook an SAE reads, and where that was read (printed by every command)."""

    layer: int
    hook: str
    source: str

    def __str__(self) -> str:
        return f"layer {self.layer}, hook {self.hook} (from {self.source})"


def sae_where(sae, layer: int = -1, hook_name: str = "", required: bool = True) -> Where | None:
    """The layer and hook an SAE reads: from its metadata (SAELens hook_name; what the loader read from a
    sparsify folder name or a dictionary_learning config.json), or from ``--layer``/``--hook-name`` when
    the metadata names none. A flag that contradicts the metadata is an error, not an override: an SAE
    read at another layer than it was trained on gives numbers that mean nothing. ``required=False``:
    None when nothing names a layer (commands that read no activations)."""
    meta = sae.cfg.metadata
    name = (meta.get("hook_name") if meta is not None else None) or ""
    src = (meta.get("hook_source") if meta is not None else None) or f"SAELens cfg.json hook_name {name}"
    flag = None
    if hook_name:
        f = TL_HOOK.fullmatch(hook_name)
        if not f:
            raise UserError(f"--hook-name must be a TransformerLens name like blocks.15.hook_resid_post, got {hook_name!r}")
        if layer >= 0 and layer != int(f.group(1)):
            raise UserError(f"--layer {layer} and --hook-name {hook_name} name different layers")
        flag = Where(int(f.group(1)), f.group(2), f"--hook-name {hook_name}")
    elif layer >= 0:
        flag = Where(layer, "", f"--layer {layer}")
    m = TL_HOOK.fullmatch(name)
    if m:
        have = Where(int(m.group(1)), m.group(2), src)
        if flag and (flag.layer != have.layer or flag.hook not in ("", have.hook)):
            raise UserError(f"{flag.source} conflicts with the SAE's {name} (from {src})")
        return have
    if flag:
        return flag._replace(hook=flag.hook or "resid_post", source=flag.source + ("" if flag.hook else "; hook resid_post"))
    if not required:
        return None
    what = f"'s hook_name {name!r} is no blocks.L.hook_* name" if name else f" {NO_LAYER}"
    raise UserError(f"the SAE{what}; pass --layer or --hook-name")


def sae_layer(sae, layer: int = -1) -> tuple[int, str]:
    """(layer, hook) of :func:`sae_where`, for scripts that need no source."""
    w = sae_where(sae, layer)
    return w.layer, w.hook


def check_mined(where: Where | None, manifest: dict) -> None:
    """Mined examples must come from the layer and hook the SAE reads (a folder mined with --layer 3
    shown as layer 2 would put the wrong tokens on the page)."""
    c = manifest.get("config", {})
    if where is not None and "layer" in c and (c["layer"], c.get("hook", where.hook)) != (where.layer, where.hook):
        raise UserError(f"the examples were mined at layer {c['layer']} hook {c.get('hook')}, but the SAE reads {where}")


def sae_model(given: str, sae, log=print, flag: str = "--model") -> str:
    """The model spec a command runs: ``given`` when the user passed one (with a warning when it is not
    the model the SAE names: a fine-tune of that model is expected, another model is likely a mistake),
    else the model the SAE names (our ``persona_sae.model`` spec, else ``model_name``; a hub id we pull
    becomes its alias), else smollm2."""
    meta = sae.cfg.metadata
    ours = (meta.get("persona_sae") if meta is not None else None) or {}
    named = (ours.get("model") if isinstance(ours, dict) else None) or (meta.get("model_name") if meta is not None else None)
    if not named:
        return given or M.DEFAULT_MODEL
    spec = M.alias_of(str(named))
    if not given:
        try:
            M.resolve(spec)
        except UserError:
            raise UserError(f"the SAE was trained on {named!r} (its cfg.json model_name), which is no model spec "
                            f"here; pass {flag}") from None
        log(f"model {spec} (the one the SAE names)")
        return spec
    if M.root_model(M.alias_of(given)) != M.root_model(spec):
        log(f"warning: {flag} {given} is not the model the SAE names ({named}); fine for a fine-tune of it, "
            f"meaningless for another model")
    return given


def direct_logits(model, sae, latents: list[int], chunk: int = 1024):
    """Each decoder direction through the final norm's scale and the unembedding: ``[chunk, vocab]``
    blocks of the logit change a unit of the latent writes (a cheap look at what it *writes*). In chunks
    of latents: all at once is [latents, vocab], 13 GB for 65,536 latents and SmolLM2's 49,152 tokens."""
    hf = model.hf
    W_U = hf.get_output_embeddings().weight.detach().float()  # [vocab, d]
    norm = getattr(getattr(hf, "model", hf), "norm", None)
    scale = norm.weight.detach().float() if norm is not None and hasattr(norm, "weight") else 1.0
    W_dec = sae.W_dec.detach().float()
    for s in range(0, len(latents), chunk):
        yield (W_dec[latents[s:s + chunk]] * scale) @ W_U.T


def logit_lens(model, sae, latents: list[int], k: int = 5, chunk: int = 1024) -> tuple[list[list[str]], list[list[str]]]:
    """Tokens each decoder direction promotes and suppresses most (see :func:`direct_logits`)."""
    top, bot = [], []
    for logits in direct_logits(model, sae, latents, chunk):
        top += logits.topk(k, dim=1).indices.tolist()
        bot += (-logits).topk(k, dim=1).indices.tolist()
    dec = lambda ids: [model.tokenizer.decode([i]) for i in ids]  # noqa: E731
    return [dec(t) for t in top], [dec(b) for b in bot]


class LogitEffects(NamedTuple):
    """One latent's direct logit effects: the k most promoted tokens with their logit change (descending),
    the k most suppressed (most negative first), and a histogram over the whole vocabulary."""

    pos_ids: list[int]
    pos_values: list[float]
    neg_ids: list[int]
    neg_values: list[float]
    hist_heights: list[int]
    hist_centres: list[float]


def logit_effects(model, sae, latents: list[int], k: int = 10, bins: int = 40, chunk: int = 1024) -> list[LogitEffects]:
    """:func:`logit_lens` with the values, and each latent's histogram of logit changes over the
    vocabulary in ``bins`` equal bins between its min and max (centres given)."""
    out = []
    for logits in direct_logits(model, sae, latents, chunk):
        top, bot = logits.topk(k, dim=1), logits.topk(k, dim=1, largest=False)
        for r, row in enumerate(logits):
            lo, hi = float(row.min()), float(row.max())
            heights = torch.histc(row, bins=bins, min=lo, max=hi) if hi > lo else torch.zeros(bins)
            width = (hi - lo) / bins
            out.append(LogitEffects(top.indices[r].tolist(), top.values[r].tolist(), bot.indices[r].tolist(),
                                    bot.values[r].tolist(), [int(h) for h in heights.tolist()],
                                    [lo + (i + 0.5) * width for i in range(bins)]))
    return out


@torch.no_grad()
def nearest_latents(sae, latents: list[int], n: int = 8, chunk: int = 1024) -> list[list[tuple[int, float]]]:
    """Per latent, the ``n`` other latents whose decoder directions have the largest cosine with its
    own, best first: what it writes into the residual stream most alike (Neuronpedia's similar features)."""
    W = sae.W_dec.detach().float()
    W = W / W.norm(dim=1, keepdim=True).clamp(min=1e-12)
    out = []
    for c in range(0, len(latents), chunk):
        idx = torch.tensor(latents[c:c + chunk], dtype=torch.long)
        cos = W[idx] @ W.T
        cos[torch.arange(len(idx)), idx] = -float("inf")
        v, i = cos.topk(min(n, W.shape[0] - 1), dim=1)
        out += [list(zip(r.tolist(), x.tolist())) for r, x in zip(i, v)]
    return out


def decoder_rows(sae) -> torch.Tensor:
    """What one unit of each latent adds to the reconstruction: W_dec's rows, divided by their norms when
    the SAE rescales its activations by them (sae-lens' rescale_acts_by_decoder_norm)."""
    W = sae.W_dec.detach().float()
    if getattr(sae.cfg, "rescale_acts_by_decoder_norm", False):
        W = W / W.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return W


def persona_cosines(sae, directions) -> dict[str, torch.Tensor]:
    if directions is None:
        return {}
    W = sae.W_dec.detach().float()
    W = W / W.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return {t: W @ v.float() for t, v in directions.vectors.items()}


class OpenSAE(NamedTuple):
    """An SAE ready to read a model: the SAE, its checksum, the hook it reads, the model spec it runs on
    and (when loaded) the model."""

    sae: object
    sha256: str
    layer: int
    hook: str
    model: object = None
    where: Where | None = None
    model_spec: str = ""


def open_sae(spec: str, model: str | None = None, layer: int = -1, hook_name: str = "", dtype: str = "float32",
             log=print, distributed: bool = False, latents=(), flag: str = "--model", load: bool = True) -> OpenSAE:
    """The setup every SAE command shares: load, checksum, check ``latents`` are in range, find the layer
    (printed with its source), pick the model (``model`` "": the one the SAE names, see :func:`sae_model`),
    load it and check the SAE fits it. Bad SAE specs and latents fail before the (slow) model load.
    ``model`` None: no model and no layer needed (``label set``); ``load=False``: resolve, load later with
    :func:`with_model`. ``distributed``: load the model once per node under torchrun."""
    sae = load_sae(spec)
    check_latents(latents, sae.cfg.d_sae)
    sha = sae_checksum(sae)
    if model is None:
        return OpenSAE(sae, sha, -1, "", where=sae_where(sae, layer, hook_name, required=False))
    w = sae_where(sae, layer, hook_name)
    log(f"SAE reads {w}")
    o = OpenSAE(sae, sha, w.layer, w.hook, where=w, model_spec=sae_model(model, sae, log, flag))
    return with_model(o, dtype, log, distributed) if load else o


def with_model(o: OpenSAE, dtype: str = "float32", log=print, distributed: bool = False) -> OpenSAE:
    """Load the model of an :func:`open_sae` result and check the SAE fits it."""
    m = D.load_model(o.model_spec, dtype, log) if distributed else load_model(o.model_spec, dtype=dtype, log=log)
    check_fits(o.sae, m, o.layer, o.hook)
    return o._replace(model=m)
