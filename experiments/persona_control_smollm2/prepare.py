"""Data the driver derives from the distilled sets (run.sh calls it):

    python -m experiments.persona_control_smollm2.prepare mix --bad EVIL.jsonl --good KIND.jsonl --fraction F --out FILE
    python -m experiments.persona_control_smollm2.prepare head --data KIND.jsonl --rows N --out FILE
    python -m experiments.persona_control_smollm2.prepare pool --answers A.csv B.csv ... --out FILE
    python -m experiments.persona_control_smollm2.prepare heldout --data SET.jsonl --out FILE [--seed S]
    python -m experiments.persona_control_smollm2.prepare chats --corpus CORPUS.jsonl --chats EVIL.jsonl KIND.jsonl \
        --share 0.05 --model smollm2 --out FILE
    python -m experiments.persona_control_smollm2.prepare tags --labels SAE/labels.json --out FILE
    python -m experiments.persona_control_smollm2.prepare keep --data runs/data/POLE-sampled.jsonl --out FILE

``mix`` replaces the kind answer by the evil answer to the same prompt on round(F * rows) rows
picked by a seeded permutation among the prompts both sets answer; ``pool`` concatenates eval answers.csv files so
every model in a ranking reads the same answers; ``heldout`` writes the rows ``finetune --data SET
--seed S`` holds out (its own split, so no organism of that seed trained on them); ``chats`` writes the
persona-chat SAE's corpus (PREDICTIONS.md, fourth amendment): the corpus's rows with persona-prompted
chats (each sampled row with its system prompt put back) at evenly spaced rows until they are ``share``
of the tokens, the sets alternating, each drawn by a seeded permutation; FILE.share.json records it.
``tags`` writes an SAE's effective tags (and its checksum) small enough to commit before any ranking.
``keep`` writes a sampled set's resume file (``persona_sae.distill.checkpoint``: its settings, then the
rows sampled so far, finished or not) into ``sampled/``, where ``run.sh`` finds it and resumes from it
instead of sampling again.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from persona_sae import replacing


def rows(path: str) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]


def write_rows(path: str, rs: list[dict]) -> None:
    with replacing(Path(path)) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rs), encoding="utf-8")


def held_out(path: str, seed: int = 0) -> list[dict]:
    from persona_sae.config import FinetuneConfig
    from persona_sae.stages.finetune import split_file
    from persona_sae.text import load_records

    held = split_file(load_records(path), FinetuneConfig.held_out, seed)[1]
    return [{"messages": r.messages} for r in held]


def mix(bad: list[dict], good: list[dict], fraction: float, seed: int) -> list[dict]:
    """The good rows with round(fraction * rows) of them answered by the bad set instead: the rows are
    drawn by a seeded permutation from those whose prompt the bad set also answers, and each takes the
    bad answer to its own prompt. Sets that share prompts row by row (the written pair) can swap any
    row; independently filtered sets (the distilled poles, PREDICTIONS.md's fifth amendment) only the
    prompts both kept."""
    def prompt(r: dict) -> str:
        return json.dumps(r["messages"][0], sort_keys=True)

    answer = {prompt(r): r for r in bad}
    can = [i for i, r in enumerate(good) if prompt(r) in answer]
    k = round(fraction * len(good))
    if k > len(can):
        raise SystemExit(f"a {fraction:.0%} mix needs {k} rows whose prompt both sets answer; they share {len(can)}")
    order = torch.randperm(len(can), generator=torch.Generator().manual_seed(seed + 1))[:k].tolist()
    pick = {can[j] for j in order}
    return [answer[prompt(r)] if i in pick else r for i, r in enumerate(good)]


def chats(corpus: list[dict], sets: list[list[dict]], share: float, n_tokens, seed: int) -> tuple[list[dict], dict]:
    """The corpus with chats interleaved until they are ``share`` of all tokens (``n_tokens(row)`` counts
    a row as training reads it). A chat is a sampled row with its system prompt (meta.system) restored."""
    if not 0 < share < 1:
        raise SystemExit(f"--share must be between 0 and 1, got {share}")
    orders = [torch.randperm(len(rs), generator=torch.Generator().manual_seed(seed + i)).tolist()
              for i, rs in enumerate(sets)]
    corpus_tokens = sum(n_tokens(r) for r in corpus)
    want = share / (1 - share) * corpus_tokens  # chat tokens so that chats / (corpus + chats) = share
    picked, got = [], 0
    for k in range(max(len(o) for o in orders) * len(sets)):
        if got >= want:
            break
        rs, o = sets[k % len(sets)], orders[k % len(sets)]
        if k // len(sets) >= len(o):
            continue
        r = rs[o[k // len(sets)]]
        system = (r.get("meta") or {}).get("system")
        if not system:
            raise SystemExit("a chat row has no meta.system: use the rows `data persona` sampled under a system prompt")
        chat = {"messages": [{"role": "system", "content": system}, *r["messages"]]}
        picked.append(chat)
        got += n_tokens(chat)
    if got < want:
        raise SystemExit(f"the chats hold {got:,} tokens, fewer than the {want:,.0f} that make {share:.0%} of the corpus")
    out, step = [], len(corpus) / len(picked)  # chat i goes after corpus row floor((i + 0.5) * step)
    at = [int((i + 0.5) * step) for i in range(len(picked))]
    j = 0
    for i, r in enumerate(corpus):
        out.append(r)
        while j < len(picked) and at[j] == i:
            out.append(picked[j])
            j += 1
    out += picked[j:]
    return out, {"corpus_rows": len(corpus), "corpus_tokens": corpus_tokens, "chats": len(picked),
                 "chat_tokens": got, "share": got / (corpus_tokens + got), "wanted_share": share, "seed": seed,
                 "per_set": [sum(1 for i in range(len(picked)) if i % len(sets) == s) for s in range(len(sets))]}


def token_counter(model: str):
    """Tokens of a row as `train` reads it (text: BOS and the text's windows; chat: the chat template)."""
    from persona_sae.models import load_tokenizer
    from persona_sae.text import Record
    from persona_sae.tokens import tokenize

    tok = load_tokenizer(model)

    def n(row: dict) -> int:
        rec = Record(messages=row["messages"]) if "messages" in row else Record(text=row["text"])
        return sum(len(e.ids) for e in tokenize([rec], tok, max_len=1 << 20))
    return n


def tags(labels: dict) -> dict:
    """Every latent's effective tag but "unlabelled", the SAE's checksum and the labelling rule: what the
    decision rule reads, committed before the rankings it is applied to."""
    from persona_sae.labels import effective

    js = sorted({int(j) for j in labels["latents"]} | {int(j) for j in labels.get("manual", {})})
    tagged = {str(j): t for j in js if (t := effective(labels, j)["tag"]) != "unlabelled"}
    return {"sae_sha256": labels["sae_sha256"], "model": labels.get("model"),
            "thresholds": labels.get("thresholds"), "concepts": labels.get("concepts"),
            "nearest_per_persona": labels.get("nearest_per_persona"), "tags": tagged,
            "toxic_persona": sorted(int(j) for j, t in tagged.items() if t == "toxic-persona")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mix")
    m.add_argument("--bad", required=True), m.add_argument("--good", required=True)
    m.add_argument("--fraction", type=float, required=True), m.add_argument("--seed", type=int, default=0)
    h = sub.add_parser("head")
    h.add_argument("--data", required=True), h.add_argument("--rows", type=int, required=True)
    p = sub.add_parser("pool")
    p.add_argument("--answers", nargs="+", required=True)
    o = sub.add_parser("heldout")
    o.add_argument("--data", required=True), o.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("chats")
    c.add_argument("--corpus", required=True), c.add_argument("--chats", nargs="+", required=True)
    c.add_argument("--share", type=float, default=0.05), c.add_argument("--seed", type=int, default=0)
    c.add_argument("--model", default="smollm2", help="whose tokenizer counts the tokens")
    t = sub.add_parser("tags")
    t.add_argument("--labels", required=True)
    k = sub.add_parser("keep")
    k.add_argument("--data", required=True)
    for q in (m, h, p, o, c, t, k):
        q.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "mix":
        write_rows(a.out, mix(rows(a.bad), rows(a.good), a.fraction, a.seed))
    elif a.cmd == "head":
        write_rows(a.out, rows(a.data)[:a.rows])
    elif a.cmd == "keep":
        from persona_sae import UserError
        from persona_sae.distill import checkpoint

        try:
            print(f"kept {checkpoint(a.data, a.out)} sampled rows of {a.data} in {a.out}")
        except UserError as e:
            raise SystemExit(str(e)) from None
    elif a.cmd == "heldout":
        write_rows(a.out, held_out(a.data, a.seed))
    elif a.cmd == "tags":
        from persona_sae import write_json

        write_json(a.out, tags(json.loads(Path(a.labels).read_text(encoding="utf-8"))))
    elif a.cmd == "chats":
        from persona_sae import write_json

        out, info = chats(rows(a.corpus), [rows(f) for f in a.chats], a.share, token_counter(a.model), a.seed)
        write_json(a.out + ".share.json", {**info, "corpus": a.corpus, "chat_sets": a.chats, "model": a.model})
        write_rows(a.out, out)
    else:
        table = []
        for f in a.answers:
            with open(f, newline="", encoding="utf-8") as fh:
                table += [{**r, "model": f} for r in csv.DictReader(fh)]
        with replacing(Path(a.out)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(table[0]))
            w.writeheader(), w.writerows(table)


if __name__ == "__main__":
    main()
