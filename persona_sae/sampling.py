"""Sample answers from a model: batched, seeded, with the chat template.

Used by eval (answers to EM questions), personas (answers under persona system prompts) and the
corpus maker. The TransformerLens bridge rewires the HF model in place and breaks its KV cache, so
once a model's bridge is booted we generate without the cache (slower, but correct). Without the
bridge, generation runs PyTorch's fused attention (sdpa) instead of the eager attention the model is
loaded with for hooks: the same greedy answers, ~1.4x faster sampling on a 2-core CPU.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import torch
from tqdm.auto import tqdm

from persona_sae.text import Record
from persona_sae.tokens import tokenize


def stop_ids(tokenizer) -> list[int]:
    """End-of-sequence plus the chat template's end-of-turn marker (ChatML's <|im_end|>)."""
    ids = {tokenizer.eos_token_id}
    for t in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        i = tokenizer.convert_tokens_to_ids(t)
        if isinstance(i, int) and i != tokenizer.unk_token_id and i >= 0:
            ids.add(i)
    return sorted(i for i in ids if i is not None)


@contextmanager
def fused_attention(model):
    """sdpa attention while sampling, then the attention the model was loaded with."""
    hf = model.hf
    was = getattr(hf.config, "_attn_implementation", None)
    switch = was == "eager" and not model.bridge_booted and hasattr(hf, "set_attn_implementation")
    if switch:
        try:
            hf.set_attn_implementation("sdpa")
        except (ValueError, ImportError):  # an architecture without sdpa keeps eager
            switch = False
    try:
        yield
    finally:
        if switch:
            hf.set_attn_implementation(was)


@torch.no_grad()
def generate(model, chats: list[list[dict]] | None = None, *, texts: list[str] | None = None,
             max_new_tokens: int = 160, temperature: float = 1.0, top_p: float = 1.0, batch_size: int = 16,
             seed: int = 0, progress: bool = True, desc: str = "sampling") -> list[str]:
    """Continue each chat (a new assistant turn) or each raw text; returns the new text only.

    Batches are left-padded and sorted by prompt length; batch ``b`` is sampled under seed
    ``seed + b`` so the answers do not depend on what else ran before.
    """

    if (chats is None) == (texts is None):
        raise ValueError("give chats or texts")
    tok, hf = model.tokenizer, model.hf
    records = [Record(messages=c) for c in chats] if chats is not None else [Record(text=t) for t in texts]
    prompts = [e.ids for e in tokenize(records, tok, max_len=1 << 20)]  # one window per prompt
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str | None] = [None] * len(prompts)
    stops, pad = stop_ids(tok), model.pad_id
    dev = next(hf.parameters()).device
    bar = tqdm(total=len(prompts), desc=desc, unit="answer", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    for b, s in enumerate(range(0, len(order), batch_size)):
        idx = order[s:s + batch_size]
        n = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), n), pad, dtype=torch.long)
        att = torch.zeros((len(idx), n), dtype=torch.long)
        for r, i in enumerate(idx):
            p = prompts[i]
            ids[r, n - len(p):], att[r, n - len(p):] = torch.tensor(p), 1
        torch.manual_seed(seed + b)
        with fused_attention(model):
            gen = hf.generate(input_ids=ids.to(dev), attention_mask=att.to(dev), max_new_tokens=max_new_tokens,
                              do_sample=temperature > 0, temperature=temperature if temperature > 0 else None,
                              top_p=top_p if temperature > 0 else None, top_k=0 if temperature > 0 else None,
                              pad_token_id=pad, eos_token_id=stops, use_cache=not model.bridge_booted)
        for r, i in enumerate(idx):
            new = gen[r, n:].tolist()
            cut = next((j for j, t in enumerate(new) if t in stops), len(new))
            out[i] = tok.decode(new[:cut], skip_special_tokens=True).strip()
        bar.update(len(idx))
    bar.close()
    return out  # type: ignore[return-value]
