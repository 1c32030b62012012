"""Timing helpers shared by the PyTorch reference scripts in bench/.

The scripts import this module from their own directory, which Python
puts first on sys.path when it runs a script.
"""
import json
import time

import torch


def fastest(fn, reps):
    """Return the fastest of `reps` timed calls of fn, after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def print_results(results):
    """Print results, thread count and torch version as one JSON object."""
    results["threads"] = torch.get_num_threads()
    results["version"] = torch.__version__
    print(json.dumps(results))
