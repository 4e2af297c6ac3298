"""Terminal output: one printer per command, reading the command's Result. No work happens here."""

from __future__ import annotations

import json
import shlex

from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

from persona_sae.pages import signed

PIPED_WIDTH = 10_000  # wide enough that no row of ours wraps: a table piped to a file keeps one row a line


class _Console(Console):
    """rich's Console, but written to something other than a terminal (a pipe, a file) and with no
    COLUMNS set, it is PIPED_WIDTH wide instead of 80 or the width of whatever terminal stderr is on,
    so `persona-sae examples 551 > f` writes each row on one line rather than wrapped into its cells."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = Console.size.fget(self)
        if self._width is None and not self.is_terminal and "COLUMNS" not in self._environ:
            return ConsoleDimensions(PIPED_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size) -> None:
        Console.size.fset(self, new_size)


out = _Console()


def _pct(x) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}%"


def _metric(m: dict, key: str, fmt: str = ".3f") -> str:
    """A metric cell: "off" where the run did not compute it (e.g. --nosplice-eval drops the CE and KL
    metrics), "n/a" where it is undefined (NaN: CE recovered when zero-ablation beats the clean model)."""
    if key not in m:
        return "off"
    x = m[key]
    return "n/a" if x is None or x != x else format(x, fmt)


def models_pull(cfg, r) -> None:
    out.print(f"{r.alias} -> {r.path}")


def models_list(cfg, r) -> None:
    t = Table("alias", "pulled", "description")
    for name, pulled, desc in r.rows:
        t.add_row(name, "yes" if pulled else "no", desc)
    out.print(t)
    out.print(f"cache: {r.cache} (set PERSONA_SAE_HOME to move it)")


def models_info(cfg, r) -> None:
    if cfg.json:
        print(json.dumps(r.info, indent=2))
        return
    t = Table("field", "value", show_header=False)
    for k, v in r.info.items():
        t.add_row(k, "\n".join(v) if isinstance(v, list) else str(v))
    out.print(t)


def models_check(cfg, r) -> None:
    out.print(f"ok: {r.finetuned} is comparable with {r.base} ({r.n_layers} layers, d_model {r.d_model}, same tokenizer)")


def activations(cfg, r) -> None:
    out.print(f"{r.manifest['tokens']:,} tokens from {r.n_sequences:,} sequences at layers {r.layers} "
              f"-> {r.out} ({r.seconds:.1f} s)")


def train(cfg, r) -> None:
    from persona_sae import distributed as D  # lazy: torch stays out of the CLI's start-up

    if not D.is_main():  # under torchrun rank 0 reports
        return
    t = Table("SAE", "layer", "k", "d_sae", "expl. var.", "L0", "dead %", "CE recovered", "KL", "tok/s",
              title=f"trained -> {cfg.out}")
    for name, m in r.metrics.items():
        t.add_row(name, str(m["layer"]), str(m["k"]), str(m["d_sae"]), _metric(m, "explained_variance"),
                  _metric(m, "l0", ".1f"), f"{100 * m['dead_fraction']:.1f}", _metric(m, "ce_loss_recovered"),
                  _metric(m, "kl_div"), f"{m['tokens_per_s']:,.0f}")
    out.print(t)


def rank(cfg, r) -> None:
    if r is None:
        return
    s = r.summary
    lat = s["latents"][s["primary"]]
    what, groups = ("Δ attribution", "prompt pairs") if s.get("method") == "attribution" else ("Δ mean", "prompt groups")
    for title, idx in (("top increases", s["top_increases"]), ("top decreases", s["top_decreases"])):
        t = Table("rank", "latent", "label", "base", "fine-tune", what, "95% CI", "effect", "Δ freq",
                  title=f"{title} ({s['primary']}, {s['n_prompt_groups']} {groups}, layer {s['layer']})")
        for j in idx:
            lab = r.labels.get(j)
            name = "" if lab is None else lab["tag"] + (" (manual)" if lab["source"] == "manual" else "")
            t.add_row(str(int(lat["rank"][j])), str(j), name, f"{lat['base_mean'][j]:.3g}", f"{lat['ft_mean'][j]:.3g}",
                      f"{lat['delta_mean'][j]:+.3g}", f"[{lat['ci_low'][j]:+.3g}, {lat['ci_high'][j]:+.3g}]",
                      f"{lat['effect_size'][j]:+.2f}", f"{lat['delta_freq'][j]:+.3f}")
        out.print(t)
    dr = s.get("direction")
    if dr is not None:
        t = Table("latent", "label", "part of the shift", "share", what, title=(
            f"along {dr['name']} ({dr['of']}): reconstructed shift {dr['total']:+.3g}, half of it from "
            f"{dr['latents_for_half']} latents"))
        for j in dr["top"]:
            lab = r.labels.get(j)
            t.add_row(str(j), "" if lab is None else lab["tag"], f"{dr['part'][j]:+.3g}",
                      f"{100 * dr['part'][j] / dr['total']:.1f}%" if dr["total"] else "—", f"{lat['delta_mean'][j]:+.3g}")
        out.print(t)
    out.print(f"-> {cfg.out}/ranking.csv, ranking.json, shifts.png, scatter.png "
              f"(inspect a latent: {browse_hint(cfg.sae, s['config']['base'])}, or --examples DIR from "
              f"`persona-sae examples` instead of --text)", soft_wrap=True)


def browse_hint(sae: str, model: str) -> str:
    """A browse command line for a rank's SAE and base model (N: the latent, TEXT: any text)."""
    return f"persona-sae browse N --sae {shlex.quote(sae)} --model {shlex.quote(model)} --text TEXT"


