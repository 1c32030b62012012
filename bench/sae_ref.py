#!/usr/bin/python3
"""PyTorch reference of one SAE training step, for bench/sae.lua.

  /usr/bin/python3 bench/sae_ref.py N_INSTANCES D_IN D_SAE BATCH STEPS

Prints the best seconds per step: of single steps when STEPS <= 10,
else of three rounds of STEPS steps. A step is what
the exercises' training loop does: normalise the decoder, forward, loss,
backward, Adam step, zero the gradients. The input batch is fixed, so
only the SAE is timed.
"""
import sys
import time

import torch

torch.set_num_threads(2)


class SAE(torch.nn.Module):
    def __init__(self, n_instances, d_in, d_sae, l1_coeff=0.5):
        super().__init__()
        self.l1_coeff = l1_coeff
        self.W_enc = torch.nn.Parameter(
            torch.nn.init.xavier_normal_(torch.empty(n_instances, d_in, d_sae)))
        self.W_dec = torch.nn.Parameter(
            torch.nn.init.xavier_normal_(torch.empty(n_instances, d_sae, d_in)))
        self.b_enc = torch.nn.Parameter(torch.zeros(n_instances, d_sae))
        self.b_dec = torch.nn.Parameter(torch.zeros(n_instances, d_in))

    def forward(self, h):
        h_cent = h - self.b_dec
        acts = torch.relu(torch.einsum("bid,idh->bih", h_cent, self.W_enc) + self.b_enc)
        h_rec = torch.einsum("bih,ihd->bid", acts, self.W_dec) + self.b_dec
        l2 = (h_rec - h).pow(2).mean(-1)
        l1 = acts.abs().sum(-1)
        return (self.l1_coeff * l1 + l2).mean(0).sum()

    @torch.no_grad()
    def normalize_decoder(self):
        self.W_dec.data = self.W_dec.data / self.W_dec.data.norm(dim=2, keepdim=True)


def main():
    n_instances, d_in, d_sae, batch, steps = (int(v) for v in sys.argv[1:6])
    torch.manual_seed(0)
    model = SAE(n_instances, d_in, d_sae)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    h = torch.randn(batch, n_instances, d_in)

    def step():
        model.normalize_decoder()
        loss = model(h)
        loss.backward()
        opt.step()
        opt.zero_grad()

    for _ in range(max(2, steps // 10)):
        step()
    best = float("inf")
    if steps <= 10:
        # long steps: the best single step, as bench/sae.lua times ours
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - t0)
    else:
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            best = min(best, (time.perf_counter() - t0) / steps)
    print("%.9g" % best)


main()
