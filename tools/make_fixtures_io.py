#!/usr/bin/python3
"""Write reference files for spec/io_spec.lua into spec/fixtures/.

Safetensors files come from PyTorch tensors, laid out as the reference
safetensors writer does (header padded with spaces to 8 bytes, tensors
ordered by dtype size then name). The `safetensors` package is not
installed here, so the script writes the bytes itself and checks them
with the package when it is present. .npy files come from numpy.save.
The expected values go to io_expected.lua, computed by PyTorch's and
NumPy's own conversions to float32 and int64.

Run with /usr/bin/python3 (Debian's python3-torch).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec",
                   "fixtures")

DTYPES = {
    torch.float32: ("F32", 4), torch.float16: ("F16", 2),
    torch.bfloat16: ("BF16", 2), torch.float64: ("F64", 8),
    torch.int32: ("I32", 4), torch.int64: ("I64", 8),
    torch.int16: ("I16", 2), torch.int8: ("I8", 1), torch.uint8: ("U8", 1),
    torch.bool: ("BOOL", 1),
}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().tobytes()   # native order, checked to be little-endian


def write_safetensors(path, tensors, metadata=None):
    order = sorted(tensors, key=lambda k: (-DTYPES[tensors[k].dtype][1], k))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in order:
        t = tensors[name]
        data = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype][0], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(b"".join(blobs))


def lua_number(x):
    if isinstance(x, bool):
        return "1" if x else "0"
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "0/0"
    if math.isinf(x):
        return "math.huge" if x > 0 else "-math.huge"
    if x == 0:
        return "-0.0" if math.copysign(1, x) < 0 else "0.0"
    return "%.17g" % x


def lua_string(s):
    return '"' + "".join(c if c.isalnum() or c in " _-.:/" else
                         "".join("\\%d" % b for b in c.encode())
                         for c in s) + '"'


def expected_entry(t):
    """dtype, shape and C-order values of t as this library loads it."""
    if t.dtype in (torch.int32, torch.int64, torch.int16, torch.int8,
                   torch.uint8):
        dtype, values = "int64", t.to(torch.int64).reshape(-1).tolist()
    else:
        dtype, values = "float32", t.to(torch.float32).reshape(-1).tolist()
    return ("{ dtype = %s, shape = { %s }, values = { %s } }"
            % (lua_string(dtype), ", ".join(str(s) for s in t.shape),
               ", ".join(lua_number(v) for v in values)))


def main():
    assert sys.byteorder == "little", "safetensors data is little-endian"
    os.makedirs(OUT, exist_ok=True)
    f16_special = torch.tensor(
        [float("inf"), float("-inf"), float("nan"), 2.0 ** -24,
         3 * 2.0 ** -20, 2.0 ** -14, 65504.0, -0.0, -1.5, 0.1],
        dtype=torch.float16)
    bf16_special = torch.tensor(
        [float("inf"), float("-inf"), float("nan"), 1e-40, -3.0e38, 0.1,
         1.0 / 3.0, -0.0], dtype=torch.bfloat16)
    tensors = {
        "weight": torch.tensor([[1.5, -2.25, 3.0e-8], [4.0, 1e30, -0.0]]),
        "half": f16_special.reshape(2, 5),
        "brain": bf16_special.reshape(2, 2, 2),
        "ids32": torch.tensor([0, -1, 2 ** 31 - 1, -2 ** 31, 7],
                              dtype=torch.int32),
        "ids64": torch.tensor([[2 ** 53 + 1, -2 ** 62], [2 ** 63 - 1, 5]],
                              dtype=torch.int64),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "double": torch.tensor([0.1, 1e-50, -1e300], dtype=torch.float64),
        "mask": torch.tensor([True, False, True]),
        "bytes": torch.tensor([0, 255, 17], dtype=torch.uint8),
        "small": torch.tensor([-128, 127], dtype=torch.int8),
    }
    metadata = {"format": "pt", "note": "caf\u00e9 \u2713"}
    write_safetensors(os.path.join(OUT, "io_torch.safetensors"), tensors,
                      metadata)
    try:
        from safetensors.torch import load_file
        loaded = load_file(os.path.join(OUT, "io_torch.safetensors"))
        for name, t in tensors.items():
            assert torch.equal(loaded[name], t) or name == "half" \
                or name == "brain"
    except ImportError:
        pass

    arrays = {
        "f4": np.arange(12, dtype="<f4").reshape(3, 4) / 7,
        "f8": np.array([[0.1, -1e-40], [1e300, 2.5]], dtype="<f8"),
        "f2": np.array([np.inf, -np.inf, np.nan, 2.0 ** -24, 65504, -0.0],
                       dtype="<f2"),
        "i4": np.array([-2 ** 31, 2 ** 31 - 1, 0, -5], dtype="<i4"),
        "i8": np.array([[2 ** 62, -3], [9, 2 ** 53 + 1]], dtype="<i8"),
        "fortran": np.asfortranarray(
            np.arange(24, dtype="<f4").reshape(2, 3, 4) - 11.5),
        "be": np.array([1.5, -2.0, 1e-3], dtype=">f4"),
        "bool": np.array([[True, False], [False, True]]),
        "scalar": np.array(3.25, dtype="<f4"),
        "empty": np.zeros((0, 3), dtype="<i8"),
    }
    expected = []
    for name, a in arrays.items():
        np.save(os.path.join(OUT, "io_%s.npy" % name), a)
        t = torch.from_numpy(np.array(a, dtype=a.dtype.newbyteorder("="),
                                      order="C"))
        expected.append("    %s = %s," % (name, expected_entry(t)))
    # The same float32 array in format versions 2.0 and 3.0.
    for version in ((2, 0), (3, 0)):
        with open(os.path.join(OUT, "io_v%d.npy" % version[0]), "wb") as f:
            np.lib.format.write_array(f, arrays["f4"], version=version)

    with open(os.path.join(OUT, "io_expected.lua"), "w") as f:
        f.write("-- Generated by tools/make_fixtures_io.py with PyTorch %s "
                "and NumPy %s.\n" % (torch.__version__, np.__version__))
        f.write("-- Values are in C order, as PyTorch converts them to "
                "float32 or int64.\nreturn {\n  safetensors = {\n")
        for name, t in tensors.items():
            f.write("    %s = %s,\n" % (name, expected_entry(t)))
        f.write("  },\n  metadata = {\n")
        for k, v in metadata.items():
            f.write("    [%s] = %s,\n" % (lua_string(k), lua_string(v)))
        f.write("  },\n  npy = {\n")
        f.write("\n".join(expected))
        f.write("\n  },\n}\n")


if __name__ == "__main__":
    main()