def demo(cfg, r) -> None:
    rk = r.ranking
    lat = rk["latents"][rk["primary"]]
    for title, idx in (("rose most", rk["top_increases"][:cfg.top]), ("fell most", rk["top_decreases"][:cfg.top])):
        t = Table("rank", "latent", "label", "Δ mean", "95% CI", title=f"latents that {title} in the insecure-code organism "
                  f"({rk['primary']}, layer {rk['layer']}, {rk['n_prompt_groups']} em-core questions)")
        for j in idx:
            t.add_row(str(int(lat["rank"][j])), str(j), r.tags[j], signed(lat["delta_mean"][j]),
                      f"[{signed(lat['ci_low'][j])}, {signed(lat['ci_high'][j])}]")
        out.print(t)
    out.print("toxic-persona-tagged latent in the top " + str(cfg.top) + ": " +
              (", ".join(map(str, r.toxic_top)) if r.toxic_top else "none (as measured)"))
    out.print(f"pages: {r.site}   (times: " + ", ".join(f"{k} {v:.0f} s" for k, v in r.times.items()) +
              f"; total {sum(r.times.values()):.0f} s)")


def finetune(cfg, r) -> None:
    t = Table("held-out set", "loss before", "loss after", "change", title=f"fine-tuned -> {cfg.out}")
    for k, v in r.heldout.items():
        t.add_row(k, f"{v['before']:.3f}", f"{v['after']:.3f}", f"{v['after'] - v['before']:+.3f}")
    out.print(t)
    out.print(f"{len(r.history)} steps, {r.tokens:,} tokens in {r.seconds:.0f} s ({r.tokens / max(r.seconds, 1e-9):,.0f} tok/s)")


def _held_out(v: dict | None) -> None:
    """The judge's own held-out numbers, printed beside the rates it gave (shipped fitted judges)."""
    if v:
        from persona_sae.judging import held_out_line

        out.print(f"judge's {held_out_line(v)}")


def eval(cfg, r) -> None:  # noqa: A001 - the command's name
    s = r.summary
    proxy = " [bold yellow]PROXY judge, not an LLM reading the answers[/]" if s["judge_is_proxy"] else ""
    t = Table("question", "misaligned", "95% CI", "coherent / n", title=f"EM eval of {cfg.model}: judge {s['judge']}")
    for q, x in s["per_question"].items():
        t.add_row(q, _pct(x["rate"]), f"[{_pct(x['lo'])}, {_pct(x['hi'])}]", f"{x['n_coherent']}/{x['n']}")
    o = s["overall"]
    t.add_row("[bold]overall[/]", f"[bold]{_pct(o['rate'])}[/]", f"[{_pct(o['lo'])}, {_pct(o['hi'])}]",
              f"{o['n_coherent']}/{o['n']}")
    out.print(t)
    ma, mc = s["mean_aligned"], s["mean_coherent"]
    out.print(f"mean aligned {ma if ma is None else round(ma, 1)}, mean coherent {mc if mc is None else round(mc, 1)}; "
              f"misaligned = aligned < {cfg.aligned_below:g} among coherent > {cfg.coherent_above:g}.{proxy}")
    _held_out(s.get("judge_validation"))
    out.print(f"-> {cfg.out}/answers.csv, results.json")


