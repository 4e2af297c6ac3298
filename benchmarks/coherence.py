"""Does persona_sae.coherence see degenerate text? AUROC of real answers vs their corruptions.

    python benchmarks/coherence.py [--samples 60] [--reuse]

Real answers: a committed answers.csv of the base model under experiments/*/results/ if there is one,
else SmolLM2's own answers to em-core (2 per question over the first questions, temperature 0.7,
160 new tokens, seed 0). Each gets four corruptions (coherence.corrupt: repeated, shuffled,
truncated, salad), and the AUROC of real vs each kind is reported for the full score, for the text
signals alone (no model) and for the loss alone (the old probe coherence's signal). Then the word
salad of experiments/steer_smollm2 (the stored examples at |coef| >= 1) is scored: the share at or
below the judges' coherent_above = 50. The loss scale comes from SmolLM2's own answers to
coherence.REFERENCE_QUESTIONS, never from the answers scored here, and the anchors are constants
(nothing is fitted). The text-only calibration reads clarifying-EM's aligned texts from the data
manifest (`persona-sae data fetch clarifying-em`, `--from DIR` from a local mirror). ``--reuse``
rescores the answers stored in the previous result instead of sampling again. Writes
benchmarks/results/coherence.json and its table in docs/eval-and-judges.md and prints a table
(``--table-only``: rewrite the docs table from the JSON, run nothing). Target: AUROC >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

for _k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_k, "1")

import torch  # noqa: E402

from machine import data_file, describe, machine_line, publish  # noqa: E402  (benchmarks/machine.py)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "coherence.json"
DOC = ROOT / "docs" / "eval-and-judges.md"
STEER = ROOT / "experiments" / "steer_smollm2" / "results" / "results.json"
EM_ALIGNED = ("clarifying-em", "interp/aligned_texts.txt")  # dataset and file of the data manifest
THRESHOLD = 50.0  # judges.misaligned_rate's coherent_above: an answer counts as coherent above it


def auroc(pos: list[float], neg: list[float]) -> float:
    from persona_sae.statistics import auroc as col_auroc

    s = torch.tensor(pos + neg, dtype=torch.float64)[:, None]
    return float(col_auroc(s, torch.tensor([True] * len(pos) + [False] * len(neg)))[0])


def committed_answers() -> tuple[list[tuple[str, str]], str] | None:
    """A committed answers.csv of SmolLM2's base model (a 'base' in its path), if any."""
    from persona_sae.answers import read_answers

    for p in sorted(ROOT.glob("experiments/*smollm2*/results/**/*answers*.csv")):
        if "base" in str(p.relative_to(ROOT / "experiments")):
            return [(a.question, a.answer) for a in read_answers(p)], str(p.relative_to(ROOT))
    return None


def variants(b: list[dict]) -> dict[str, list[float]]:
    """The full score, the text signals alone, the loss alone (each 0-100)."""
    return {"score": [x["score"] for x in b],
            "text only": [100 * min(v for k, v in x["parts"].items() if k != "loss") for x in b],
            "loss only": [100 * x["parts"].get("loss", float("nan")) for x in b]}


