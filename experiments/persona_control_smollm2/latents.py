"""Bar (c) of PREDICTIONS.md, for every latent at once (summarize.py picks the toxic-persona one after
the rankings): how well does each latent of the shipped SAE separate

- the written pair's held-out rows: the 64 rows of evil-persona and kind-persona that the seed-0
  fine-tunes held out (the same prompts in both sets; ``finetune``'s own split, so no organism of
  seed 0 trained on them), each read as a user turn and an assistant turn, scored on the answer;
- clarifying-EM's misaligned from its aligned answers (all misaligned, a seeded sample of aligned, as
  `experiments/common/check_toxic.py --chat` reads them: an assistant turn, scored on its own tokens).

The base model reads every text (the SAE's model). AUROC of each latent's mean activation over the
answer tokens, misaligned (evil) positive; the last column is the evil persona direction itself.

    python -m experiments.persona_control_smollm2.latents --evil runs/data/evil-persona.jsonl \
        --kind runs/data/kind-persona.jsonl --out runs/latents.json
"""

from __future__ import annotations

import argparse
import random

import torch
from safetensors.torch import save_file

from experiments.common.check_toxic import MAIN_DATA, texts
from experiments.common.paths import SHIPPED_SAE, local
from experiments.persona_control_smollm2.prepare import held_out
from persona_sae import replacing, write_json
from persona_sae.labels import labels_path, read_labels
from persona_sae.latents import load_sae, sae_checksum, sae_layer
from persona_sae.models import load_model
from persona_sae.personas import cached
from persona_sae.statistics import auroc, text_scores
from persona_sae.text import Record


def scores(model, sae, layer, hook, direction, bad: list[Record], good: list[Record]) -> torch.Tensor:
    ts = text_scores(model, sae, {"bad": bad, "good": good}, layer, hook, max_len=512, probes=direction[None],
                     select="response")
    return auroc(ts.mean, torch.tensor([t == "bad" for t in ts.tags]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evil", required=True), ap.add_argument("--kind", required=True)
    ap.add_argument("--sae", default=str(SHIPPED_SAE))
    ap.add_argument("--n", type=int, default=400, help="clarifying-EM aligned answers sampled")
    ap.add_argument("--clarifying", default=MAIN_DATA, help="folder of misaligned_texts.txt and aligned_texts.txt")
    ap.add_argument("--out", required=True, help="JSON summary; the per-latent AUROCs go beside it (.safetensors)")
    a = ap.parse_args()
    sae = load_sae(a.sae)
    lab = read_labels(labels_path(a.sae), sae_checksum(sae))
    layer, hook = sae_layer(sae)
    model = load_model(lab["model"])
    d = cached(lab["persona_directions"], layer).vectors["evil"].float()
    evil, kind = ([Record(messages=r["messages"]) for r in held_out(f)] for f in (a.evil, a.kind))
    if [r.messages[0] for r in evil] != [r.messages[0] for r in kind]:
        raise SystemExit("the evil and kind sets do not share prompts row by row")
    bad = texts(local(f"{a.clarifying}/misaligned_texts.txt"))
    aligned = texts(local(f"{a.clarifying}/aligned_texts.txt"))
    good = random.Random(0).sample(aligned, min(a.n, len(aligned)))
    turn = lambda t: Record(messages=[{"role": "assistant", "content": t}])  # noqa: E731
    au = {"written": scores(model, sae, layer, hook, d, evil, kind),
          "clarifying": scores(model, sae, layer, hook, d, [turn(t) for t in bad], [turn(t) for t in good])}
    tensors = f"{a.out.removesuffix('.json')}.safetensors"
    with replacing(tensors) as tmp:
        save_file({k: v[:-1].contiguous().float() for k, v in au.items()}, str(tmp))
    write_json(a.out, {"sae": a.sae, "layer": layer, "n_written": [len(evil), len(kind)],
                       "n_clarifying": [len(bad), len(good)], "aurocs": tensors.rsplit("/", 1)[-1],
                       "direction": {k: float(v[-1]) for k, v in au.items()},
                       "oracle": {k: {"latent": int(v[:-1].argmax()), "auroc": float(v[:-1].max())}
                                  for k, v in au.items()}})


if __name__ == "__main__":
    main()
