"""PyTorch timings for bench/nn.lua.

Runs the same network helper cases as the Lua side with two threads and
prints one JSON object mapping case names to the fastest time per
operation in seconds. Usage: /usr/bin/python3 bench/nn_ref.py
"""
import torch
import torch.nn.functional as F

from torch_timing import fastest, print_results


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    results = {}

    x = torch.randn(2048, 4096)
    results["softmax"] = fastest(lambda: x.softmax(-1), 10)
    results["log_softmax"] = fastest(lambda: x.log_softmax(-1), 10)
    xt = torch.randn(4096, 2048).t()
    results["softmax_t"] = fastest(lambda: xt.softmax(-1), 5)

    logits = torch.randn(256, 50257)
    targets = torch.randint(0, 50257, (256,))
    results["cross_entropy"] = fastest(
        lambda: F.cross_entropy(logits, targets), 10)

    h = torch.randn(4096, 768)
    w, b = torch.randn(768), torch.randn(768)
    results["layer_norm"] = fastest(lambda: F.layer_norm(h, (768,), w, b), 10)

    embed = torch.randn(8192, 768)
    tokens = torch.randint(0, 8192, (4096,))
    results["index_select"] = fastest(lambda: embed.index_select(0, tokens), 10)

    lp = torch.randn(4096, 8192)
    picks = torch.randint(0, 8192, (4096, 1))
    results["gather"] = fastest(lambda: lp.gather(1, picks), 50)

    grad = torch.zeros(8192, 768)
    rows = torch.randint(0, 8192, (4096, 1)).expand(4096, 768).contiguous()
    results["scatter_add_"] = fastest(lambda: grad.scatter_add_(0, rows, h), 10)

    direction = torch.randn(768)
    results["cosine_similarity"] = fastest(
        lambda: F.cosine_similarity(h, direction, dim=-1), 10)

    print_results(results)


if __name__ == "__main__":
    main()