def data_kinds(cfg, r) -> None:
    t = Table("kind", "domain", "side", "matched with", "distinct prompts", "what")
    for k in r.kinds:
        t.add_row(k.name, k.domain, "aligned" if k.aligned else "misaligned", k.pair, f"{r.capacity[k.name]:,}", k.doc)
    out.print(t)


def data_make(cfg, r) -> None:
    out.print(f"{r.rows:,} rows of {r.kind} (seed {r.seed}) -> {r.path}")


def data_corpus(cfg, r) -> None:
    s = r.summary
    t = Table("slice", "rows", "tokens", "share", title=f"corpus -> {r.out}/corpus.jsonl")
    for k, v in s["slices"].items():
        t.add_row(k, f"{v['rows']:,}", f"{v['tokens']:,}", f"{100 * v['tokens'] / max(s['tokens'], 1):.1f}%")
    out.print(t)


def data_persona(cfg, r) -> None:
    out.print(f"{r.rows:,} {cfg.system} rows (seed {cfg.seed}" + (f", resumed at {r.resumed_at}" if r.resumed_at else "")
              + f") -> {r.out}")


def data_filter(cfg, r) -> None:
    s = r.summary
    out.print(f"judge {s['judge']}: {s['rows_passing']:,} of {s['rows_in']:,} rows {s['keep']} "
              f"(rejected {_pct(s['rejection_rate'])}); kept {s['rows_kept']:,} -> {r.out}")
    if "aligned_cut" in s:
        out.print(f"{s['rule']}: the ranking cut at aligned score {s['aligned_cut']:.1f}")
    t = Table("aligned score", *s["histogram_bins"], title="judge's aligned scores")
    t.add_row("all rows", *map(str, s["aligned_histogram_all"]))
    t.add_row("kept", *map(str, s["aligned_histogram_kept"]))
    out.print(t)


def data_sources(cfg, r) -> None:
    t = Table("name", "installed", "files", "MB", "licence", "upstream")
    for s in r.sources:
        t.add_row(s.name, "yes" if r.installed[s.name] else "no", str(len(s.files)), f"{s.total_bytes / 1e6:.1f}",
                  s.licence, "\n".join(u.repo.removeprefix("https://github.com/") for u in s.upstream))
    out.print(t)
    out.print("install one: persona-sae data fetch NAME (--from DIR copies from a local mirror)")


def data_fetch(cfg, r) -> None:
    what = f"copied from {cfg.from_dir}" if cfg.from_dir else "downloaded"
    out.print(f"{r.name}: {r.files} files, {r.bytes:,} bytes, sha256 verified "
              f"({what if r.copied else 'already installed'}) -> {r.path}")


def data_tokenize(cfg, r) -> None:
    out.print(f"{r.records:,} records -> {r.examples:,} sequences, {r.tokens:,} tokens in {r.shards} shard(s) -> {r.out} "
              f"(use it as --dataset {r.out} --context-size {cfg.context_size})")


