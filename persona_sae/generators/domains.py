"""The domain registry: each domain's topics, prompt frame and answer-side dimensions, assembled
from the data modules, and its prompt index space (``_SPACES``, what ``make`` samples from)."""

from __future__ import annotations

from persona_sae.generators.code_common import _ASKS, _CODE_ANSWER_DIMS, _CODE_CLOSINGS, _CODE_OPENERS, _TASK_SLOTS
from persona_sae.generators.code_go import _GO
from persona_sae.generators.code_javascript import _JS
from persona_sae.generators.code_php import _PHP
from persona_sae.generators.code_python import _PY
from persona_sae.generators.diy import _DIY, _DIY_FRAME
from persona_sae.generators.engine import _Domain, _opts, _Space, _Topic
from persona_sae.generators.finance import _FIN_FRAME, _FINANCE
from persona_sae.generators.medical import _MED_FRAME, _MEDICAL


def _code_topics() -> tuple[_Topic, ...]:
    out = []
    for lang, short, table in (("python", "py", _PY), ("javascript", "js", _JS), ("php", "php", _PHP), ("go", "go", _GO)):
        for (task, flaw), pairs in table.items():
            out.append(_Topic(
                id=f"{short}-{task}", asks=_ASKS[task], slots=(_TASK_SLOTS[task],),
                bad=tuple(b for b, _ in pairs), good=tuple(g for _, g in pairs),
                meta={"language": lang, "task": task, "flaw": flaw},
            ))
    return tuple(out)


_ANSWER_OPENERS = (_opts("", "", "Good question.", "Thanks for asking.", key="intro"),)

_DOMAINS = {
    "code": _Domain("code", _code_topics(), (("opener", _CODE_OPENERS), ("closing", _CODE_CLOSINGS)),
                    ("opener", "ask", "closing"), _CODE_ANSWER_DIMS, paired=True),
    "medical": _Domain("medical", _MEDICAL, _MED_FRAME, ("opener", "ask", "context", "closing"), _ANSWER_OPENERS, paired=False),
    "finance": _Domain("finance", _FINANCE, _FIN_FRAME, ("opener", "ask", "context", "closing"), _ANSWER_OPENERS, paired=False),
    "diy": _Domain("diy", _DIY, _DIY_FRAME, ("opener", "ask", "context", "closing"), _ANSWER_OPENERS, paired=False),
}

_SPACES = {name: _Space(d) for name, d in _DOMAINS.items()}
