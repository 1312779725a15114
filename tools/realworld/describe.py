"""What the reference libraries return for each file, in the fixtures' manifest encoding.

    python describe.py < files.json     stdin: JSON list of paths; prints {path: {"ok": description} | {"refused": message}}

A .safetensors file is read by safetensors.torch.load_file; anything else by
torch.load(weights_only=True, map_location="cpu"), as a user of these files would.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packages",
                                "storage-pytorch", "test", "python"))
from torch_compat import describe  # noqa: E402


def load(path):
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        return load_file(path)
    return torch.load(path, weights_only=True, map_location="cpu")


def main():
    out = {}
    for path in json.load(sys.stdin):
        try:
            out[path] = {"ok": describe(load(path))}
        except Exception as error:  # torch refusing the file is an answer, not a failure
            out[path] = {"refused": f"{type(error).__name__}: {str(error)[:300]}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
