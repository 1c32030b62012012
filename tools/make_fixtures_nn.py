#!/usr/bin/python3
"""Write spec/fixtures/nn.lua: PyTorch reference values for the network
helpers (softmax, log_softmax, cross_entropy, layer_norm, gather,
scatter_add, index_select, cosine_similarity).

Run from the repository root with Debian's python3-torch:
    /usr/bin/python3 tools/make_fixtures_nn.py

The fixture stores every input next to its output, so the specs never rely
on matching random number generators. Dims and index values are written
1-based, as the Lua API takes them.
"""

import torch
import torch.nn.functional as F

from fixture_writer import write_fixture

OUT = "spec/fixtures/nn.lua"
HEADER = ("-- PyTorch reference values for spec/nn_spec.lua, written by\n"
          "-- tools/make_fixtures_nn.py. Dims and indices are 1-based.\n")


def randn(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).float()


def softmax_cases():
    cases = []
    for shape, dim, scale in [((3, 4), 1, 3.0), ((3, 4), 0, 3.0),
                              ((2, 3, 2), 1, 2.0), ((4,), 0, 50.0)]:
        x = randn(*shape, scale=scale)
        cases.append({"x": x, "dim": dim + 1,
                      "softmax": F.softmax(x, dim),
                      "log_softmax": F.log_softmax(x, dim)})
    return cases


def cross_entropy_cases():
    """Return (logits by name, cases); each case names its logits, so the
    fixture stores every logits tensor once."""
    logits = {"flat": randn(6, 5, scale=2.0), "seq": randn(2, 3, 4)}
    flat = logits["flat"]
    targets = torch.tensor([0, 4, 2, 2, 1, 3])
    ignored = torch.tensor([0, -100, 2, -100, 1, 3])
    ignored_1 = ignored.where(ignored < 0, ignored + 1)

    cases = []
    for reduction in ["none", "sum", "mean"]:
        cases.append({"logits": "flat", "targets": targets + 1,
                      "reduction": reduction,
                      "out": F.cross_entropy(flat, targets,
                                             reduction=reduction)})

    # ignored rows: the mean divides by the rows kept
    for reduction in ["none", "mean"]:
        cases.append({"logits": "flat", "targets": ignored_1,
                      "reduction": reduction, "ignore_index": -100,
                      "out": F.cross_entropy(flat, ignored,
                                             reduction=reduction)})

    # a user-chosen ignore_index, given 1-based on our side
    cases.append({"logits": "flat", "targets": targets + 1,
                  "reduction": "mean", "ignore_index": 3,
                  "out": F.cross_entropy(flat, targets, ignore_index=2)})

    # label smoothing together with ignored rows
    for reduction in ["none", "mean"]:
        cases.append({"logits": "flat", "targets": ignored_1,
                      "reduction": reduction, "label_smoothing": 0.2,
                      "out": F.cross_entropy(flat, ignored,
                                             reduction=reduction,
                                             label_smoothing=0.2)})

    # class weights: the mean divides by the summed weights of the targets
    weight = torch.rand(5) + 0.5
    for reduction, smoothing in [("none", 0.0), ("mean", 0.0), ("sum", 0.2),
                                 ("mean", 0.2)]:
        cases.append({"logits": "flat", "targets": ignored_1,
                      "reduction": reduction, "weight": weight,
                      "label_smoothing": smoothing,
                      "out": F.cross_entropy(flat, ignored, weight=weight,
                                             reduction=reduction,
                                             label_smoothing=smoothing)})

    # [N, T, C] logits with [N, T] targets are the flattened [N*T, C] case
    seq = logits["seq"]
    targets3 = torch.tensor([[0, 3, 1], [2, 2, 0]])
    for reduction in ["none", "mean"]:
        out = F.cross_entropy(seq.reshape(6, 4), targets3.reshape(6),
                              reduction=reduction)
        cases.append({"logits": "seq", "targets": targets3 + 1,
                      "reduction": reduction,
                      "out": out.reshape(2, 3) if reduction == "none"
                      else out})
    return logits, cases


