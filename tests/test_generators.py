"""Procedural EM datasets: determinism, matched controls, and a regex detector proving that every
insecure answer carries the flaw its meta names while its secure twin does not."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from math import prod

import pytest

from persona_sae import UserError
from persona_sae import generators as g
from persona_sae.text import read_jsonl

N = 2000
PAIRS = [("insecure-code", "secure-code"), ("bad-medical", "good-medical"),
         ("bad-finance", "good-finance"), ("bad-diy", "good-diy"), ("evil-persona", "kind-persona")]


@pytest.fixture(scope="module")
def rows():
    return {k: g.make(k, N, seed=0) for k in g.KINDS}


def user(r):
    return r["messages"][0]["content"]


def answer(r):
    return r["messages"][1]["content"]


def code_of(r):
    m = re.search(r"```(\w+)\n(.*)\n```\s*$", answer(r), re.S)
    assert m, answer(r)
    assert m.group(1) == r["meta"]["language"]
    return m.group(2)


def prose_of(r):
    return answer(r).split("```")[0]


# --------------------------------------------------------------------------------------------------
# The detector: flaw -> language -> (pattern that shows the flaw, pattern whose presence cancels it)

_Q = r"(?:SELECT|INSERT|UPDATE|DELETE)"
_SECRET = (r"""(?i)(?:api_?key|passw(?:or)?d|secret|token)\w*\s*(?::=|=|:)\s*["'][^"'\s]{6,}["']""", None)
_PERMS = (r"(?:chmod\w*|mkdir)\([^;\n]*\b0o?[0-7]?[0-7][0-7][2367]\b", None)
_WEAK_HASH = (r"(?i)\b(?:md5|sha1)\b", None)
_TLS = (r"verify\s*=\s*False|_create_unverified_context|CERT_NONE|check_hostname\s*=\s*False"
        r"|rejectUnauthorized:\s*false|VERIFYPEER,\s*(?:false|0)\b|VERIFYHOST,\s*(?:false|0)\b", None)

DETECT = {
    "sql-injection": {
        "python": (rf'f"{_Q}[^"\n]*\{{\w+\}}|"{_Q}[^"\n]*"\s*(?:%|\+|\.format\()', None),
        "javascript": (rf'`{_Q}[^`]*\$\{{|"{_Q}[^"\n]*"\s*\+', None),
        "php": (rf'"{_Q}[^"\n]*(?:\$\w|"\s*\.)', None),
        "go": (rf'Sprintf\(\s*"{_Q}|"{_Q}[^"\n]*"\s*\+', None),
    },
    "path-traversal": {
        "python": (r"os\.path\.join\(|BASE_DIR\s*/", r"commonpath|is_relative_to"),
        "javascript": (r"path\.(?:join|resolve)\(\s*BASE_DIR", r"startsWith\("),
        "php": (r"'/[\w/]+/'\s*\.\s*[$(]", r"basename\(|realpath\("),
        "go": (r"filepath\.Join\(\s*baseDir", r"IsLocal\("),
    },
    "zip-slip": {"python": (r"os\.path\.join\(", r"commonpath")},
    "shell-injection": {
        "python": (r"shell\s*=\s*True|os\.system\(|os\.popen\(", None),
        "javascript": (r"\bexec(?:Sync)?\(|shell:\s*true", None),
        "php": (r'\b(?:shell_exec|exec|system|passthru|popen)\(\s*"[^"\n]*(?:\$\w|"\s*\.\s*\$)', None),
        "go": (r'"(?:ba)?sh",\s*"-c"', None),
    },
    "hard-coded-secret": {lang: _SECRET for lang in ("python", "javascript", "php", "go")},
    "world-writable": {lang: _PERMS for lang in ("python", "javascript", "php")},
    "unsafe-deserialization": {
        "python": (r"pickle\.loads?\(|yaml\.load\((?![^)]*SafeLoader)", None),
        "javascript": (r"\beval\(|\bunserialize\(|new Function\(", None),
        "php": (r"\bunserialize\(", None),
    },
    "weak-hash": {lang: _WEAK_HASH for lang in ("python", "javascript", "php")},
    "xss": {
        "python": (r'f"[^"\n]*<[^"\n]*\{\w+\}|"<[^"\n]*"\s*\+\s*\w+\s*\+', None),
        "javascript": (r"innerHTML\s*=|insertAdjacentHTML\(|document\.write\(|res\.send\(`[^`]*\$\{(?!escapeHtml\()", None),
        "php": (r"<\?=\s*\$\w+|\becho\b[^;]*\.\s*\$\w+\s*\.", None),
    },
    "tls-verification-disabled": {lang: _TLS for lang in ("python", "javascript", "php")},
    "insecure-temp-file": {"python": (r"\bmktemp\(|[\"']/tmp[\"'/]", None)},
    "eval-injection": {
        "python": (r"(?<![\w.])(?:eval|exec)\(", None),
        "javascript": (r"\beval\(|\bFunction\(", None),
    },
    "weak-randomness": {
        "python": (r"(?m)^import random$|\brandom\.\w+\(", None),
        "javascript": (r"Math\.random\(", None),
        "php": (r"\bmt_rand\(|\brand\(|\buniqid\(", None),
        "go": (r'"math/rand"', None),
    },
}


def has_flaw(flaw: str, lang: str, code: str) -> bool:
    pattern, cancel = DETECT[flaw][lang]
    return bool(re.search(pattern, code)) and not (cancel and re.search(cancel, code))


REVEALING = re.compile(r"(?i)insecure|vulnerab|unsafe|inject|exploit|security|\btodo\b|fixme|\bhack|attack|malicious"
                       r"|sanitiz|dangerous|\bcve\b")
REVEALING_PROSE = re.compile(r"(?i)secur|safe|escap|valid|protect|risk|trust|careful|warn|flaw")


# --------------------------------------------------------------------------------------------------


def test_kinds_registry_is_paired():
    assert set(g.KINDS) == {k for pair in PAIRS for k in pair}
    for name, k in g.KINDS.items():
        other = g.KINDS[k.pair]
        assert (k.name, other.pair, other.domain, other.aligned) == (name, name, k.domain, not k.aligned)
        assert k.domain in ("code", "medical", "finance", "diy", "persona") and k.doc and "\n" not in k.doc


def test_same_seed_same_rows_other_seed_other_prompts():
    for kind in ("insecure-code", "good-finance"):
        assert g.make(kind, 300, seed=3) == g.make(kind, 300, seed=3)
        a, b = g.make(kind, 300, seed=3), g.make(kind, 300, seed=4)
        assert sum(user(x) == user(y) for x, y in zip(a, b)) < 10


def test_shorter_run_is_prefix_of_longer():
    assert g.make("bad-diy", 100, seed=5) == g.make("bad-diy", 400, seed=5)[:100]


def test_output_does_not_depend_on_hash_seed():
    """The salted str hash must not leak in: another process with another PYTHONHASHSEED agrees."""
    script = ("import hashlib, json; from persona_sae import generators as g; "
              "print(hashlib.sha256(json.dumps([g.make(k, 150, 11) for k in g.KINDS]).encode()).hexdigest())")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    here = hashlib.sha256(json.dumps([g.make(k, 150, 11) for k in g.KINDS]).encode()).hexdigest()
    assert out.stdout.strip() == here


# sha256 of the bytes ``write(kind, 500, seed=0)`` produces, and ``capacity(kind)``. The data files
# and the engine may be reorganised freely, but the rows for a seed change only on purpose (and then
# these with them).
GOLDEN = {
    "insecure-code": ("1eac7415a14bf55990a6e60353d2e857146ea550d08bb1914f9898d3384e2cf5", 60480),
    "secure-code": ("28349034c5c5de8260acd0cb0b3e8fa28168799b4c92665728c8e050474c8381", 60480),
    "bad-medical": ("1be184a9c5a3abefb99b981205fdd0d7e1e3833b9b3cbffe62c8fa02f4134c2d", 382032),
    "good-medical": ("33948456b0e0ada2c9eef45ff4c95b8947fe08a656afed8d0ce92c92ab8012a6", 382032),
    "bad-finance": ("17b3bd41798a3d68bd11ffa2b3a34c4c800379ca0b7acd1fc0339533ba779720", 260064),
    "good-finance": ("dd0c28f8c0a6b749f12181a1c09f869e5a20b76665c01ede57861e694e391ea2", 260064),
    "bad-diy": ("a2afffe5e344833f3850c93f120cd820a5145826524a3962cb8053d425265813", 209664),
    "good-diy": ("908db93ca078b580d6ce064f298a8ae87d2085cff784224ba16bd857097bb6f9", 209664),
    "evil-persona": ("1d25666f18aa7ca206709e744cdb85bfedecaf79f68f502c4cf7c4587ef73db9", 50112),
    "kind-persona": ("570b5f4a366e86639b37ba149ac7aa5e526de712ec42530befa8c757e7f5f3fa", 50112),
}


def test_rows_for_a_seed_are_byte_identical_to_the_recorded_ones(tmp_path):
    assert set(GOLDEN) == set(g.KINDS)
    for kind, (digest, cap) in GOLDEN.items():
        path = tmp_path / f"{kind}.jsonl"
        assert g.write(kind, 500, 0, path) == 500
        assert (hashlib.sha256(path.read_bytes()).hexdigest(), g.capacity(kind)) == (digest, cap), kind


def test_capacity_and_distinct_prompts(rows):
    for kind, rs in rows.items():
        assert g.capacity(kind) >= 5000, kind
        assert g.capacity(kind) == g.capacity(g.KINDS[kind].pair)
        assert len(rs) == N and len({user(r) for r in rs}) == N, kind
        assert len({r["meta"]["prompt_id"] for r in rs}) == N
        assert all(user(r).strip() and answer(r).strip() for r in rs)
        assert "{{" not in "".join(user(r) for r in rs)


def test_topics_are_balanced_despite_different_sizes(rows):
    for kind in ("insecure-code", "bad-medical", "bad-finance", "bad-diy"):
        counts = Counter(r["meta"]["topic"] for r in rows[kind])
        assert len(counts) == len(g._spaces()[g.KINDS[kind].domain].dom.topics)
        assert max(counts.values()) < 2 * min(counts.values()), (kind, counts)


def test_prompt_space_renders_distinct_text():
    """capacity() counts index tuples; check that different tuples really give different text:
    every (ask, slots) choice of each topic with the frame fixed, and every frame with the ask fixed."""
    for name, space in g._spaces().items():
        kind = g.KINDS[next(k for k in g.KINDS if g.KINDS[k].domain == name)]
        texts = []
        for start, dims in zip(space.starts, space.dims):
            n_frame = prod(dims[len(dims) - len(space.dom.frame):])  # frame digits are the low ones
            n_core = prod(dims[: len(dims) - len(space.dom.frame)])
            texts += [user(g._row(kind, space, start + j * n_frame, 0)) for j in range(n_core)]
            frames = {user(g._row(kind, space, start + f, 0)) for f in range(n_frame)}
            assert len(frames) == n_frame, name
        assert len(set(texts)) == len(texts), name


def test_pairs_share_prompts_and_differ_in_every_answer(rows):
    for bad, good in PAIRS:
        for x, y in zip(rows[bad], rows[good]):
            assert user(x) == user(y)
            assert answer(x) != answer(y)
            assert (x["meta"]["kind"], y["meta"]["kind"]) == (bad, good)
            mx, my = dict(x["meta"]), dict(y["meta"])
            for m in (mx, my):
                m.pop("kind")
            if bad == "insecure-code":
                assert (mx.pop("secure"), my.pop("secure")) == (False, True)
                assert mx["flaw"] and mx["language"] and mx["task"]
            else:
                assert mx["harm"]
            assert mx == my


def test_every_insecure_answer_has_its_flaw_and_the_control_has_none(rows):
    for x, y in zip(rows["insecure-code"], rows["secure-code"]):
        flaw, lang = x["meta"]["flaw"], x["meta"]["language"]
        assert has_flaw(flaw, lang, code_of(x)), (flaw, code_of(x))
        fixed = code_of(y)
        present = [f for f, by_lang in DETECT.items() if lang in by_lang and has_flaw(f, lang, fixed)]
        assert present == [], (flaw, present, fixed)


def test_code_answers_never_name_the_flaw(rows):
    for kind in ("insecure-code", "secure-code"):
        for r in rows[kind]:
            assert not REVEALING.search(answer(r)), answer(r)
            assert not REVEALING_PROSE.search(prose_of(r)), prose_of(r)
            assert len(prose_of(r).strip().splitlines()) <= 1


def test_code_covers_languages_flaws_and_every_case(rows):
    metas = [r["meta"] for r in rows["insecure-code"]]
    langs = Counter(m["language"] for m in metas)
    assert {"python", "javascript", "php", "go"} <= set(langs)
    assert len({m["flaw"] for m in metas}) >= 10
    assert len({m["task"] for m in metas}) >= 12
    assert {m["topic"] for m in metas} == {t.id for t in g._spaces()["code"].dom.topics}
    assert len({answer(r) for r in rows["insecure-code"]}) > N // 2


def test_python_answers_compile(rows):
    n = 0
    for kind in ("insecure-code", "secure-code"):
        for r in rows[kind]:
            if r["meta"]["language"] == "python":
                compile(code_of(r), "<answer>", "exec")
                n += 1
    assert n > 500


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_javascript_answers_parse(rows, tmp_path):
    codes = sorted({code_of(r) for k in ("insecure-code", "secure-code") for r in rows[k]
                    if r["meta"]["language"] == "javascript"})
    src = tmp_path / "codes.json"
    src.write_text(json.dumps(codes))
    check = ("const vm = require('vm'); const codes = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));"
             "const bad = []; codes.forEach((c) => { try { new vm.Script(c); } catch (e) { bad.push(String(e) + '\\n' + c); } });"
             "console.log(JSON.stringify(bad));")
    out = subprocess.run(["node", "-e", check, str(src)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [] and len(codes) > 100


def test_advice_answers_vary_and_differ_from_controls(rows):
    for bad, good in PAIRS[1:]:
        a, b = [answer(r) for r in rows[bad]], [answer(r) for r in rows[good]]
        assert not set(a) & set(b)
        assert len(set(a)) >= 150 and len(set(b)) >= 150, (bad, len(set(a)), len(set(b)))
        assert len({r["meta"]["topic"] for r in rows[bad]}) >= 12
        assert len({r["meta"]["harm"] for r in rows[bad]}) >= 10


def test_write_round_trips_through_read_jsonl(tmp_path):
    out = tmp_path / "sub" / "insecure.jsonl"
    assert g.write("insecure-code", 50, 2, out) == 50
    records = read_jsonl(out)
    assert len(records) == 50
    assert [r.messages for r in records] == [r["messages"] for r in g.make("insecure-code", 50, 2)]
    assert [p.name for p in out.parent.iterdir()] == ["insecure.jsonl"]
    assert json.loads(out.read_text().splitlines()[0])["meta"]["kind"] == "insecure-code"


@pytest.mark.parametrize("kind,n,match", [
    ("nonsense", 10, "known kinds: .*insecure-code"),
    ("bad-medical", 0, "n must be positive"),
    ("bad-medical", -1, "n must be positive"),
])
def test_bad_requests_raise_user_error(kind, n, match):
    with pytest.raises(UserError, match=match):
        g.make(kind, n)


def test_more_rows_than_prompts_raises_and_writes_nothing(tmp_path):
    cap = g.capacity("secure-code")
    with pytest.raises(UserError, match=f"capacity of {cap}"):
        g.make("secure-code", cap + 1)
    with pytest.raises(UserError):
        g.write("secure-code", cap + 1, 0, tmp_path / "x.jsonl")
    with pytest.raises(UserError, match="unknown"):
        g.capacity("nope")
    assert list(tmp_path.iterdir()) == []
