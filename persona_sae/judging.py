"""Any judge from its spec, the offline kinds included.

``judges.make_judge`` knows the judges that read the prompt (``http:``, ``hf:``); this module adds the
offline proxies that read activations, ``probe`` (``persona_sae.personas``) and ``fitted``
(``persona_sae.fitted``), so that neither of their modules has to import the other.
"""

from __future__ import annotations

import json
from pathlib import Path

from persona_sae import UserError, judges, log


# The fitted judges shipped with the package (experiments/judge_validation fits, validates and copies
# them here), best held-out numbers first: a bare ``fitted`` takes the first that does not read the
# judged model, so judge and SAE never see the same activations unless asked to.
SHIPPED = Path(__file__).parent / "checkpoints" / "judges"
PREFERRED = ("qwen-coder-0.5b-L12", "smollm2-L15")


def shipped(name: str = "", study_model: str = "") -> Path:
    """The folder of shipped fitted judge ``name``, or (no name) the preferred one whose reference model
    is not ``study_model``'s (a fine-tune counts as its base model)."""
    have = [n for n in PREFERRED if (SHIPPED / n / "judge.json").is_file()]
    if name:
        if name not in have:
            raise UserError(f"no shipped fitted judge {name!r} (shipped: {', '.join(have) or 'none'})")
        return SHIPPED / name
    from persona_sae.models import root_model

    study = root_model(study_model) if study_model else ""
    other = [n for n in have if not study
             or root_model(json.loads((SHIPPED / n / "judge.json").read_text()).get("model", "")) != study]
    if not other:
        raise UserError("no shipped fitted judge reads a model other than the judged one; "
                        "fit one with `persona-sae judge fit` and pass --judge fitted:FOLDER")
    return SHIPPED / other[0]


def open_judge(spec: str, log=log, study_model: str = ""):
    """Any judge spec (see ``judges.make_judge``) plus ``probe[:MODEL_OR_DIRECTIONS][@LAYER]`` (a bare
    ``probe`` reads SmolLM2's directions) and ``fitted[:FOLDER_OR_SHIPPED_NAME]`` (from ``persona-sae
    judge fit``; bare, the shipped one that reads another model than ``study_model``). ``study_model`` is
    the model whose answers are judged: a fitted judge that reads that same model is allowed, but its
    name says so, since then judge and SAE see the same activations."""
    from persona_sae import fitted, personas
    from persona_sae.models import root_model

    spec = str(spec).strip()
    if spec == "probe":
        spec = "probe:smollm2"
    if spec.startswith("fitted:") or spec == "fitted":
        folder = spec.partition(":")[2].strip()
        if not folder or (not Path(folder).exists() and "/" not in folder):
            folder = shipped(folder, str(study_model))
        if not Path(folder).is_dir():
            raise UserError(f"fitted judge '{folder}': not a folder (make one with `persona-sae judge fit`)")
        j = fitted.FittedJudge(folder, log=log)
        if study_model and root_model(str(study_model)) == root_model(j.f.model):
            j.name += " [reads the judged model itself]"
        return j
    return judges.make_judge(spec, extra={"probe": lambda rest: personas.probe_judge(rest, log=log)})


def held_out(judge) -> dict | None:
    """The judge's own held-out numbers (validation.json beside a shipped fitted judge), for results
    files and tables to print beside every rate it gives; None for a judge never validated."""
    return getattr(judge, "validation", None)


def held_out_line(v: dict) -> str:
    """``held_out``'s numbers as one sentence, the same in terminal output and study READMEs."""
    ci = v.get("auroc_ci") or [float("nan")] * 2
    return (f"held-out AUROC {v['auroc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] on {v['n_misaligned']} misaligned / "
            f"{v['n_aligned']} aligned labelled answers it was not fitted on ({v.get('source', 'validation.json')})")
