"""Any judge from its spec, the offline kinds included.

``judges.make_judge`` knows the judges that read the prompt (``http:``, ``hf:``); this module adds the
offline proxies that read activations, ``probe`` (``persona_sae.personas``) and ``fitted``
(``persona_sae.fitted``), so that neither of their modules has to import the other.
"""

from __future__ import annotations

from pathlib import Path

from persona_sae import UserError, judges, log


def open_judge(spec: str, log=log, study_model: str = ""):
    """Any judge spec (see ``judges.make_judge``) plus ``probe[:MODEL_OR_DIRECTIONS][@LAYER]`` (a bare
    ``probe`` reads SmolLM2's directions) and ``fitted:FOLDER`` (from ``persona-sae judge fit``).
    ``study_model`` is the model whose answers are judged: a fitted judge that reads that same model is
    allowed, but its name says so, since then judge and SAE see the same activations."""
    from persona_sae import fitted, personas

    spec = str(spec).strip()
    if spec == "probe":
        spec = "probe:smollm2"
    if spec.startswith("fitted:") or spec == "fitted":
        folder = spec.partition(":")[2].strip()
        if not folder or not Path(folder).is_dir():
            raise UserError(f"fitted judge '{folder or spec}': not a folder (make one with `persona-sae judge fit`)")
        j = fitted.FittedJudge(folder, log=log)
        if study_model and str(study_model) == j.f.model:
            j.name += " [reads the judged model itself]"
        return j
    return judges.make_judge(spec, extra={"probe": lambda rest: personas.probe_judge(rest, log=log)})
