"""Foreign SAE formats load into sae-lens objects that compute what the original code computes."""

import json

import pytest
import torch
from safetensors.torch import save_file

from persona_sae import UserError
from persona_sae.latents import load_sae, sae_checksum

D, N, K = 16, 48, 5


@pytest.fixture
def x():
    return torch.randn(32, D, generator=torch.Generator().manual_seed(0)) * 2


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.3


def topk_ref(pre, k):
    pre = torch.relu(pre)
    vals, idx = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, vals)


def test_sparsify_folder(tmp_path, x):
    enc_w, enc_b, w_dec, b_dec = rand(N, D, seed=1), rand(N, seed=2), rand(N, D, seed=3), rand(D, seed=4)
    save_file({"encoder.weight": enc_w, "encoder.bias": enc_b, "W_dec": w_dec, "b_dec": b_dec},
              str(tmp_path / "sae.safetensors"))
    (tmp_path / "cfg.json").write_text(json.dumps({"expansion_factor": 3, "normalize_decoder": True, "num_latents": N,
                                                   "k": K, "multi_topk": False, "skip_connection": False, "d_in": D}))
    sae = load_sae(str(tmp_path))
    want = topk_ref((x - b_dec) @ enc_w.T + enc_b, K)
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), want, atol=1e-5)
        assert torch.allclose(sae.decode(want), want @ w_dec + b_dec, atol=1e-5)


def test_dictionary_learning_standard_and_topk(tmp_path, x):
    enc_w, enc_b, dec_w, bias = rand(N, D, seed=1), rand(N, seed=2), rand(D, N, seed=3), rand(D, seed=4)
    torch.save({"encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w, "bias": bias},
               tmp_path / "ae.pt")
    sae = load_sae(str(tmp_path / "ae.pt"))
    f = torch.relu((x - bias) @ enc_w.T + enc_b)
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), f, atol=1e-5)
        assert torch.allclose(sae.decode(f), f @ dec_w.T + bias, atol=1e-5)
    topk = tmp_path / "topk"
    topk.mkdir()
    torch.save({"encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w, "b_dec": bias,
                "k": torch.tensor(K)}, topk / "ae.pt")
    sae = load_sae(str(topk))
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), topk_ref((x - bias) @ enc_w.T + enc_b, K), atol=1e-5)


def test_dictionary_learning_jumprelu(tmp_path, x):
    w = {"W_enc": rand(D, N, seed=1), "b_enc": rand(N, seed=2), "W_dec": rand(N, D, seed=3), "b_dec": rand(D, seed=4),
         "threshold": torch.full((N,), 0.2)}
    torch.save(w, tmp_path / "ae.pt")
    sae = load_sae(str(tmp_path))
    pre = x @ w["W_enc"] + w["b_enc"]
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), pre * (pre > 0.2), atol=1e-5)


def _dl(folder, sd, dict_class=None):
    folder.mkdir()
    torch.save(sd, folder / "ae.pt")
    if dict_class:
        (folder / "config.json").write_text(json.dumps({"trainer": {"dict_class": dict_class, "layer": 3}}))
    return folder


def test_dictionary_learning_batchtopk_keeps_what_passes_its_threshold(tmp_path, x):
    enc_w, enc_b, dec_w, b_dec = rand(N, D, seed=1), rand(N, seed=2), rand(D, N, seed=3), rand(D, seed=4)
    sd = {"encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w, "b_dec": b_dec,
          "k": torch.tensor(K), "threshold": torch.tensor(0.3)}
    sae = load_sae(str(_dl(tmp_path / "b", sd, "BatchTopKSAE")))
    post = torch.relu((x - b_dec) @ enc_w.T + enc_b)
    want = post * (post > 0.3)  # dictionary_learning's BatchTopKSAE.encode at inference
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), want, atol=1e-5)
        assert not torch.allclose(sae.encode(x), topk_ref((x - b_dec) @ enc_w.T + enc_b, K), atol=1e-3)
        assert torch.allclose(sae.decode(want), want @ dec_w.T + b_dec, atol=1e-5)
    # the same tensors under AutoEncoderTopK keep each token's top k
    sae = load_sae(str(_dl(tmp_path / "t", sd, "AutoEncoderTopK")))
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), topk_ref((x - b_dec) @ enc_w.T + enc_b, K), atol=1e-5)


