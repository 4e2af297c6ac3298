"""sae-lens' TopK training SAE with the same loss, computed without the dense work TopK makes useless.

A TopK SAE keeps k of d_sae latents per row, yet sae-lens trains it with dense products: the decode
``[rows, d_sae] @ W_dec`` and its two backward products cost as much as the encoder although 99 % of
the activations are zero, the decoder-norm rescale multiplies the whole ``[rows, d_sae]`` pre-activation
(and its gradient), and subtracting ``b_dec`` from the input makes autograd compute a dense gradient
for the input just to sum it into ``b_dec``'s. Here the decode gathers the k selected decoder rows
(``embedding_bag``, as sparsify's CPU path does), the rescale and ``b_dec`` are folded into the
encoder's weight and bias (``x @ (W_enc * n) + (b_enc - b_dec @ W_enc) * n``, the same numbers in
exact arithmetic), and the AuxK loss decodes its dead latents the same way: on a CPU, where the
step is bound by arithmetic, that leaves about two of sae-lens' five big products
(``benchmarks/train.py`` measures the whole run against sae-lens' runner).

Everything else is sae-lens' ``TopKTrainingSAE``: the parameters, initialisation, optimiser state,
saved format and inference SAE are unchanged. Under autocast, or for inputs that are not
``[rows, d_in]``, it runs sae-lens' own code: ``embedding_bag`` has no bf16 autocast rule, and the
dense path is the one sae-lens tunes for GPUs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sae_lens import TopKTrainingSAE
from torch import nn


def _fast(x: torch.Tensor) -> bool:
    return x.ndim == 2 and not torch.is_autocast_enabled(x.device.type)


class _TopK(nn.Module):
    """sae-lens' TopK activation (top k, then ReLU, dense output for L0 and firing counts) that keeps
    the selected indices and values, so the decode of this very output can use them."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vals, idx = torch.topk(x, self.k, dim=-1, sorted=False)
        vals = vals.relu()
        dense = torch.zeros_like(x).scatter(-1, idx, vals)
        self.last = (dense, idx, vals) if x.ndim == 2 else None
        return dense


class SparseTopKTrainingSAE(TopKTrainingSAE):
    def get_activation_fn(self):
        return _TopK(self.cfg.k)

    def _decoder_rows(self) -> torch.Tensor:
        W = self.W_dec
        return W / W.norm(dim=-1, keepdim=True) if self.cfg.rescale_acts_by_decoder_norm else W

    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not _fast(x):
            return super().encode_with_hidden_pre(x)
        sae_in = self.run_time_activation_norm_fn_in(self.hook_sae_input(self.reshape_fn_in(x.to(self.dtype))))
        W, b = self.W_enc, self.b_enc
        if self.cfg.apply_b_dec_to_input:
            b = b - self.b_dec @ W
        if self.cfg.rescale_acts_by_decoder_norm:
            n = self.W_dec.norm(dim=-1)
            W, b = W * n, b * n
        hidden_pre = torch.addmm(b, sae_in, W)
        return self.hook_sae_acts_post(self.activation_fn(hidden_pre)), hidden_pre

    def decode(self, feature_acts: torch.Tensor) -> torch.Tensor:
        last = self.activation_fn.last
        if last is None or last[0] is not feature_acts or not _fast(feature_acts):
            return super().decode(feature_acts)
        self.activation_fn.last = None
        _, idx, vals = last
        out = F.embedding_bag(idx, self._decoder_rows(), per_sample_weights=vals, mode="sum") + self.b_dec
        out = self.run_time_activation_norm_fn_out(self.hook_sae_recons(out))
        return self.reshape_fn_out(out, self.d_head)

    def calculate_topk_aux_loss(self, sae_in, sae_out, hidden_pre, dead_neuron_mask) -> torch.Tensor:
        if dead_neuron_mask is None or not _fast(hidden_pre) or self.cfg.normalize_activations in (
                "constant_norm_rescale", "layer_norm"):  # sae-lens' own code, or its own error
            return super().calculate_topk_aux_loss(sae_in, sae_out, hidden_pre, dead_neuron_mask)
        n_dead = int(dead_neuron_mask.sum())
        if n_dead == 0:
            return sae_out.new_tensor(0.0)
        # AuxK (Gao et al., appendix B.1): the top d_in/2 dead latents reconstruct the live ones' residual,
        # scaled down while fewer latents are dead than that
        k_aux = sae_in.shape[-1] // 2
        scale = min(n_dead / k_aux, 1.0)
        vals, idx = hidden_pre.masked_fill(~dead_neuron_mask[None], -torch.inf).topk(min(k_aux, n_dead), sorted=False)
        recons = F.embedding_bag(idx, self._decoder_rows(), per_sample_weights=vals, mode="sum")
        return self.cfg.aux_loss_coefficient * scale * (recons - (sae_in - sae_out).detach()).pow(2).sum(-1).mean()