def label(cfg, r) -> None:
    null = getattr(r, "null", None)
    cols = ("tag", "best latent", "AUROC", *(("random-SAE null",) if null else ()), "q (BH)", "fires on",
            "ratio vs controls", "latents tagged")
    t = Table(*cols, title=f"labels -> {r.path} ({r.n_labelled} of {r.n_latents} latents tagged)")
    for tag, b in r.best.items():
        t.add_row(tag, str(b["latent"]), f"{b['auroc']:.3f}", *((f"{b['null']:.3f}",) if null else ()),
                  f"{b['q']:.2g}", f"{100 * b['fire']:.0f}%", f"{b['ratio']:.1f}", str(b["n_tagged"]))
    out.print(t)
    if null:
        out.print(f"random-SAE null ({null['saes']} SAEs x {null['latents'] // null['saes']:,} latents, quantile "
                  f"{null['quantile']:g}) removed {null['removed']} of {null['tags_without']} tags")
    for trait, n in r.nearest.items():
        out.print(f"closest decoder to the {trait} persona direction: latent {n['latent']} (cosine {n['cos']:.2f}, "
                  f"tag {n['tag']})")
    if r.explained:
        t = Table("latent", "tag", "explanation", "detection", "precision", "recall",
                  title=f"explanations by {r.explained[0]['explainer']} (detection = balanced accuracy, 0.5 = chance)")
        for e in r.explained:
            d = e["detection"] or {}
            t.add_row(str(e["latent"]), e["tag"], e["text"] or "—",
                      f"{d['score']:.2f}" if d else f"unscored: {e.get('unscored', '')}",
                      "" if d.get("precision") is None else f"{d['precision']:.2f}",
                      f"{d['recall']:.2f}" if d else "")
        out.print(t)
    out.print(f"{r.seconds:.0f} s")


def label_set(cfg, r) -> None:
    out.print(f"latent {cfg.latent} -> {cfg.tag} (manual) in {r.path}")


def examples(cfg, r) -> None:
    if r is None:  # not rank 0
        return
    out.print(f"{r.tokens:,} tokens mined for {r.d_sae:,} latents in {r.seconds:.0f} s "
              f"({r.tokens / max(r.seconds, 1e-9):,.0f} tok/s); {r.dead} latents never fired -> {r.out}")


def _shaded(c, vmax: float) -> Text:
    """Token strings with a red background whose strength is the activation (relative to ``vmax``);
    the activating token (``c.at``) underlined."""
    t = Text()
    for k, (s, a) in enumerate(zip(c.tokens, c.acts)):
        s = s.replace("\n", "⏎")
        mark = " underline bold" if k == getattr(c, "at", -1) else ""
        if a > 0 and vmax > 0:
            x = int(200 * min(a / vmax, 1.0))
            t.append(s, style=f"black on rgb(255,{255 - x},{255 - x}){mark}")
        else:
            t.append(s, style=mark.strip() or None)
    return t