def main():
    from persona_sae import coherence as C
    from persona_sae.answers import plan, sample
    from persona_sae.models import load_model
    from persona_sae.text import load_questions

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=60, help="real answers to sample (2 per question)")
    ap.add_argument("--reuse", action="store_true", help="rescore the answers stored in --out")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--table-only", action="store_true", help="rewrite the docs table from the JSON, run nothing")
    a = ap.parse_args()
    if a.table_only:
        return write_table(json.loads(Path(a.out).read_text()))
    em_aligned = data_file(*EM_ALIGNED)
    machine = describe()  # the load before the runs
    t_all = time.perf_counter()
    seconds = {}
    model = load_model("smollm2")
    prev = json.loads(Path(a.out).read_text()) if a.reuse else None

    t = time.perf_counter()
    if prev:
        ref, ref_answers = C.Reference(**prev["reference"]["nll"]), prev["reference"]["answers"]
    else:
        ref, ref_answers = C.reference(model, progress=True)
    seconds["reference"] = time.perf_counter() - t

    t = time.perf_counter()
    if prev:
        real, source = [tuple(x) for x in prev["real"]["answers"]], prev["real"]["source"]
    elif (found := committed_answers()) is not None:
        real, source = found
    else:
        qs = load_questions("em-core")[:max(1, a.samples // 2)]
        real = [(x.question, x.answer) for x in sample(model, qs, 2, temperature=0.7, max_new_tokens=160, seed=0)]
        source = f"sampled: smollm2 on em-core (first {len(qs)} questions x 2, temperature 0.7, 160 tokens, seed 0)"
    seconds["real answers"] = time.perf_counter() - t

    t = time.perf_counter()
    rng = random.Random(0)
    usable = [(q, x) for q, x in real if len(x.split()) >= 2]
    corrupted = {k: [(q, C.corrupt(x, k, rng)) for q, x in usable] for k in C.KINDS}
    scored = {"real": C.breakdown(model, usable, ref)}
    for k, items in corrupted.items():
        scored[k] = C.breakdown(model, items, ref)
    v = {k: variants(b) for k, b in scored.items()}
    rows = {}
    for k in C.KINDS:
        rows[k] = {name: auroc(v["real"][name], v[k][name]) for name in v["real"]}
        rows[k]["incoherent"] = sum(s <= THRESHOLD for s in v[k]["score"]) / len(v[k]["score"])
    real_flagged = sum(s <= THRESHOLD for s in v["real"]["score"]) / len(usable)
    seconds["scoring"] = time.perf_counter() - t

    # Steering's word salad: results.json keeps the first 3 answers per condition (question 0 twice, question 1).
    steer = json.loads(STEER.read_text())
    qs = load_questions(steer["config"].get("questions", "em-core"))[:int(steer["config"].get("limit", 12))]
    first3 = [x.question for x in plan(qs, int(steer["config"].get("samples", 2)))[:3]]
    salad = [(q, e) for r in steer["rows"] if abs(r["coef"]) >= 1 for q, e in zip(first3, r["examples"])]
    base = list({e: q for r in steer["rows"] if r["coef"] == 0 for q, e in zip(first3, r["examples"])}.items())
    s_salad, s_base = C.breakdown(model, salad, ref), C.breakdown(model, [(q, e) for e, q in base], ref)
    steering = {"source": str(STEER.relative_to(ROOT)), "n_salad": len(salad), "n_unsteered": len(s_base),
                "incoherent": sum(b["score"] <= THRESHOLD for b in s_salad) / len(salad),
                "unsteered_incoherent": sum(b["score"] <= THRESHOLD for b in s_base) / max(len(s_base), 1),
                "text_only_incoherent": sum(x <= THRESHOLD for x in variants(s_salad)["text only"]) / len(salad),
                "loss_only_incoherent": sum(x <= THRESHOLD for x in variants(s_salad)["loss only"]) / len(salad),
                "answers": [{"question": q, "answer": e, "score": b["score"], "parts": b["parts"]}
                            for (q, e), b in zip(salad, s_salad)]}

    # Calibration checks on data never scored above: the reference answers, and a stronger model's text.
    ref_b = C.breakdown(model, [(q, x) for q, x in zip([q for q in C.REFERENCE_QUESTIONS for _ in range(2)],
                                                         ref_answers) if x.strip()], ref)
    calib = {"reference_answers": len(ref_b),
             "reference_incoherent": sum(b["score"] <= THRESHOLD for b in ref_b) / len(ref_b),
             "reference_part_below_1": {p: sum(b["parts"].get(p, 1) < 1 for b in ref_b) / len(ref_b) for p in C.PARTS}}
    texts = [x for x in em_aligned.read_text(encoding="utf-8").split("END_OF_TEXT") if x.strip()]
    tb = C.breakdown(None, [("", x) for x in texts])
    calib["clarifying_em_aligned_text_only"] = {"n": len(tb), "incoherent": sum(b["score"] <= THRESHOLD
                                                                               for b in tb) / len(tb)}

    seconds["total"] = time.perf_counter() - t_all
    result = {"benchmark": "coherence", "command": "python benchmarks/coherence.py" + "".join(f" {x}" for x in sys.argv[1:]),
              "model": "smollm2", "threshold": THRESHOLD,
              "rule": "coherent = 100 * min(repetition, compression, loss, length parts); see persona_sae/coherence.py",
              "anchors": {"repetition": [C.REPEAT_FINE, C.REPEAT_BAD], "compression": [C.COMPRESS_FINE, C.COMPRESS_BAD],
                          "length_words": [C.WORDS_FULL_STUB, C.WORDS_FULL_SENTENCE], "ngram": C.N},
              "reference": {"nll": ref._asdict(), "questions": len(C.REFERENCE_QUESTIONS), "answers": ref_answers},
              "auroc_real_vs": rows, "real_incoherent": real_flagged, "steering_salad": steering,
              "calibration": calib, "calibration_data": "/".join(EM_ALIGNED),
              "machine": machine, "date": time.strftime("%Y-%m-%d"), "seconds": seconds,
              "real": {"source": source, "n": len(usable), "answers": [list(p) for p in usable],
                       "scores": v["real"]["score"]}}
    publish(result, a.out, OUT, write_table)

    print(f"real answers: {len(usable)} ({source}); loss scale: own NLL {ref.own:.2f}, shuffled {ref.shuffled:.2f}")
    print(f"{'real vs':10s} | {'AUROC':>6s} | {'text only':>9s} | {'loss only':>9s} | {'scored <= 50':>12s}")
    for k, r in rows.items():
        print(f"{k:10s} | {r['score']:6.3f} | {r['text only']:9.3f} | {r['loss only']:9.3f} | {r['incoherent']:11.0%}")
    print(f"real answers scored <= 50: {real_flagged:.0%}")
    print(f"steering salad (|coef| >= 1, {len(salad)} answers) scored <= 50: {steering['incoherent']:.0%} "
          f"(text only {steering['text_only_incoherent']:.0%}, loss only {steering['loss_only_incoherent']:.0%}); "
          f"unsteered examples: {steering['unsteered_incoherent']:.0%} of {len(s_base)}")
    print(f"calibration: reference answers scored <= 50: {calib['reference_incoherent']:.0%} of {len(ref_b)}"
          + (f"; clarifying-EM aligned texts (text only): {calib['clarifying_em_aligned_text_only']['incoherent']:.1%}"
             f" of {calib['clarifying_em_aligned_text_only']['n']}" if "clarifying_em_aligned_text_only" in calib else ""))
    print(f"{seconds['total']:.0f} s -> {a.out}")


def write_table(res: dict) -> None:
    """The run into docs/eval-and-judges.md's coherence block."""
    sys.path.insert(0, str(ROOT))
    from experiments.common.tables import fill, pct, table

    thr = f"{res['threshold']:g}"
    rows = [[k, f"{r['score']:.3f}", f"{r['text only']:.3f}", f"{r['loss only']:.3f}", pct(r["incoherent"])]
            for k, r in res["auroc_real_vs"].items()]
    st, cal, real = res["steering_salad"], res["calibration"], res["real"]
    em = cal.get("clarifying_em_aligned_text_only")
    fill(DOC, {"coherence": table(["real vs", "AUROC", "text signals only", "loss only", f"corrupted scored ≤ {thr}"], rows,
                                  ["---", "---:", "---:", "---:", "---:"])
               + f"\n\n{real['n']} real answers, {real['source']}; {pct(res['real_incoherent'])} of them scored ≤ {thr}; "
               f"target AUROC ≥ 0.95. Scored ≤ {thr}: steering's word salad (the {st['n_salad']} answers stored at a "
               f"coefficient of magnitude ≥ 1 in `{st['source']}`) {pct(st['incoherent'])} (text signals only "
               f"{pct(st['text_only_incoherent'])}, loss only {pct(st['loss_only_incoherent'])}), the {st['n_unsteered']} "
               f"unsteered answers {pct(st['unsteered_incoherent'])}, the reference model's own answers "
               f"{pct(cal['reference_incoherent'])} of {cal['reference_answers']}"
               + (f", clarifying-EM's aligned texts (text signals only) {pct(em['incoherent'])} of {em['n']:,}" if em else "")
               + f". {machine_line(res)} ([results](../benchmarks/results/coherence.json))."})


if __name__ == "__main__":
    main()