@pytest.mark.parametrize("dict_class, extra, msg", [
    (None, {"k": torch.tensor(K), "threshold": torch.tensor(0.3)}, "AutoEncoderTopK or BatchTopKSAE"),
    ("BatchTopKSAE", {"k": torch.tensor(K), "threshold": torch.tensor(-1.0)}, "never set"),
    ("MatryoshkaBatchTopKSAE", {"k": torch.tensor(K)}, "dict_class 'MatryoshkaBatchTopKSAE' is not supported"),
    ("GatedAutoEncoder", {}, "dict_class 'GatedAutoEncoder' is not supported"),
])
def test_dictionary_learning_variants_it_cannot_load_exactly_are_refused(tmp_path, dict_class, extra, msg, capsys):
    from persona_sae.cli import main

    sd = {"encoder.weight": rand(N, D), "encoder.bias": rand(N), "decoder.weight": rand(D, N), "b_dec": rand(D), **extra}
    folder = _dl(tmp_path / "ae", sd, dict_class)
    with pytest.raises(UserError, match=msg):
        load_sae(str(folder))
    assert main(["browse", "1", "--sae", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert msg.split("'")[0] in err and "\n" not in err


@pytest.mark.parametrize("field, msg", [({"activation": "groupmax"}, "activation 'groupmax'"),
                                        ({"transcode": True}, "transcoders"),
                                        ({"skip_connection": True}, "skip connection")])
def test_sparsify_variants_it_cannot_load_exactly_are_refused(tmp_path, field, msg):
    save_file({"encoder.weight": rand(N, D), "encoder.bias": rand(N), "W_dec": rand(N, D), "b_dec": rand(D)},
              str(tmp_path / "sae.safetensors"))
    (tmp_path / "cfg.json").write_text(json.dumps({"num_latents": N, "k": K, "d_in": D, **field}))
    with pytest.raises(UserError, match=msg):
        load_sae(str(tmp_path))


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"encoder.weight": Evil()}, tmp_path / "ae.pt")
    with pytest.raises(UserError, match="refused to unpickle"):
        load_sae(str(tmp_path / "ae.pt"))


def test_own_folder_checksum_and_errors(tmp_path):
    from sae_lens import TopKSAE, TopKSAEConfig

    sae = TopKSAE(TopKSAEConfig(d_in=D, d_sae=N, k=K))
    sae.save_model(str(tmp_path / "ours"))
    loaded = load_sae(str(tmp_path / "ours"))
    assert sae_checksum(loaded) == sae_checksum(sae)
    with torch.no_grad():
        loaded.W_dec[0, 0] += 1
    assert sae_checksum(loaded) != sae_checksum(sae)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no SAE"):
        load_sae(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="SAE not found"):
        load_sae(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="neither a folder nor a SAELens registry release"):
        load_sae("no-such-release/blocks.0")


def test_registry_offline_is_a_clean_error():
    with pytest.raises(UserError, match="could not download SAELens SAE gpt2-small-res-jb/blocks.8.hook_resid_pre"):
        load_sae("gpt2-small-res-jb/blocks.8.hook_resid_pre")