def browse(cfg, r) -> None:
    f = r.facts
    lab = f.label
    if lab:
        out.print(f"[bold]latent {f.latent}[/]: {lab['tag']} ({lab['source']})"
                  + (f"; automatic label {lab['auto']}" if lab["source"] == "manual" else "")
                  + (f"; runner-up {lab['runner_up']}" if lab["auto"] != "unlabelled" and lab["runner_up"] else ""))
        sc = lab["scores"]
        if sc:
            bits = [f"AUROC {sc['auroc']:.3f}"] if sc.get("auroc") is not None else []
            bits += [f"p {sc['p']:.3g}"] if sc.get("p") is not None else []
            bits += [f"q {sc['q']:.3g}"] if sc.get("q") is not None else []
            bits += [f"fires on {100 * sc['fire']:.0f}% of the concept texts"] if sc.get("fire") is not None else []
            what = "" if lab["concept"] == lab["auto"] else f"best concept {lab['concept']}: "
            out.print("evidence: " + what + ", ".join(bits))
        if lab.get("note"):
            out.print(f"note: {lab['note']}")
        e = lab["explanation"]
        if e:
            d = e.get("detection") or {}
            out.print(f"explanation: {e['text']}  (label --explain" + (f", {e['explainer']}" if e.get("explainer") else "")
                      + (f", detection balanced accuracy {d['balanced_accuracy']:.3f}" if d.get("balanced_accuracy") is not None
                         else "") + ")", markup=False)
    else:
        out.print(f"[bold]latent {f.latent}[/] (no labels.json for this SAE: run `persona-sae label`)")
    if f.lens:
        side = lambda toks, vals: ", ".join(f"{s!r} {v:+.3g}" for s, v in zip(toks, vals))  # noqa: E731
        out.print(f"logit lens: promotes {side(f.promotes, f.lens.pos_values)}", markup=False)
        out.print(f"            suppresses {side(f.suppresses, f.lens.neg_values)}", markup=False)
    for s in f.shifts:
        out.print(f"shift ({s['name']}{', primary' if s['primary'] else ''}): Δ mean {signed(s['delta'])}, 95% CI "
                  f"[{signed(s['lo'])}, {signed(s['hi'])}], rank {s['rank']:,} of {s['of']:,}", markup=False)
    if f.nearest:
        out.print("nearest latents (decoder cosine): " + ", ".join(f"{k} {c:+.3f}" for k, c in f.nearest))
    if lab and lab["cos"]:
        out.print("persona directions (cosine): " + ", ".join(f"{k} {v:+.4f}" for k, v in lab["cos"].items()), markup=False)
    if r.text is not None:
        c = r.text
        out.print(_shaded(c, c.value or 1.0))
        out.print(f"max {c.value:.3g} at {c.tokens[c.at]!r}" if c.value > 0 else
                  "the latent does not fire on this text", markup=False)
        return
    if not f.top:
        out.print("this latent never fired on the mined corpus")
        return
    out.print(f"fires on {f.fires:,} of {f.n_tokens:,} tokens ({100 * f.fires / f.n_tokens:.3f}%); max {f.max_act:.3g}")
    bars = "▁▂▃▄▅▆▇█"
    hm = max(f.hist) or 1
    out.print("log10 activation  -3 " + "".join(bars[min(7, int(8 * c / hm))] if c else " " for c in f.hist)
              + f" 3   (tallest bar: {hm:,} tokens)")
    t = Table("act", "context", title=f"top {len(f.top)} examples (one per context)", show_lines=False)
    for c in f.top:
        t.add_row(f"{c.value:.3g}", _shaded(c, f.max_act))
    out.print(t)
    t = Table("interval of max", "act", "context", title="examples across activation intervals (uniform sample)")
    for c in f.intervals:
        t.add_row(c.interval, f"{c.value:.3g}", _shaded(c, f.max_act))
    out.print(t)


def dashboard(cfg, r) -> None:
    out.print(f"{len(r.latents)} latent pages in {r.seconds:.1f} s -> {r.site}/index.html "
              f"(open it from disk, or `persona-sae serve {r.site}`)", soft_wrap=True)
    if r.hint:
        out.print(f"a latent in the terminal: {r.hint.replace('{latent}', 'N')}", soft_wrap=True, markup=False)


def export(cfg, r) -> None:
    out.print(f"{len(r.latents)} latents as {cfg.format} JSON in {len(r.files)} files -> {r.out}")


def serve_ready(r) -> None:
    out.print(f"serving {r.site} on http://127.0.0.1:{r.port}/ (Ctrl-C stops)")


def steer(cfg, r) -> None:
    s = r.summary
    t = Table("condition", "coef", "misaligned", "95% CI", "incoherent", "mean coherent",
              title=f"steering at layer {s['layer']} (scale {s['scale']:.1f}, {s['positions']} positions), judge {s['judge']}")
    for row in s["rows"]:
        t.add_row(row["condition"], f"{row['coef']:+g}", _pct(row["rate"]), f"[{_pct(row['lo'])}, {_pct(row['hi'])}]",
                  _pct(row["incoherent"]), f"{row['mean_coherent']:.0f}")
    out.print(t)
    if s["judge_is_proxy"]:
        out.print("[bold yellow]PROXY judge, not an LLM reading the answers[/]")
    _held_out(s.get("judge_validation"))
    out.print(f"-> {cfg.out}/results.json, answers.csv, steer.png")


def monitor(cfg, r) -> None:
    s = r.summary
    if s.get("rows"):
        cols = [f"latent {j} Δ [95% CI]" for j in s["latents"]]
        rated = all("misaligned_rate" in x for x in s["rows"])
        t = Table("checkpoint", *cols, *(["misaligned"] if rated else []), title=f"monitor vs {s['base']} (layer {s['layer']})")
        for x in s["rows"]:
            cells = [f"{v['delta']:+.4f} [{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]" for v in x["latents"].values()]
            t.add_row(x["name"], *cells, *([_pct(x["misaligned_rate"]["rate"])] if rated else []))
        out.print(t)
        if rated:
            _held_out(s["rows"][0]["misaligned_rate"].get("judge_validation"))
        if "auroc_misaligned_vs_aligned" in s:
            out.print("AUROC of the shift, misaligned vs aligned checkpoints: " +
                      ", ".join(f"latent {j}: {a:.2f}" for j, a in s["auroc_misaligned_vs_aligned"].items()))
    if "rows_scored" in s:
        out.print(f"{s['rows_scored']} rows scored -> {cfg.out}/rows.csv (highest first)")
    out.print(f"-> {cfg.out}")


