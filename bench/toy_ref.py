#!/usr/bin/python3
"""PyTorch reference timings for the toy-model workloads of bench/toy.lua.

Run with Debian's python3-torch:
  /usr/bin/python3 bench/toy_ref.py [steps] [--cpu]
--cpu times CPU seconds (time.process_time) on one torch thread instead
of wall-clock seconds on two. Each workload is the exercises' toy model written in plain PyTorch
(einsum forward, torch.where batches, importance-weighted MSE, Adam), and
one timed training step is generate_batch, forward, loss, backward and
optimizer step. Prints one JSON object: {workload: seconds per step}.
"""
import json
import sys
import time

import torch

CPU = "--cpu" in sys.argv[1:]
torch.set_num_threads(1 if CPU else 2)
clock = time.process_time if CPU else time.perf_counter


class Toy(torch.nn.Module):
    def __init__(self, kind, n_inst, n_feat, n_hidden, prob, importance):
        super().__init__()
        self.kind = kind
        self.prob = prob.broadcast_to((n_inst, n_feat))
        self.importance = importance.broadcast_to((n_inst, n_feat))
        init = torch.nn.init.xavier_normal_
        if kind == "computation":
            self.W1 = torch.nn.Parameter(init(torch.empty(n_inst, n_hidden, n_feat)))
            self.W2 = torch.nn.Parameter(init(torch.empty(n_inst, n_feat, n_hidden)))
        else:
            self.W = torch.nn.Parameter(init(torch.empty(n_inst, n_hidden, n_feat)))
        self.b_final = torch.nn.Parameter(torch.zeros(n_inst, n_feat))
        self.shape = (n_inst, n_feat)

    def generate_batch(self, batch):
        shape = (batch,) + self.shape
        mag = torch.rand(shape)
        if self.kind == "computation":
            mag = 2 * mag - 1
        seeds = torch.rand(shape)
        return torch.where(seeds <= self.prob, mag, 0.0)

    def forward(self, x):
        if self.kind == "computation":
            h = torch.relu(torch.einsum("bif,ihf->bih", x, self.W1))
            out = torch.einsum("bih,ifh->bif", h, self.W2)
        else:
            h = torch.einsum("bif,ihf->bih", x, self.W)
            if self.kind == "neuron":
                h = torch.relu(h)
            out = torch.einsum("bih,ihf->bif", h, self.W)
        return torch.relu(out + self.b_final)

    def loss(self, out, x):
        target = x.abs() if self.kind == "computation" else x
        error = self.importance * (target - out) ** 2
        return error.mean(dim=(0, 2)).sum()


def workloads():
    n = 8
    yield ("linear 5->2, I=8, B=1024",
           Toy("linear", n, 5, 2, (50 ** -torch.linspace(0, 1, n))[:, None],
               (0.9 ** torch.arange(5))[None, :]))
    n = 20
    yield ("linear 100->20, I=20, B=1024",
           Toy("linear", n, 100, 20, (20 ** -torch.linspace(0, 1, n))[:, None],
               (100 ** -torch.linspace(0, 1, 100))[None, :]))
    yield ("computation 100->40, I=7, B=1024",
           Toy("computation", 7, 100, 40,
               torch.tensor([1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001])[:, None],
               (0.8 ** torch.arange(1, 101))[None, :]))


def time_steps(model, steps, batch=1024):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        x = model.generate_batch(batch)
        loss = model.loss(model(x), x)
        loss.backward()
        opt.step()

    for _ in range(max(3, steps // 10)):
        step()
    start = clock()
    for _ in range(steps):
        step()
    return (clock() - start) / steps


def main():
    args = [a for a in sys.argv[1:] if a != "--cpu"]
    steps = int(args[0]) if args else 200
    torch.manual_seed(0)
    result = {}
    for name, model in workloads():
        result[name] = time_steps(model, steps)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