def _saelens(kind):
    """An SAELens SAE of each architecture with random weights, saved as SAELens saves it (batchtopk
    through its training class, which saves a JumpReLU with the top-k threshold)."""
    import sae_lens as S

    cfgs = {"standard": (S.StandardSAE, S.StandardSAEConfig, {}),
            "topk": (S.TopKSAE, S.TopKSAEConfig, {"k": K}),
            "jumprelu": (S.JumpReLUSAE, S.JumpReLUSAEConfig, {}),
            "gated": (S.GatedSAE, S.GatedSAEConfig, {}),
            "batchtopk": (S.BatchTopKTrainingSAE, S.BatchTopKTrainingSAEConfig, {"k": K})}
    cls, cfg_cls, kw = cfgs[kind]
    sae = cls(cfg_cls(d_in=D, d_sae=N, apply_b_dec_to_input=True, **kw))
    with torch.no_grad():
        for i, (name, p) in enumerate(sorted(sae.named_parameters())):
            p.copy_(rand(*p.shape, seed=10 + i))
        if kind == "jumprelu":
            sae.threshold.copy_(torch.rand(N, generator=torch.Generator().manual_seed(5)) * 0.5)
        if kind == "batchtopk":
            sae.topk_threshold.fill_(0.4)
    return sae


def _saelens_ref(kind, w, x):
    """What each architecture computes, written from its paper's formula and the saved tensors alone."""
    xc = x - w["b_dec"]
    if kind == "gated":
        gate = (xc @ w["W_enc"] + w["b_gate"]) > 0
        return gate * torch.relu(xc @ (w["W_enc"] * w["r_mag"].exp()) + w["b_mag"])
    pre = xc @ w["W_enc"] + w["b_enc"]
    if kind == "standard":
        return torch.relu(pre)
    if kind == "topk":
        return topk_ref(pre, K)
    return torch.relu(pre) * (pre > w["threshold"])  # jumprelu; batchtopk is saved as one


@pytest.mark.parametrize("kind", ["standard", "topk", "jumprelu", "gated", "batchtopk"])
def test_saelens_architectures_load_as_their_formula(tmp_path, x, kind):
    from safetensors.torch import load_file

    sae = _saelens(kind)
    (sae.save_inference_model if kind == "batchtopk" else sae.save_model)(str(tmp_path / kind))
    w = load_file(str(tmp_path / kind / "sae_weights.safetensors"))
    loaded = load_sae(str(tmp_path / kind))
    f = _saelens_ref(kind, w, x)
    assert (f > 0).any() and (f == 0).any()  # the formula's sparsity is exercised
    with torch.no_grad():
        assert torch.allclose(loaded.encode(x), f, atol=1e-5)
        assert torch.allclose(loaded.decode(f), f @ w["W_dec"] + w["b_dec"], atol=1e-5)


def test_saelens_unfolded_norm_scaling_is_refused(tmp_path, capsys):
    """normalize_activations 'expected_average_only_in' in a saved cfg.json means the dataset's scaling
    factor was never folded into the weights (SAELens sets 'none' when it folds), and load_from_disk would
    then encode unscaled activations without a word."""
    from persona_sae.cli import main

    sae = _saelens("topk")
    sae.save_model(str(tmp_path / "s"))
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    (tmp_path / "s" / "cfg.json").write_text(json.dumps({**cfg, "normalize_activations": "expected_average_only_in"}))
    with pytest.raises(UserError, match="scaling factor"):
        load_sae(str(tmp_path / "s"))
    assert main(["browse", "1", "--sae", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert "expected_average_only_in" in err and "\n" not in err


def test_saelens_transcoders_are_refused(tmp_path):
    """A transcoder's decoder writes another hook than its encoder reads: splicing its reconstruction
    back (attribution) or steering along its decoder would act on the wrong activations."""
    from sae_lens.saes.transcoder import Transcoder, TranscoderConfig

    tc = Transcoder(TranscoderConfig(d_in=D, d_sae=N, d_out=D, apply_b_dec_to_input=False))
    tc.save_model(str(tmp_path / "t"))
    with pytest.raises(UserError, match="'transcoder' is a transcoder"):
        load_sae(str(tmp_path / "t"))
