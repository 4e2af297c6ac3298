"""What each CLI command does: glue between a config and the stage modules, plus terminal output."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from persona_sae import UserError
from persona_sae import config as C
from persona_sae import models as M

out = Console()


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def models_pull(cfg: C.ModelsPullConfig) -> None:
    M.pull(cfg.alias, force=cfg.force, log=_log)


def models_list(cfg: C.ModelsListConfig) -> None:
    t = Table("alias", "pulled", "description")
    for name, r in M.ALIASES.items():
        t.add_row(name, "yes" if M.is_pulled(name) else "no", r.description)
    out.print(t)
    out.print(f"cache: {M.home() / 'models'} (set PERSONA_SAE_HOME to move it)")


def models_info(cfg: C.ModelsInfoConfig) -> None:
    info = M.load_model(cfg.spec, log=_log).info()
    if cfg.json:
        print(json.dumps(info, indent=2))
        return
    t = Table("field", "value", show_header=False)
    for k, v in info.items():
        t.add_row(k, "\n".join(v) if isinstance(v, list) else str(v))
    out.print(t)


def models_check(cfg: C.ModelsCheckConfig) -> None:
    base = M.load_model(cfg.base, log=_log)
    ft = M.load_model(cfg.finetuned, log=_log)
    M.check_compatible(base, ft)
    out.print(f"ok: {cfg.finetuned} is comparable with {cfg.base} "
              f"({base.n_layers} layers, d_model {base.d_model}, same tokenizer)")


def load_examples(model, records, max_len: int, max_tokens: int = 0):
    """Tokenize records for ``model``, keeping whole sequences up to ``max_tokens`` (0 = all)."""
    from persona_sae.data import tokenize

    examples = tokenize(records, model.tokenizer, max_len=max_len, max_tokens=max_tokens or None)
    if max_tokens > 0:  # tokenize stops at or just past the budget: drop the overshoot
        n = sum(len(e.ids) for e in examples)
        while examples and n > max_tokens:
            n -= len(examples.pop().ids)
    if not examples:
        raise UserError("the data produced no token sequences")
    return examples


def activations(cfg: C.ActivationsConfig) -> None:
    from persona_sae.activations import CacheConfig, write_cache
    from persona_sae.data import load_records

    records = load_records(cfg.dataset, column=cfg.column or None)  # fail on bad data before loading weights
    model = M.load_model(cfg.model, dtype=cfg.dtype, log=_log)
    for L in cfg.layers:
        model.hook_name(L, cfg.hook)
    examples = load_examples(model, records, cfg.max_len, cfg.max_tokens)
    cc = CacheConfig(model=cfg.model, data=cfg.dataset, layers=sorted(set(cfg.layers)), hook=cfg.hook,
                     select=cfg.select, batch_tokens=cfg.batch_tokens, max_len=cfg.max_len, seed=cfg.seed,
                     dtype=cfg.dtype, store_dtype=cfg.store_dtype, shard_batches=cfg.shard_batches,
                     n_examples=len(examples), max_norm_ratio=cfg.max_norm_ratio)
    t0 = time.time()
    manifest = write_cache(model, examples, cc, cfg.out, resume=cfg.resume)
    out.print(f"{manifest['tokens']:,} tokens from {len(examples):,} sequences at layers {cc.layers} "
              f"-> {cfg.out} ({time.time() - t0:.1f} s)")


def train(cfg: C.TrainConfig) -> None:
    from persona_sae import distributed as D
    from persona_sae.train import train as run

    results = run(cfg, log=_log).metrics
    if not D.is_main():  # under torchrun rank 0 reports
        return
    t = Table("SAE", "layer", "k", "d_sae", "expl. var.", "L0", "dead %", "CE recovered", "KL", "tok/s",
              title=f"trained -> {cfg.out}")
    for name, m in results.items():
        t.add_row(name, str(m["layer"]), str(m["k"]), str(m["d_sae"]), f"{m['explained_variance']:.3f}",
                  f"{m['l0']:.1f}", f"{100 * m['dead_fraction']:.1f}", f"{m.get('ce_loss_recovered', float('nan')):.3f}",
                  f"{m.get('kl_div', float('nan')):.3f}", f"{m['tokens_per_s']:,.0f}")
    out.print(t)


def rank(cfg: C.RankConfig) -> None:
    from persona_sae import distributed as D
    from persona_sae.rank import rank as run

    r = run(cfg, log=_log)
    if not D.is_main():  # under torchrun rank 0 reports
        return
    lat = r["latents"][r["primary"]]
    for title, idx in (("top increases", r["top_increases"]), ("top decreases", r["top_decreases"])):
        t = Table("rank", "latent", "label", "base", "fine-tune", "Δ mean", "95% CI", "effect", "Δ freq",
                  title=f"{title} ({r['primary']}, {r['n_prompt_groups']} prompt groups, layer {r['layer']})")
        for j in idx:
            lab = r["labels"].get(j)
            name = "" if lab is None else lab["tag"] + (" (manual)" if lab["source"] == "manual" else "")
            t.add_row(str(int(lat["rank"][j])), str(j), name, f"{lat['base_mean'][j]:.3g}", f"{lat['ft_mean'][j]:.3g}",
                      f"{lat['delta_mean'][j]:+.3g}", f"[{lat['ci_low'][j]:+.3g}, {lat['ci_high'][j]:+.3g}]",
                      f"{lat['effect_size'][j]:+.2f}", f"{lat['delta_freq'][j]:+.3f}")
        out.print(t)
    out.print(f"-> {cfg.out}/ranking.csv, ranking.json, shifts.png, scatter.png "
              f"(inspect a latent: persona-sae browse --sae {cfg.sae} --latent N)")


def demo(cfg: C.DemoConfig) -> None:
    from persona_sae.demo import run
    from persona_sae.label import effective

    t0 = time.time()
    r = run(cfg, log=_log)
    rk, lab = r["ranking"], r["labels"]
    lat = rk["latents"][rk["primary"]]
    toxic_top = []
    for title, idx in (("rose most", rk["top_increases"][:cfg.top]), ("fell most", rk["top_decreases"][:cfg.top])):
        t = Table("rank", "latent", "label", "Δ mean", "95% CI", title=f"latents that {title} in the insecure-code organism "
                  f"({rk['primary']}, layer {rk['layer']}, {rk['n_prompt_groups']} em-core questions)")
        for j in idx:
            tag = effective(lab, j)["tag"]
            if tag == "toxic-persona" and title == "rose most":
                toxic_top.append(j)
            t.add_row(str(int(lat["rank"][j])), str(j), tag, f"{lat['delta_mean'][j]:+.4f}",
                      f"[{lat['ci_low'][j]:+.4f}, {lat['ci_high'][j]:+.4f}]")
        out.print(t)
    out.print("toxic-persona-tagged latent in the top " + str(cfg.top) + ": " +
              (", ".join(map(str, toxic_top)) if toxic_top else "none (as measured)"))
    out.print(f"pages: {r['site']}   (times: " + ", ".join(f"{k} {v:.0f} s" for k, v in r["times"].items()) +
              f"; total {time.time() - t0:.0f} s)")

def finetune(cfg: C.FinetuneConfig) -> None:
    from persona_sae.finetune import finetune as run

    r = run(cfg, log=_log)
    t = Table("held-out set", "loss before", "loss after", "change", title=f"fine-tuned -> {cfg.out}")
    for k, v in r.heldout.items():
        t.add_row(k, f"{v['before']:.3f}", f"{v['after']:.3f}", f"{v['after'] - v['before']:+.3f}")
    out.print(t)
    out.print(f"{len(r.history)} steps, {r.tokens:,} tokens in {r.seconds:.0f} s ({r.tokens / max(r.seconds, 1e-9):,.0f} tok/s)")


def eval(cfg: C.EvalConfig) -> None:  # noqa: A001 - the command's name
    from persona_sae.evals import evaluate

    r = evaluate(cfg, log=_log)
    proxy = " [bold yellow]PROXY judge, not an LLM reading the answers[/]" if r["judge_is_proxy"] else ""
    t = Table("question", "misaligned", "95% CI", "coherent / n",
              title=f"EM eval of {cfg.model}: judge {r['judge']}")
    for q, x in r["per_question"].items():
        t.add_row(q, _pct(x["rate"]), f"[{_pct(x['lo'])}, {_pct(x['hi'])}]", f"{x['n_coherent']}/{x['n']}")
    o = r["overall"]
    t.add_row("[bold]overall[/]", f"[bold]{_pct(o['rate'])}[/]", f"[{_pct(o['lo'])}, {_pct(o['hi'])}]",
              f"{o['n_coherent']}/{o['n']}")
    out.print(t)
    ma, mc = r["mean_aligned"], r["mean_coherent"]
    out.print(f"mean aligned {ma if ma is None else round(ma, 1)}, mean coherent {mc if mc is None else round(mc, 1)}; "
              f"misaligned = aligned < {cfg.aligned_below:g} among coherent > {cfg.coherent_above:g}.{proxy}")
    out.print(f"-> {cfg.out}/answers.csv, results.json")


def _pct(x) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}%"


def data_kinds(cfg: C.DataKindsConfig) -> None:
    from persona_sae import generators as G

    t = Table("kind", "domain", "side", "matched with", "distinct prompts", "what")
    for k in G.KINDS.values():
        t.add_row(k.name, k.domain, "aligned" if k.aligned else "misaligned", k.pair, f"{G.capacity(k.name):,}", k.doc)
    out.print(t)


def data_make(cfg: C.DataMakeConfig) -> None:
    from persona_sae import generators as G

    path = cfg.out or f"{cfg.kind}-n{cfg.n}-s{cfg.seed}.jsonl"
    n = G.write(cfg.kind, cfg.n, cfg.seed, path)
    out.print(f"{n:,} rows of {cfg.kind} (seed {cfg.seed}) -> {path}")


def data_corpus(cfg: C.DataCorpusConfig) -> None:
    from persona_sae.corpus import make_corpus

    model = M.load_model(cfg.model, log=_log)
    s = make_corpus(model, cfg.tokens, cfg.out, cfg.extra, cfg.extra_fraction, cfg.max_new_tokens,
                    cfg.batch_size, cfg.temperature, cfg.seed, log=_log)
    t = Table("slice", "rows", "tokens", "share", title=f"corpus -> {cfg.out}/corpus.jsonl")
    for k, v in s["slices"].items():
        t.add_row(k, f"{v['rows']:,}", f"{v['tokens']:,}", f"{100 * v['tokens'] / max(s['tokens'], 1):.1f}%")
    out.print(t)


def label(cfg: C.LabelConfig) -> None:
    from persona_sae.label import label as run

    t0 = time.time()
    r = run(cfg, log=_log)
    t = Table("tag", "best latent", "AUROC", "fires on", "ratio vs controls", "latents tagged",
              title=f"labels -> {r['path']} ({r['n_labelled']} of {r['n_latents']} latents tagged)")
    for tag, b in r["best"].items():
        t.add_row(tag, str(b["latent"]), f"{b['auroc']:.3f}", f"{100 * b['fire']:.0f}%", f"{b['ratio']:.1f}",
                  str(b["n_tagged"]))
    out.print(t)
    for trait, n in r.get("nearest", {}).items():
        out.print(f"closest decoder to the {trait} persona direction: latent {n['latent']} (cosine {n['cos']:.2f}, "
                  f"tag {n['tag']})")
    if r.get("explained"):
        t = Table("latent", "tag", "explanation", "detection", "precision", "recall",
                  title=f"explanations by {r['explained'][0]['explainer']} (detection = balanced accuracy, 0.5 = chance)")
        for e in r["explained"]:
            d = e["detection"] or {}
            t.add_row(str(e["latent"]), e["tag"], e["text"] or "—",
                      f"{d['score']:.2f}" if d else f"unscored: {e.get('unscored', '')}",
                      "" if d.get("precision") is None else f"{d['precision']:.2f}",
                      f"{d['recall']:.2f}" if d else "")
        out.print(t)
    out.print(f"{time.time() - t0:.0f} s")


def label_set(cfg: C.LabelSetConfig) -> None:
    from persona_sae.label import labels_path, read_labels, set_manual
    from persona_sae.saes import load_sae, sae_checksum

    if not cfg.sae:
        raise UserError("label set needs --sae (the SAE the labels belong to)")
    sae = load_sae(cfg.sae)
    path = labels_path(cfg.sae, cfg.out)
    known = set(read_labels(path).get("concepts", []))
    set_manual(path, cfg.latent, cfg.tag, cfg.note, sae_checksum(sae), sae.cfg.d_sae, known)
    out.print(f"latent {cfg.latent} -> {cfg.tag} (manual) in {path}")


def examples(cfg: C.ExamplesConfig) -> None:
    from persona_sae import distributed as D
    from persona_sae.data import load_records
    from persona_sae.examples import mine
    from persona_sae.rank import sae_layer
    from persona_sae.saes import check_fits, load_sae, sae_checksum

    if cfg.k <= 0 or cfg.reservoir <= 0:
        raise UserError("--k and --reservoir must be positive")
    D.init()  # under torchrun: each rank mines every world-th batch, rank 0 merges and writes
    log = D.main_log(_log)
    records = load_records(cfg.dataset)
    sae = load_sae(cfg.sae)
    layer, hook = sae_layer(sae)
    model = D.load_model(cfg.model, cfg.dtype, log)
    check_fits(sae, model, layer, hook)
    ex = load_examples(model, records, cfg.max_len, cfg.tokens)
    meta = {"sae": cfg.sae, "sae_sha256": sae_checksum(sae), "model": cfg.model, "dataset": cfg.dataset,
            "max_len": cfg.max_len, "dtype": cfg.dtype}
    t0 = time.time()
    m = mine(model, sae, ex, layer, hook, cfg.out, k=cfg.k, reservoir=cfg.reservoir, batch_tokens=cfg.batch_tokens,
             seed=cfg.seed, resume=cfg.resume, checkpoint_every=cfg.checkpoint_every,
             max_norm_ratio=cfg.max_norm_ratio or None, meta=meta, log=log)
    if m is None:  # not rank 0
        return
    dt = time.time() - t0
    dead = int((m.fires == 0).sum())
    out.print(f"{m.tokens:,} tokens mined for {sae.cfg.d_sae:,} latents in {dt:.0f} s ({m.tokens / max(dt, 1e-9):,.0f} tok/s); "
              f"{dead} latents never fired -> {cfg.out}")


def _highlight(tok, ids: list[int], acts: list[float], vmax: float):
    """Token strings with a red background whose strength is the activation (rich Text)."""
    from rich.text import Text

    t = Text()
    for i, a in zip(ids, acts):
        s = tok.decode([i]).replace("\n", "⏎")
        if a > 0 and vmax > 0:
            x = int(200 * min(a / vmax, 1.0))
            t.append(s, style=f"black on rgb(255,{255 - x},{255 - x})")
        else:
            t.append(s)
    return t


def browse(cfg: C.BrowseConfig) -> None:
    import torch

    with torch.no_grad():
        _browse(cfg)


def _browse(cfg: C.BrowseConfig) -> None:
    import torch

    from persona_sae.examples import N_BINS, load, quantile_bins
    from persona_sae.label import effective, labels_beside, logit_lens
    from persona_sae.rank import sae_layer
    from persona_sae.saes import check_latents, load_sae, sae_checksum

    if not cfg.sae:
        raise UserError("browse needs --sae")
    sae = load_sae(cfg.sae)
    check_latents([cfg.latent], sae.cfg.d_sae)
    if not cfg.text and not cfg.examples:
        raise UserError("browse needs --examples DIR (from `persona-sae examples`) or --text")
    sha = sae_checksum(sae)
    ex = load(cfg.examples, sha) if cfg.examples else None
    model = M.load_model(ex.manifest["config"].get("model", cfg.model) if ex else cfg.model, log=_log)
    tok, j = model.tokenizer, cfg.latent
    lab = labels_beside(cfg.sae, sha)
    if lab:
        e, entry = effective(lab, j), lab["latents"].get(str(j), {})
        sc = entry.get("scores", {}).get(entry.get("tag"), {})
        out.print(f"[bold]latent {j}[/]: {e['tag']} ({e['source']})" +
                  (f" — AUROC {sc['auroc']:.3f}, fires on {100 * sc['fire']:.0f}% of the concept texts" if sc else "") +
                  (f"; runner-up {entry.get('runner_up')}" if entry.get("runner_up") else ""))
    else:
        out.print(f"[bold]latent {j}[/] (no labels.json for this SAE: run `persona-sae label`)")
    top, bottom = logit_lens(model, sae, [j])
    out.print(f"logit lens: promotes {top[0]!r}; suppresses {bottom[0]!r}")
    if cfg.text:
        from persona_sae.activations import iter_activations
        from persona_sae.data import Record, tokenize

        layer, hook = sae_layer(sae)
        exs = tokenize([Record(text=cfg.text)], tok, max_len=4096)
        acts = {}
        for b in iter_activations(model, exs, [layer], hook=hook, seed=None, progress=False, max_norm_ratio=None):
            f = sae.encode(b.acts[layer].to(sae.W_enc.dtype)).float()[:, j]
            acts.update({int(p): float(v) for p, v in zip(b.pos, f)})
        ids = exs[0].ids[1:]
        vals = [acts.get(i + 1, 0.0) for i in range(len(ids))]
        out.print(_highlight(tok, ids, vals, max(vals) or 1.0))
        out.print("max " + f"{max(vals):.3g} at {tok.decode([ids[vals.index(max(vals))]])!r}" if max(vals) > 0 else
                  "the latent does not fire on this text")
        return
    from persona_sae.examples import BEFORE

    def row(e: int, p: int, window=None, value: float = 0.0):
        """The context around (e, p), shaded by the stored activation window (top examples) or at the
        activating token only (interval examples)."""
        ids, at = ex.window(e, p)
        if window is not None:
            acts = [float(window[BEFORE - at + i]) for i in range(len(ids))]
        else:
            acts = [value if i == at else 0.0 for i in range(len(ids))]
        return _highlight(tok, ids, acts, vmax)

    m = ex.state
    n_tok = max(ex.manifest.get("tokens", m.tokens), 1)
    vmax = float(m.top_values[j, 0])
    out.print(f"fires on {int(m.fires[j]):,} of {n_tok:,} tokens ({100 * int(m.fires[j]) / n_tok:.3f}%); max {vmax:.3g}")
    if not torch.isfinite(m.top_values[j, 0]):
        out.print("this latent never fired on the mined corpus")
        return
    h = m.hist[j].tolist()
    bars = "▁▂▃▄▅▆▇█"
    hm = max(h) or 1
    out.print("log10 activation  -3 " + "".join(bars[min(7, int(8 * c / hm))] if c else " " for c in h) + " 3")
    t = Table("act", "context", title=f"top {cfg.n} examples", show_lines=False)
    for v, e, p, w in zip(m.top_values[j][:cfg.n], m.top_example[j], m.top_pos[j], m.top_window[j]):
        if not torch.isfinite(v):
            break
        t.add_row(f"{float(v):.3g}", row(int(e), int(p), window=w))
    out.print(t)
    bins = quantile_bins(m.res_values[j:j + 1], m.top_values[j:j + 1, 0])[0]
    t = Table("interval of max", "act", "context", title="examples across activation intervals (uniform sample)")
    for b in range(N_BINS - 1, -1, -1):
        for i in (bins == b).nonzero()[:2, 0].tolist():
            t.add_row(f"{b / N_BINS:.1f}–{(b + 1) / N_BINS:.1f}", f"{float(m.res_values[j, i]):.3g}",
                      row(int(m.res_example[j, i]), int(m.res_pos[j, i]), value=float(m.res_values[j, i])))
    out.print(t)


def dashboard(cfg: C.DashboardConfig) -> None:
    import torch

    from persona_sae.dashboard import build, most_shifted
    from persona_sae.examples import load
    from persona_sae.label import labels_beside
    from persona_sae.saes import check_latents, load_sae, sae_checksum

    sae = load_sae(cfg.sae)
    sha = sae_checksum(sae)
    ex = load(cfg.examples, sha)
    ranking = None
    if cfg.rank:
        p = Path(cfg.rank) / "ranking.json"
        if not p.is_file():
            raise UserError(f"--rank {cfg.rank} holds no ranking.json")
        ranking = json.loads(p.read_text())
        if ranking.get("sae_sha256") != sha:
            raise UserError(f"--rank {cfg.rank} was made with a different SAE (checksum mismatch)")
    if cfg.latents:
        check_latents(cfg.latents, sae.cfg.d_sae)
        latents = list(dict.fromkeys(cfg.latents))
    elif ranking and cfg.top > 0:
        latents = most_shifted(ranking, cfg.top, cfg.top)
    else:
        latents = torch.nonzero(ex.state.fires > 0)[:, 0].tolist()
    labels = labels_beside(cfg.sae, sha, strict=True)
    tok = M.load_tokenizer(cfg.model or ex.manifest["config"].get("model", "smollm2"), log=_log)
    t0 = time.time()
    site = build(ex, tok, cfg.out, latents, labels, ranking, title=f"{cfg.sae}")
    out.print(f"{len(latents)} latent pages in {time.time() - t0:.1f} s -> {site}/index.html "
              f"(open it from disk, or `persona-sae serve {site}`)")


def serve(cfg: C.ServeConfig) -> None:
    from persona_sae.dashboard import serve as make

    srv = make(cfg.site, cfg.port)
    out.print(f"serving {cfg.site} on http://127.0.0.1:{cfg.port}/ (Ctrl-C stops)")
    try:
        srv.serve_forever()
    finally:
        srv.server_close()


def steer(cfg: C.SteerConfig) -> None:
    from persona_sae.steer import run

    r = run(cfg, log=_log)
    t = Table("condition", "coef", "misaligned", "95% CI", "incoherent", "mean coherent",
              title=f"steering at layer {r['layer']} (scale {r['scale']:.1f}, {r['positions']} positions), judge {r['judge']}")
    for row in r["rows"]:
        t.add_row(row["condition"], f"{row['coef']:+g}", _pct(row["rate"]), f"[{_pct(row['lo'])}, {_pct(row['hi'])}]",
                  _pct(row["incoherent"]), f"{row['mean_coherent']:.0f}")
    out.print(t)
    if r["judge_is_proxy"]:
        out.print("[bold yellow]PROXY judge, not an LLM reading the answers[/]")
    out.print(f"-> {cfg.out}/results.json, answers.csv, steer.png")


def monitor(cfg: C.MonitorConfig) -> None:
    from persona_sae.monitor import run

    r = run(cfg, log=_log)
    if r.get("rows"):
        cols = [f"latent {j} Δ [95% CI]" for j in r["latents"]]
        rated = all("misaligned_rate" in x for x in r["rows"])
        t = Table("checkpoint", *cols, *(["misaligned"] if rated else []), title=f"monitor vs {r['base']} (layer {r['layer']})")
        for x in r["rows"]:
            cells = [f"{v['delta']:+.4f} [{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]" for v in x["latents"].values()]
            t.add_row(x["name"], *cells, *([_pct(x["misaligned_rate"]["rate"])] if rated else []))
        out.print(t)
        if "auroc_misaligned_vs_aligned" in r:
            out.print("AUROC of the shift, misaligned vs aligned checkpoints: " +
                      ", ".join(f"latent {j}: {a:.2f}" for j, a in r["auroc_misaligned_vs_aligned"].items()))
    if "rows_scored" in r:
        out.print(f"{r['rows_scored']} rows scored -> {cfg.out}/rows.csv (highest first)")
    out.print(f"-> {cfg.out}")