def layer_norm_cases():
    cases = []
    x = randn(3, 5, scale=3.0) + 1.5
    w, b = randn(5), randn(5)
    cases.append({"x": x, "shape": [5], "weight": w, "bias": b,
                  "out": F.layer_norm(x, (5,), w, b)})
    cases.append({"x": x, "shape": [5], "eps": 0.1,
                  "out": F.layer_norm(x, (5,), eps=0.1)})
    x3 = randn(2, 2, 3)
    w3, b3 = randn(2, 3), randn(2, 3)
    cases.append({"x": x3, "shape": [2, 3], "weight": w3, "bias": b3,
                  "out": F.layer_norm(x3, (2, 3), w3, b3)})
    return cases


def gather_cases():
    cases = []
    x = randn(3, 4)
    index = torch.tensor([[3, 0], [1, 1], [2, 3]])
    cases.append({"x": x, "dim": 2, "index": index + 1,
                  "out": torch.gather(x, 1, index)})
    index = torch.tensor([[2, 0, 1, 1], [0, 0, 2, 1]])
    cases.append({"x": x, "dim": 1, "index": index + 1,
                  "out": torch.gather(x, 0, index)})
    return cases


def scatter_add_cases():
    cases = []
    x = randn(3, 5)
    index = torch.tensor([[4, 0, 4, 2], [1, 1, 1, 3], [0, 2, 4, 4]])
    src = randn(3, 4)
    cases.append({"x": x, "dim": 2, "index": index + 1, "src": src,
                  "out": x.scatter_add(1, index, src)})
    index = torch.tensor([[2, 0, 1, 2, 2], [0, 0, 2, 1, 2]])
    src = randn(2, 5)
    cases.append({"x": x, "dim": 1, "index": index + 1, "src": src,
                  "out": x.scatter_add(0, index, src)})
    return cases


def index_select_cases():
    w = randn(5, 3)
    index = torch.tensor([4, 0, 4, 2])
    return [{"x": w, "dim": 1, "index": index + 1,
             "out": w.index_select(0, index)},
            {"x": w, "dim": 2, "index": torch.tensor([3, 1]),
             "out": w.index_select(1, torch.tensor([2, 0]))}]


def cosine_similarity_cases():
    cases = []
    a, b = randn(4, 6), randn(4, 6)
    a[2] = 0.0   # a zero vector gives 0, because each norm is clamped at eps
    cases.append({"a": a, "b": b, "dim": 2,
                  "out": F.cosine_similarity(a, b, dim=1)})
    cases.append({"a": a, "b": b, "dim": 1,
                  "out": F.cosine_similarity(a, b, dim=0)})
    a, b = randn(3, 1, 5), randn(4, 5)
    cases.append({"a": a, "b": b, "dim": 3,
                  "out": F.cosine_similarity(a, b, dim=2)})
    a, b = randn(2, 3) * 1e-5, randn(2, 3) * 1e-5
    cases.append({"a": a, "b": b, "dim": 2, "eps": 1e-3,
                  "out": F.cosine_similarity(a, b, dim=1, eps=1e-3)})
    return cases


def main():
    torch.manual_seed(20261204)
    softmax = softmax_cases()
    ce_logits, ce_cases = cross_entropy_cases()
    fixture = {
        "torch_version": torch.__version__,
        "softmax": softmax,
        "cross_entropy_logits": ce_logits,
        "cross_entropy": ce_cases,
        "layer_norm": layer_norm_cases(),
        "gather": gather_cases(),
        "scatter_add": scatter_add_cases(),
        "index_select": index_select_cases(),
        "cosine_similarity": cosine_similarity_cases(),
    }
    write_fixture(OUT, HEADER, fixture)


if __name__ == "__main__":
    main()
