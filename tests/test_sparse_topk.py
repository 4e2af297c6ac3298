"""persona_sae.sparse_topk: the same TopK training loss and gradients as sae-lens' class, from the same
weights, on every path (decoder-norm rescale on and off, b_dec subtracted or not, AuxK with dead
latents), and sae-lens' own code where the fast path does not apply."""

import pytest
import torch
from sae_lens import SAETrainer, TopKTrainingSAE, TopKTrainingSAEConfig
from sae_lens.config import SAETrainerConfig
from sae_lens.saes.sae import TrainStepInput

from persona_sae.sparse_topk import SparseTopKTrainingSAE

D_IN, D_SAE, K, ROWS = 16, 96, 4, 64


def pair(**kw):
    cfg = TopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, **kw)
    torch.manual_seed(0)
    ref = TopKTrainingSAE(cfg)
    with torch.no_grad():  # a non-zero b_enc and b_dec, decoder rows of unequal norm: every term counts
        ref.b_enc.normal_(0, 0.1)
        ref.b_dec.normal_(0, 0.5)
        ref.W_dec.mul_(torch.rand(D_SAE, 1) + 0.5)
    ours = SparseTopKTrainingSAE(cfg)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def loss_and_grads(sae, x, dead):
    sae.zero_grad()
    out = sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients={}, dead_neuron_mask=dead, n_training_steps=0,
                                                    is_logging_step=False))
    out.loss.backward()
    return out, {n: p.grad.clone() for n, p in sae.named_parameters()}


@pytest.mark.parametrize("rescale", [True, False])
@pytest.mark.parametrize("apply_b_dec", [True, False])
@pytest.mark.parametrize("n_dead", [0, 5, 40])
def test_same_loss_and_gradients_as_sae_lens(rescale, apply_b_dec, n_dead, monkeypatch):
    ref, ours = pair(rescale_acts_by_decoder_norm=rescale, apply_b_dec_to_input=apply_b_dec)
    x = torch.randn(ROWS, D_IN) * 3 + 1
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[torch.randperm(D_SAE)[:n_dead]] = True
    a, ga = loss_and_grads(ref, x, dead)
    import sae_lens.saes.topk_sae as T

    def dense(*_):
        raise AssertionError("the fast path took sae-lens' dense decode")

    monkeypatch.setattr(T, "act_times_W_dec", dense)
    b, gb = loss_and_grads(ours, x, dead)
    assert torch.equal(a.feature_acts != 0, b.feature_acts != 0)  # the same latents fire
    torch.testing.assert_close(b.feature_acts, a.feature_acts, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.sae_out, a.sae_out, rtol=1e-5, atol=1e-5)
    for k in a.losses:
        torch.testing.assert_close(b.losses[k], a.losses[k], rtol=1e-5, atol=1e-6)
    assert (float(a.losses["auxiliary_reconstruction_loss"].detach()) > 0) == (n_dead > 0)
    assert set(gb) == set(ga)
    for n in ga:
        torch.testing.assert_close(gb[n], ga[n], rtol=1e-4, atol=1e-5, msg=n)


def test_trainer_steps_match_and_the_saved_sae_is_sae_lens_topk(tmp_path):
    """Ten SAETrainer steps (Adam, lr schedule, dead-latent bookkeeping) from the same start end at
    the same weights, and the saved inference SAE is sae-lens' plain TopK."""
    from sae_lens import SAE

    def trainer(sae):
        return SAETrainer(cfg=SAETrainerConfig(
            total_training_samples=ROWS * 10, train_batch_size_samples=ROWS, lr=1e-3, lr_end=1e-4, lr_warm_up_steps=0,
            lr_decay_steps=2, dead_feature_window=2, feature_sampling_window=10**9, device="cpu", autocast=False,
            n_batches_for_norm_estimate=1), sae=sae, data_provider=iter(()))

    ref, ours = pair()
    tr_ref, tr_ours = trainer(ref), trainer(ours)
    torch.manual_seed(1)
    for _ in range(10):
        x = torch.randn(ROWS, D_IN)
        tr_ref.step(x)
        tr_ours.step(x)
    assert torch.equal(tr_ref.act_freq_scores, tr_ours.act_freq_scores)
    for (n, p), q in zip(ref.named_parameters(), ours.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=n)
    ours.save_inference_model(str(tmp_path))
    loaded = SAE.load_from_disk(str(tmp_path))
    assert loaded.cfg.architecture() == "topk"
    x = torch.randn(8, D_IN)
    torch.testing.assert_close(loaded.decode(loaded.encode(x)), ref.decode(ref.encode(x)), rtol=1e-4, atol=1e-4)


def test_sae_lens_code_where_the_fast_path_does_not_apply():
    """3-d input, or autocast: sae-lens' own encode and dense decode, bit for bit."""
    ref, ours = pair()
    x = torch.randn(2, ROWS // 2, D_IN)
    assert torch.equal(ours.decode(ours.encode(x)), ref.decode(ref.encode(x)))
    x2 = x.reshape(ROWS, D_IN)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fa, ha = ref.encode_with_hidden_pre(x2)
        fb, hb = ours.encode_with_hidden_pre(x2)
        assert torch.equal(hb, ha) and torch.equal(ours.decode(fb), ref.decode(fa))
    # a decode of activations that are not the last encode's output takes the dense path
    fa, _ = ours.encode_with_hidden_pre(x2)
    other = fa.clone()
    torch.testing.assert_close(ours.decode(other), ref.decode(ref.encode(x2)), rtol=1e-5, atol=1e-5)