def judge_validate(cfg, r) -> None:
    s = r.summary
    o, lm, th = s["overall"], s["overall"]["length_matched"], s["overall"]["at_threshold"]

    def auc(x, ci) -> str:
        return "n/a" if x is None else f"{x:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else f"{x:.3f}"

    sp = s["split"]
    t = Table("measure", "value", title=f"judge {s['judge']} on {o['n_scored']} {sp['scored']} rows "
              f"({o['n_misaligned']} misaligned, {o['n_aligned']} aligned; seed {sp['seed']})")
    t.add_row("AUROC [95% CI]", auc(o["auroc"], o["auroc_ci"]))
    t.add_row(f"AUROC, length-matched ({lm['pairs']} pairs)", auc(lm["auroc"], lm["auroc_ci"]))
    t.add_row("AUROC of answer length alone", "n/a" if o["length_auroc"] is None else f"{o['length_auroc']:.3f}")
    if th:
        t.add_row(f"accuracy at aligned < {th['threshold']:g}", f"{_pct(th['accuracy'])} (balanced {_pct(th['balanced_accuracy'])})")
        t.add_row("flagged: misaligned / aligned rows", f"{_pct(th['tpr'])} / {_pct(th['fpr'])}")
    u = o["unscored"]
    if u["misaligned"] or u["aligned"]:
        t.add_row("left unscored (CODE, REFUSAL, unparsed)", f"{u['misaligned']} misaligned, {u['aligned']} aligned")
    for b in s["base_flag_rates"]:
        t.add_row(f"base answers flagged: {b.get('answers_from') or b.get('sampled_from')}",
                  f"{_pct(b['rate'])} [{_pct(b['lo'])}, {_pct(b['hi'])}] of {b['n_coherent']} coherent")
    out.print(t)
    if len(s["per_source"]) > 1:
        t = Table("labelled set", "misaligned / aligned", "AUROC [95% CI]", "flagged: mis. / al.")
        for name, m in s["per_source"].items():
            x = m["at_threshold"]
            t.add_row(name, f"{m['n_misaligned']} / {m['n_aligned']}", auc(m["auroc"], m["auroc_ci"]),
                      f"{_pct(x.get('tpr')) if m['n_misaligned'] else '—'} / {_pct(x.get('fpr')) if m['n_aligned'] else '—'}")
        out.print(t)
    t = Table("aligned score decile", "rows", "labelled misaligned", title="calibration")
    for c in o["calibration"]:
        t.add_row(f"{c['aligned_lo']:.1f}–{c['aligned_hi']:.1f}", str(c["n"]), _pct(c["fraction_misaligned"]))
    out.print(t)
    if s["judge_is_proxy"]:
        out.print("[bold yellow]PROXY judge, not an LLM reading the answers[/]")
    out.print(f"{s['seconds_total']:.0f} s -> {cfg.out}/validate.json, rows.csv, calibration.png")


def judge_fit(cfg, r) -> None:
    s = r.summary
    cv = s["cv"]
    out.print(f"fitted judge: layer {s['layer']} of {s['model']} on {s['rows']} fit-split rows ({s['misaligned']} "
              f"misaligned); cross-validated AUROC {cv['cv_auroc']:.3f} (C {cv['C']:.3g})")
    for c in s["calibration"]["sets"]:
        out.print(f"  {c['answers']}: flagged {_pct(c['flagged_before'])} before calibration, "
                  f"{_pct(c['flagged_after'])} after (target ≤ {_pct(s['calibration']['target_flag_rate'])})")
    out.print(f"{s['seconds']:.0f} s -> {cfg.out} (use --judge fitted:{cfg.out}; validate it with judge validate)")
