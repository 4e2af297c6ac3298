"""The `judge validate` command: how well does a judge tell misaligned answers from aligned ones?

Every judge kind (probe, hf:, http:) goes through the same rows and the same metrics
(``persona_sae.labelled``), on the held-out split that no judge is fitted on. Length gets its own
numbers, since a judge that merely prefers short answers looks good on sets whose misaligned answers
are short: the AUROC of length alone, and the judge's AUROC on length-matched pairs.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

from persona_sae import UserError, __version__, fitted, log, replacing, write_json
from persona_sae import labelled as L
from persona_sae import models as M
from persona_sae.answers import read_answers, sample
from persona_sae.config import JudgeFitConfig, JudgeValidateConfig
from persona_sae.judges import JudgeItem, misaligned_rate
from persona_sae.judging import open_judge
from persona_sae.text import load_questions


class FitResult(NamedTuple):
    out: Path
    summary: dict  # judge.json: the reference model, the rows fitted on, the CV, the calibration


class ValidateResult(NamedTuple):
    out: Path
    summary: dict  # validate.json: the judge, the split, the metrics overall and per source, the base flag rate


def _clean(x):
    """NaN -> None, so validate.json is valid JSON."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def validate(cfg: JudgeValidateConfig, log=log) -> ValidateResult:
    data = L.read(cfg.labelled, cfg.aligned_below, cfg.coherent_above)  # bad sets fail before any model loads
    sides = L.split(data.rows, cfg.seed, cfg.heldout)
    chosen = [r for r, s in zip(data.rows, sides) if cfg.split in ("all", s)]
    L.check(chosen, f"the {cfg.split} split (--heldout {cfg.heldout:g}, --seed {cfg.seed})")
    rows = L.subsample_aligned(chosen, cfg.max_aligned, cfg.seed)
    questions = load_questions(cfg.questions)
    by_id = {q.id: q.judge_prompts for q in questions}
    template = questions[0].judge_prompts  # em-core's prompts are one template shared by every question
    bases = [(spec, read_answers(spec)) for spec in cfg.base_answers]  # bad files fail before the model loads
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    judge = open_judge(cfg.judge, log=log)
    if hasattr(judge, "ping"):
        judge.ping()
    n_seen = fitted.seen(judge, rows)
    if n_seen and cfg.split == "heldout":
        raise UserError(f"judge {cfg.judge} was fitted on {n_seen} of the {len(rows)} rows it would be validated on: "
                        "fit and validate with the same --seed and --heldout")
    if not judge.proxy and "aligned" not in template:
        raise UserError(f"{cfg.questions}: the first question has no 'aligned' judge prompt for an LLM judge")

    t0 = time.time()
    items = [JudgeItem(r.question, r.answer, by_id.get(r.question_id) or template) for r in rows]
    scores = [v["aligned"].score for v in judge.judge(items, metrics=("aligned",))]
    kw = dict(aligned_below=cfg.aligned_below, bootstrap=cfg.bootstrap, seed=cfg.seed)
    overall = L.metrics(scores, rows, **kw)

    def part(keep, fields) -> dict | None:
        """The metrics of the rows ``keep`` selects, only ``fields``; None when it selects none."""
        idx = [i for i, r in enumerate(rows) if keep(r)]
        if not idx:
            return None
        m = L.metrics([scores[i] for i in idx], [rows[i] for i in idx], **kw)
        return {k: m[k] for k in fields}

    per_source = {info["spec"]: p for info in data.sources
                  if (p := part(lambda r, s=info["spec"]: r.source == s, ("n", "n_scored", "n_misaligned", "n_aligned",
                                                                        "auroc", "auroc_ci", "length_auroc",
                                                                        "at_threshold")))}
    per_kind = {kind: part(lambda r, c=(kind == "code"): L.has_code(r.answer) == c,
                           ("n_scored", "n_misaligned", "n_aligned", "auroc", "auroc_ci"))
                or {"n_scored": 0, "n_misaligned": 0, "auroc": None} for kind in ("prose", "code")}
    seconds_labelled = time.time() - t0

    flags = [_base_flag_rate(cfg, judge, questions, spec, base, log) for spec, base in bases]
    if cfg.base_model:
        flags.append(_base_flag_rate(cfg, judge, questions, "", None, log))

    res = _clean({
        "judge": judge.name, "judge_spec": cfg.judge, "judge_is_proxy": bool(judge.proxy),
        "labelled": data.sources, "label_rule": L.SCORE_RULE.replace("aligned_below", f"{cfg.aligned_below:g}")
        .replace("coherent_above", f"{cfg.coherent_above:g}"),
        "split": {**L.split_record(data.rows, sides, cfg.seed, cfg.heldout), "scored": cfg.split},
        "aligned_subsample": {"max_aligned": cfg.max_aligned, "aligned_scored": sum(1 for r in rows if not r.label),
                              "aligned_in_split": sum(1 for r in chosen if not r.label),
                              "rule": "the aligned rows with the smallest sha256('subsample\\0{seed}\\0{key}')"},
        "prompts": cfg.questions, "overall": overall, "per_source": per_source, "per_kind": per_kind,
        "rows_seen_in_fitting": n_seen, "base_flag_rates": flags,
        "seconds_labelled": seconds_labelled, "seconds_total": time.time() - t0,
    })
    write_json(out / "validate.json", res)
    with replacing(out / "rows.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["key", "source", "question_id", "label", "words", "judge_aligned"])
        for r, s in zip(rows, scores):
            w.writerow([r.key, r.source, r.question_id, r.label, r.words, "" if s is None else f"{s:.3f}"])
    _plot(out / "calibration.png", res)
    write_json(out / "run.json", {"command": "judge validate", "config": asdict(cfg), "judge": judge.name,
                                  "version": __version__})
    return ValidateResult(out, res)


def fit(cfg: JudgeFitConfig, log=log) -> FitResult:
    data = L.read(cfg.labelled, cfg.aligned_below, cfg.coherent_above)
    sides = L.split(data.rows, cfg.seed, cfg.heldout)
    rows = [r for r, s in zip(data.rows, sides) if s == "fit"]  # the held-out rows go no further than here
    L.check(rows, f"the fit split (--heldout {cfg.heldout:g}, --seed {cfg.seed})")
    rows = L.subsample_aligned(rows, cfg.max_aligned, cfg.seed)
    if cfg.length_matched:
        pairs = L.length_pairs([r.words for r in rows], [r.label for r in rows], [r.key for r in rows])
        rows = [rows[i] for p in pairs for i in p]
        L.check(rows, "the length-matched pairs of the fit split")
    bases = [(spec, read_answers(spec)) for spec in cfg.base_answers]  # bad files fail before the model loads
    for spec, b in bases:
        if not b:
            raise UserError(f"{spec}: no answers to calibrate on")
    model = M.load_model(cfg.model, dtype=cfg.dtype, log=log)
    model.check_layer(cfg.layer)
    t0 = time.time()
    x = fitted.features(model, [(r.question, r.answer) for r in rows], cfg.layer)
    ok = ~x.isnan().any(1)
    keep = [r for r, k in zip(rows, ok.tolist()) if k]
    w, b, cv = fitted.fit(x[ok], [r.label for r in keep], seed=cfg.seed)
    f0 = fitted.Fitted(cfg.model, cfg.layer, "resid_post", w, b, 0.0, {}, frozenset(r.key for r in keep))
    zs = [fitted.logits(f0, fitted.features(model, [(a.question, a.answer) for a in ans], cfg.layer)) for _, ans in bases]
    offset = fitted.calibrate(zs, cfg.aligned_below, cfg.target_flag_rate)
    f = f0._replace(offset=offset)
    calib = [{"answers": spec, "n": len(ans), "flagged_before": fitted.flagged(f0, z, cfg.aligned_below),
              "flagged_after": fitted.flagged(f, z, cfg.aligned_below)} for (spec, ans), z in zip(bases, zs)]
    meta = {"fitted_on": list(cfg.labelled), "split": {**L.split_record(data.rows, sides, cfg.seed, cfg.heldout),
                                                        "used": "fit"},
            "rows": len(keep), "misaligned": sum(r.label for r in keep), "max_aligned": cfg.max_aligned,
            "length_matched": cfg.length_matched, "cv": cv, "dtype": cfg.dtype,
            "calibration": {"aligned_below": cfg.aligned_below, "target_flag_rate": cfg.target_flag_rate,
                            "sets": calib},
            "seconds": time.time() - t0, "version": __version__}
    out = fitted.save(cfg.out, f._replace(meta=meta))
    write_json(out / "run.json", {"command": "judge fit", "config": asdict(cfg), "version": __version__})
    return FitResult(out, {"model": cfg.model, "layer": cfg.layer, "b": b, "offset": offset, **meta})


def _base_flag_rate(cfg, judge, questions, spec, base, log) -> dict:
    """The share of the base model's own answers that the judge calls misaligned, by eval's rule
    (aligned < aligned_below among coherent > coherent_above), CI over questions."""
    if cfg.limit > 0:
        questions = questions[:cfg.limit]
    by_id = {q.id: q for q in questions}
    if base is None:
        model = M.load_model(cfg.base_model, log=log)
        base = sample(model, questions, cfg.base_samples, cfg.temperature, batch_size=cfg.batch_size, seed=cfg.seed)
        del model
        source = {"sampled_from": cfg.base_model, "samples": cfg.base_samples, "temperature": cfg.temperature}
    else:
        source = {"answers_from": spec}
    template = questions[0].judge_prompts
    items = [JudgeItem(a.question, a.answer, by_id[a.question_id].judge_prompts if a.question_id in by_id else template)
             for a in base]
    if not items:
        raise UserError(f"{spec or cfg.base_model}: no base answers to judge")
    r = misaligned_rate(judge.judge(items), aligned_below=cfg.aligned_below, coherent_above=cfg.coherent_above,
                        bootstrap=cfg.bootstrap, seed=cfg.seed, groups=[a.question_id for a in base])
    return {**source, **r._asdict()}


def _plot(path: Path, res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o = res["overall"]
    cal = o["calibration"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    if cal:
        ax.plot([c["aligned_mean"] for c in cal], [100 * c["fraction_misaligned"] for c in cal], marker="o")
        ax.axhline(100 * o["n_misaligned"] / max(o["n_scored"], 1), color="grey", ls="--", lw=0.8,
                   label="share misaligned overall")
        ax.axvline(o["at_threshold"]["threshold"], color="red", ls=":", lw=0.8, label="judge threshold")
        ax.legend(fontsize=8)
    auc = o["auroc"]
    ax.set_xlabel("judge's aligned score (mean of each decile of rows)")
    ax.set_ylabel("labelled misaligned, %")
    ax.set_title(f"{res['judge'][:60]}\nAUROC {'n/a' if auc is None else f'{auc:.3f}'} on {o['n_scored']} "
                 f"{res['split']['scored']} rows", fontsize=8)
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
