"""PyTorch timings for bench/tensor.lua.

Runs the same matmul and elementwise cases as the Lua side with two
threads and prints one JSON object mapping case names to the fastest
time per operation in seconds. Usage: /usr/bin/python3 bench/tensor_ref.py
"""
import torch

from torch_timing import fastest, print_results


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    results = {}

    for n, reps in ((1024, 10), (2048, 5)):
        a, b = torch.randn(n, n), torch.randn(n, n)
        results["matmul_%d" % n] = fastest(lambda: a @ b, reps)
    n = 2048
    at, b = torch.randn(n, n).t(), torch.randn(n, n)
    results["matmul_%d_at" % n] = fastest(lambda: at @ b, 5)
    a, b = torch.randn(64, 128, 128), torch.randn(64, 128, 128)
    results["bmm_64x128"] = fastest(lambda: a @ b, 20)

    x, y = torch.randn(1 << 20), torch.randn(1 << 20)
    results["add"] = fastest(lambda: x + y, 200)
    results["mul"] = fastest(lambda: x * y, 200)
    results["relu"] = fastest(lambda: torch.relu(x), 200)
    results["exp"] = fastest(lambda: torch.exp(x), 200)
    print_results(results)


if __name__ == "__main__":
    main()
