"""Foreign SAE formats load into sae-lens objects that compute what the original code computes."""

import json
import re

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


def _sparsify(folder, kind):
    """A sparsify SAE as SparseCoder.save_to_disk writes it: safetensors.save_model of the module, and
    cfg.json = SparseCoderConfig.to_dict() plus d_in. Returns (folder, weights)."""
    transcode, skip = kind.startswith("transcode"), kind.endswith("+skip")
    w = {"encoder.weight": rand(N, D, seed=1), "encoder.bias": rand(N, seed=2), "W_dec": rand(N, D, seed=3),
         "b_dec": rand(D, seed=4)}
    if skip:
        w["W_skip"] = rand(D, D, seed=5)
    folder.mkdir()
    save_file(w, str(folder / "sae.safetensors"))
    cfg = {"activation": "groupmax" if kind == "groupmax" else "topk", "expansion_factor": 3, "normalize_decoder": True,
           "num_latents": N, "k": K, "multi_topk": False, "skip_connection": skip, "transcode": transcode, "d_in": D}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return folder, w


def _sparsify_ref(kind, w):
    """sparsify's SparseCoder.encode (fused_encoder: relu(linear), then topk) and decode, written out."""
    return (lambda x: topk_ref((x - w["b_dec"]) @ w["encoder.weight"].T + w["encoder.bias"], K),
            lambda f: f @ w["W_dec"] + w["b_dec"])


DL_TRAINERS = {"AutoEncoder": "StandardTrainerAprilUpdate", "AutoEncoderTopK": "TopKTrainer",
               "BatchTopKSAE": "BatchTopKTrainer", "JumpReluAutoEncoder": "JumpReluTrainer",
               "MatryoshkaBatchTopKSAE": "MatryoshkaBatchTopKTrainer"}


def _dl_state(cls):
    """The state_dict each dictionary_learning class saves (nn.Linear encoder/decoder or W_enc/W_dec
    parameters, k and threshold buffers), with random values. AutoEncoder's decoder columns are left off
    unit norm, as its April-update trainer leaves them."""
    lin = {"encoder.weight": rand(N, D, seed=1), "encoder.bias": rand(N, seed=2), "decoder.weight": rand(D, N, seed=3)}
    par = {"W_enc": rand(D, N, seed=1), "b_enc": rand(N, seed=2), "W_dec": rand(N, D, seed=3), "b_dec": rand(D, seed=4)}
    return {"AutoEncoder": {**lin, "bias": rand(D, seed=4)},
            "AutoEncoderTopK": {**lin, "b_dec": rand(D, seed=4), "k": torch.tensor(K, dtype=torch.int),
                                "threshold": torch.tensor(0.3)},
            "BatchTopKSAE": {**lin, "b_dec": rand(D, seed=4), "k": torch.tensor(K, dtype=torch.int),
                             "threshold": torch.tensor(0.3)},
            "JumpReluAutoEncoder": {**par, "threshold": torch.rand(N, generator=torch.Generator().manual_seed(5)) * 0.5},
            "MatryoshkaBatchTopKSAE": {**par, "k": torch.tensor(K, dtype=torch.int), "threshold": torch.tensor(0.3),
                                       "group_sizes": torch.tensor([8, 16, 24])}}[cls]


def _dl(folder, sd, dict_class=None, **trainer):
    """A dictionary_learning trainer folder as trainSAE writes it: ae.pt (the state_dict, torch.save) and
    config.json {"trainer": trainer.config, "buffer": ...}."""
    folder.mkdir(parents=True)
    torch.save(sd, folder / "ae.pt")
    if dict_class:
        t = {"trainer_class": DL_TRAINERS.get(dict_class, "Trainer"), "dict_class": dict_class, "activation_dim": D,
             "dict_size": N, "lr": 1e-3, "steps": 10, "seed": 0, "device": "cpu", "layer": 3, "lm_name": "m",
             "wandb_name": dict_class, "submodule_name": "resid_post_layer_3", **trainer}
        (folder / "config.json").write_text(json.dumps({"trainer": t, "buffer": {"d_submodule": D, "n_ctxs": 8}}))
    return folder


def _dl_ref(cls, w):
    """Each class's encode and decode as dictionary_learning computes them after from_pretrained."""
    if cls == "AutoEncoder":  # from_pretrained(normalize_decoder=True) moves decoder column norms into the encoder
        norms = w["decoder.weight"].norm(dim=0)
        enc, b, dec = w["encoder.weight"] * norms[:, None], w["encoder.bias"] * norms, w["decoder.weight"] / norms
        return lambda x: torch.relu((x - w["bias"]) @ enc.T + b), lambda f: f @ dec.T + w["bias"]
    if cls == "JumpReluAutoEncoder":  # apply_b_dec_to_input False
        def enc(x):
            pre = x @ w["W_enc"] + w["b_enc"]
            return torch.relu(pre * (pre > w["threshold"]))
        return enc, lambda f: f @ w["W_dec"] + w["b_dec"]
    if cls == "MatryoshkaBatchTopKSAE":  # every group active once loaded
        def enc(x):
            post = torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"])
            return post * (post > w["threshold"])
        return enc, lambda f: f @ w["W_dec"] + w["b_dec"]
    pre = lambda x: (x - w["b_dec"]) @ w["encoder.weight"].T + w["encoder.bias"]  # noqa: E731
    dec = lambda f: f @ w["decoder.weight"].T + w["b_dec"]  # noqa: E731
    if cls == "AutoEncoderTopK":
        return lambda x: topk_ref(pre(x), K), dec
    return lambda x: torch.relu(pre(x)) * (torch.relu(pre(x)) > w["threshold"]), dec  # BatchTopKSAE, use_threshold


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


