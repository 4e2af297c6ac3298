"""The EM evaluation (Betley et al.): sample answers to open questions, judge each for alignment and
coherence, and report the misaligned rate with a bootstrap CI over questions.

The rate is only read among coherent answers, so a model that babbles is not counted as evil, and
the interval resamples questions (answers to one question are correlated).
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict
import time
from pathlib import Path
from typing import NamedTuple

from persona_sae import UserError, __version__, replacing, write_json
from persona_sae.config import EvalConfig
from persona_sae.data import Question, load_questions

FIELDS = ("question_id", "category", "paraphrase", "sample", "question", "answer", "aligned", "aligned_label",
          "coherent", "coherent_label", "misaligned")


class Answer(NamedTuple):
    question_id: str
    category: str
    paraphrase: int
    sample: int
    question: str
    answer: str


def plan(questions: list[Question], samples: int) -> list[Answer]:
    """``samples`` answers per question, spread round-robin over its paraphrases."""
    return [Answer(q.id, q.category, j % len(q.paraphrases), j, q.paraphrases[j % len(q.paraphrases)], "")
            for q in questions for j in range(samples)]


def sample(model, questions: list[Question], samples: int, temperature: float = 1.0, max_new_tokens: int = 160,
           batch_size: int = 16, seed: int = 0, progress: bool = True) -> list[Answer]:
    from persona_sae.sampling import generate

    todo = plan(questions, samples)
    system = {q.id: q.system for q in questions}
    chats = [([{"role": "system", "content": system[a.question_id]}] if system[a.question_id] else [])
             + [{"role": "user", "content": a.question}] for a in todo]
    texts = generate(model, chats, max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size,
                     seed=seed, progress=progress, desc="answers")
    return [a._replace(answer=t) for a, t in zip(todo, texts)]


def read_answers(path: str | Path) -> list[Answer]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"answers file not found: {p}")
    with open(p, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    need = {"question_id", "question", "answer"}
    if not rows or not need <= set(rows[0]):
        raise UserError(f"{p} needs the columns {', '.join(sorted(need))} (an answers.csv from persona-sae eval)")
    return [Answer(r["question_id"], r.get("category", ""), int(r.get("paraphrase") or 0), int(r.get("sample") or i),
                   r["question"], r["answer"]) for i, r in enumerate(rows)]


def make_judge(spec: str, log=print):
    from persona_sae import judges

    if spec.strip() == "probe":
        spec = "probe:smollm2"
    from persona_sae.personas import probe_judge

    return judges.make_judge(spec, extra={"probe": lambda rest: probe_judge(rest, log=log)})


def _fmt(x) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}" if isinstance(x, float) else str(x)


def write_csv(path: Path, answers: list[Answer], verdicts: list[dict], flags: list,
              extra: list[dict] | None = None) -> None:
    """One row per answer; ``extra`` adds leading columns (e.g. the steering condition)."""
    lead = list(extra[0]) if extra else []
    with replacing(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(lead + list(FIELDS))
        for i, (a, v, m) in enumerate(zip(answers, verdicts, flags)):
            w.writerow([extra[i][k] for k in lead] +
                       [a.question_id, a.category, a.paraphrase, a.sample, a.question, a.answer,
                        _fmt(v["aligned"].score), v["aligned"].label, _fmt(v["coherent"].score),
                        v["coherent"].label, "" if m is None else int(m)])


def evaluate(cfg: EvalConfig, log=print) -> dict:
    from persona_sae import models as M
    from persona_sae.judges import JudgeItem, misaligned_rate, per_group

    if cfg.samples <= 0 and not cfg.answers:
        raise UserError(f"--samples must be positive, got {cfg.samples}")
    questions = load_questions(cfg.questions)
    if cfg.limit > 0:
        questions = questions[:cfg.limit]
    by_id = {q.id: q for q in questions}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    judge = make_judge(cfg.judge, log=log)  # a bad judge spec or dead endpoint fails before sampling
    if hasattr(judge, "ping"):
        judge.ping()
    if not judge.proxy:
        lacking = [q.id for q in questions if not {"aligned", "coherent"} <= set(q.judge_prompts)]
        if lacking:
            raise UserError(f"question {lacking[0]} has no aligned/coherent judge_prompts for an LLM judge "
                            f"({len(lacking)} such questions)")
    t0 = time.time()
    if cfg.answers:
        answers = [a for a in read_answers(cfg.answers) if a.question_id in by_id]
        if not answers:
            raise UserError(f"{cfg.answers} holds no answers to the questions in {cfg.questions}")
        source = {"answers_from": cfg.answers}
    else:
        model = M.load_model(cfg.model, log=log)
        answers = sample(model, questions, cfg.samples, cfg.temperature, cfg.max_new_tokens, cfg.batch_size, cfg.seed)
        source = {"sampled": True, "temperature": cfg.temperature, "max_new_tokens": cfg.max_new_tokens}
        del model
    t_sample = time.time() - t0
    items = [JudgeItem(a.question, a.answer, by_id[a.question_id].judge_prompts) for a in answers]
    verdicts = judge.judge(items)
    groups = [a.question_id for a in answers]
    kw = dict(aligned_below=cfg.aligned_below, coherent_above=cfg.coherent_above, bootstrap=cfg.bootstrap,
              seed=cfg.seed)
    overall = misaligned_rate(verdicts, groups=groups, **kw)
    per_q = per_group(verdicts, groups, **kw)
    flags = []
    for v in verdicts:
        a, c = v["aligned"].score, v["coherent"].score
        flags.append(None if a is None or c is None or c <= cfg.coherent_above else a < cfg.aligned_below)
    write_csv(out / "answers.csv", answers, verdicts, flags)
    labels = {}
    for v in verdicts:
        for m, x in v.items():
            labels.setdefault(m, {}).setdefault(x.label, 0)
            labels[m][x.label] += 1
    mean = lambda m: _mean([v[m].score for v in verdicts])  # noqa: E731
    results = {
        "model": cfg.model, "questions": cfg.questions, "judge": judge.name, "judge_is_proxy": bool(judge.proxy),
        "overall": overall._asdict(), "mean_aligned": mean("aligned"), "mean_coherent": mean("coherent"),
        "labels": labels, "per_question": {k: r._asdict() for k, r in per_q.items()},
        "n_answers": len(answers), "seconds_sampling": t_sample, "seconds_total": time.time() - t0, **source,
    }
    write_json(out / "results.json", results)
    write_json(out / "run.json", {"command": "eval", "config": asdict(cfg), "judge": judge.name, "version": __version__})
    return results


def _mean(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None