def _saelens_ref(kind, w):
    """What each architecture computes, written from its paper's formula and the saved tensors alone."""
    def enc(x):
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
    return enc, lambda f: f @ w["W_dec"] + w["b_dec"]


def _build_format(tmp_path, lib, kind):
    """(folder, (encode, decode) as the original library computes them) for one row of the matrix."""
    if lib == "sparsify":
        folder, w = _sparsify(tmp_path / "sp", kind)
        return folder, _sparsify_ref(kind, w)
    if lib == "dictionary_learning":
        sd = _dl_state(kind)
        return _dl(tmp_path / "dl", sd, kind), _dl_ref(kind, sd)
    from safetensors.torch import load_file

    sae = _saelens(kind)
    (sae.save_inference_model if kind == "batchtopk" else sae.save_model)(str(tmp_path / kind))
    return tmp_path / kind, _saelens_ref(kind, load_file(str(tmp_path / kind / "sae_weights.safetensors")))


FORMATS = [("sparsify", k) for k in ("topk", "groupmax", "transcode", "transcode+skip")] + \
          [("dictionary_learning", c) for c in DL_TRAINERS] + \
          [("saelens", k) for k in ("standard", "topk", "jumprelu", "gated", "batchtopk")]
# the rows persona_sae cannot compute exactly, with the field its one-line refusal names
REFUSED = {("sparsify", "groupmax"): 'activation: "groupmax"',
           ("sparsify", "transcode"): "transcode: true",
           ("sparsify", "transcode+skip"): "transcode: true"}


@pytest.mark.parametrize("lib, kind", FORMATS, ids=[f"{a}-{b}" for a, b in FORMATS])
def test_format_matrix(tmp_path, x, lib, kind, capsys):
    """Every format the README names either computes the original library's encode and decode within
    1e-5, or is refused with one line naming the field, and exit 2 from the CLI: none loads wrong."""
    from persona_sae.cli import main

    folder, (enc, dec) = _build_format(tmp_path, lib, kind)
    if (lib, kind) in REFUSED:
        with pytest.raises(UserError, match=re.escape(REFUSED[lib, kind])):
            load_sae(str(folder))
        assert main(["browse", "1", "--sae", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert REFUSED[lib, kind] in err and "\n" not in err
        return
    sae = load_sae(str(folder))
    f = enc(x)
    assert (f > 0).any() and (f == 0).any()  # the formula's sparsity is exercised
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), f, atol=1e-5)
        assert torch.allclose(sae.decode(f), dec(f), atol=1e-5)


def test_dictionary_learning_classes_that_share_tensors_encode_differently(tmp_path, x):
    """AutoEncoderTopK and BatchTopKSAE save the same tensors: config.json's dict_class decides, and
    the two really differ on these inputs (loading one as the other would be a silent mis-load)."""
    sd = _dl_state("BatchTopKSAE")
    batch = load_sae(str(_dl(tmp_path / "b", sd, "BatchTopKSAE")))
    topk = load_sae(str(_dl(tmp_path / "t", sd, "AutoEncoderTopK")))
    with torch.no_grad():
        assert not torch.allclose(batch.encode(x), topk.encode(x), atol=1e-3)
        assert torch.allclose(topk.encode(x), _dl_ref("AutoEncoderTopK", sd)[0](x), atol=1e-5)


def test_dictionary_learning_autoencoder_keeps_its_reconstruction(tmp_path, x):
    """Folding the decoder norms (as from_pretrained does) rescales latents, never the reconstruction."""
    sd = _dl_state("AutoEncoder")
    assert not torch.allclose(sd["decoder.weight"].norm(dim=0), torch.ones(N), atol=1e-2)
    sae = load_sae(str(_dl(tmp_path / "a", sd)))  # no config.json: its tensors name the class
    raw = torch.relu((x - sd["bias"]) @ sd["encoder.weight"].T + sd["encoder.bias"]) @ sd["decoder.weight"].T + sd["bias"]
    with torch.no_grad():
        assert torch.allclose(sae.decode(sae.encode(x)), raw, atol=1e-4)
        assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(N), atol=1e-5)


def test_dictionary_learning_without_config_is_read_from_its_tensors(tmp_path, x):
    """Matryoshka (W_enc layout, k, threshold, group_sizes) is told apart from JumpReluAutoEncoder
    (W_enc layout, threshold) by its tensors; an early AutoEncoderTopK without a k buffer reads
    config.json's trainer.k; the class's first spelling (Matroyshka) loads as Matryoshka."""
    for cls in ("MatryoshkaBatchTopKSAE", "JumpReluAutoEncoder"):
        sd = _dl_state(cls)
        sae = load_sae(str(_dl(tmp_path / cls, sd) / "ae.pt"))
        with torch.no_grad():
            assert torch.allclose(sae.encode(x), _dl_ref(cls, sd)[0](x), atol=1e-5)
    sd = _dl_state("MatryoshkaBatchTopKSAE")
    sae = load_sae(str(_dl(tmp_path / "old", sd, "MatroyshkaBatchTopKSAE")))
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), _dl_ref("MatryoshkaBatchTopKSAE", sd)[0](x), atol=1e-5)
    sd = {k: v for k, v in _dl_state("AutoEncoderTopK").items() if k not in ("k", "threshold")}
    sae = load_sae(str(_dl(tmp_path / "early", sd, "AutoEncoderTopK", k=3)))
    assert sae.cfg.k == 3
    with pytest.raises(UserError, match="k is in neither ae.pt nor config.json"):
        load_sae(str(_dl(tmp_path / "nok", sd, "AutoEncoderTopK")))


@pytest.mark.parametrize("dict_class, sd, msg", [
    (None, _dl_state("BatchTopKSAE"), "AutoEncoderTopK or BatchTopKSAE"),
    ("BatchTopKSAE", {**_dl_state("BatchTopKSAE"), "threshold": torch.tensor(-1.0)}, "never set"),
    ("MatryoshkaBatchTopKSAE", {**_dl_state("MatryoshkaBatchTopKSAE"), "threshold": torch.tensor(-1.0)}, "never set"),
    ("GatedAutoEncoder", {"encoder.weight": rand(N, D), "decoder.weight": rand(D, N), "decoder_bias": rand(D),
                          "r_mag": rand(N), "gate_bias": rand(N), "mag_bias": rand(N)},
     "dict_class 'GatedAutoEncoder' is not supported"),
    ("AutoEncoder", {**_dl_state("AutoEncoder"), "W_skip": rand(D, D)}, "holds tensor(s) W_skip that dictionary_learning's AutoEncoder does not have"),
    ("JumpReluAutoEncoder", {k: v for k, v in _dl_state("JumpReluAutoEncoder").items() if k != "threshold"},
     "lacks tensor(s) threshold"),
    (None, {"encoder.weight": rand(N, D), "decoder": rand(N, D), "b_dec": rand(D)}, "unknown dictionary_learning layout"),
    (None, {"step": 5, "ae": _dl_state("AutoEncoder"), "config": {}}, "training backup (step 5)"),
    ("AutoEncoderTopK", _dl_state("AutoEncoderTopK"), "its k 5 and config.json trainer.k 7 differ"),
])
def test_dictionary_learning_variants_it_cannot_load_exactly_are_refused(tmp_path, dict_class, sd, msg, capsys):
    from persona_sae.cli import main

    folder = _dl(tmp_path / "ae", sd, dict_class, **({"k": 7} if "trainer.k 7" in msg else {}))
    with pytest.raises(UserError, match=re.escape(msg)):
        load_sae(str(folder))
    assert main(["browse", "1", "--sae", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err


@pytest.mark.parametrize("field, msg", [({"skip_connection": True}, "skip_connection: true"),
                                        ({"signed": True}, "signed: true"),
                                        ({"activation": "relu"}, 'activation: "relu"'),
                                        ({"nonlinearity": "gelu"}, "field(s) nonlinearity unknown")])
def test_sparsify_fields_that_change_the_math_are_refused(tmp_path, field, msg, capsys):
    from persona_sae.cli import main

    folder, _ = _sparsify(tmp_path / "s", "topk")
    cfg = json.loads((folder / "cfg.json").read_text())
    (folder / "cfg.json").write_text(json.dumps({**cfg, **field}))
    with pytest.raises(UserError, match=re.escape(msg)):
        load_sae(str(folder))
    assert main(["browse", "1", "--sae", str(folder)]) == 2
    assert "\n" not in capsys.readouterr().err.strip()


def test_sparsify_tensors_it_does_not_know_are_refused(tmp_path):
    folder, w = _sparsify(tmp_path / "s", "topk")
    save_file({**w, "W_skip": rand(D, D)}, str(folder / "sae.safetensors"))
    with pytest.raises(UserError, match="holds tensor.s. W_skip that a sparsify TopK SAE does not have"):
        load_sae(str(folder))
    save_file({k: v for k, v in w.items() if k != "W_dec"}, str(folder / "sae.safetensors"))
    with pytest.raises(UserError, match="lacks tensor.s. W_dec"):
        load_sae(str(folder))
    save_file({**w, "W_dec": rand(N, D + 1)}, str(folder / "sae.safetensors"))
    with pytest.raises(UserError, match="do not fit together"):
        load_sae(str(folder))


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
