"""The Python side of the torch compatibility tests.

    torch_compat.py describe        stdin: JSON list of files. For each, torch.load(weights_only=True)
                                    and torch.load(mmap=True, weights_only=True), each described in the
                                    fixtures' manifest encoding; prints {file: {"plain": ..., "mmap": ...}}.
    torch_compat.py resave          stdin: JSON list of [src, dst]: torch.load(src, weights_only=True)
                                    then torch.save(obj, dst).
    torch_compat.py save-random     stdin: JSON list of {path, seed, tensors}: saves a random state dict
                                    with torch.save for each; prints {path: description}.
    torch_compat.py save-extras     stdin: JSON {path}: torch.save of a checkpoint holding an
                                    argparse.Namespace, numpy arrays and an rng state, and a Lightning
                                    AttributeDict (its class defined here under Lightning's module name).
"""
import collections
import hashlib
import json
import math
import random
import sys

import torch

SAFETENSORS_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.complex64: "C64", torch.complex128: "C128", torch.int64: "I64", torch.int32: "I32",
    torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
    torch.uint16: "U16", torch.uint32: "U32", torch.uint64: "U64",
    torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2",
    torch.float8_e4m3fnuz: "F8_E4M3FNUZ", torch.float8_e5m2fnuz: "F8_E5M2FNUZ",
    torch.float8_e8m0fnu: "F8_E8M0",
}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.numel() == 0:
        return b""
    flat = t.reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool else flat.to(torch.uint8).numpy().tobytes()


def describe(obj):
    if isinstance(obj, torch.Tensor):
        return {
            "__tensor__": True,
            "dtype": SAFETENSORS_NAMES[obj.dtype],
            "shape": list(obj.shape),
            "nbytes": obj.numel() * obj.element_size(),
            "sha256": hashlib.sha256(tensor_bytes(obj)).hexdigest(),
            "requires_grad": obj.requires_grad,
            "is_parameter": isinstance(obj, torch.nn.Parameter),
        }
    if isinstance(obj, collections.OrderedDict):
        return {"__ordereddict__": [[key(k), describe(v)] for k, v in obj.items()]}
    if isinstance(obj, dict):
        return {"__dict__": [[key(k), describe(v)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [describe(v) for v in obj]}
    if isinstance(obj, list):
        return [describe(v) for v in obj]
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return {"__float__": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj if abs(obj) <= 2**53 else {"__int__": str(obj)}
    if isinstance(obj, float):
        return obj
    if isinstance(obj, (bytes, bytearray)):
        return {"__bytes__": bytes(obj).hex()}
    raise TypeError(f"cannot describe {type(obj)}")


def key(k):
    return k if isinstance(k, str) else {"__key__": describe(k)}


def main():
    command = sys.argv[1]
    jobs = json.load(sys.stdin)
    if command == "describe":
        out = {}
        for path in jobs:
            plain = torch.load(path, weights_only=True)
            mapped = torch.load(path, weights_only=True, mmap=True)
            out[path] = {"plain": describe(plain), "mmap": describe(mapped)}
        print(json.dumps(out))
    elif command == "resave":
        for src, dst in jobs:
            torch.save(torch.load(src, weights_only=True), dst)
        print("{}")
    elif command == "save-extras":
        save_extras(jobs["path"])
        print("{}")
    elif command == "save-random":
        print(json.dumps({job["path"]: save_random(job) for job in jobs}))
    else:
        raise SystemExit(f"unknown command {command}")


def save_extras(path):
    import argparse
    import types
    import numpy as np

    # Lightning's module path, registered with its parents so pickle can import it.
    for name in ["lightning", "lightning.fabric", "lightning.fabric.utilities"]:
        sys.modules.setdefault(name, types.ModuleType(name))
    module = types.ModuleType("lightning.fabric.utilities.data")

    class AttributeDict(dict):
        def __getattr__(self, key):
            return self[key]

    AttributeDict.__module__ = module.__name__
    AttributeDict.__qualname__ = "AttributeDict"
    module.AttributeDict = AttributeDict
    sys.modules[module.__name__] = module
    rng = np.random.RandomState(7)
    torch.save(
        {
            "args": argparse.Namespace(lr=0.1, layers=[4, 8], name="mlp"),
            "weights": np.arange(6, dtype=np.float32).reshape(2, 3),
            "fortran": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
            "rng": rng.get_state(),
            "scalar": np.float64(2.5),
            "hparams": AttributeDict(lr=0.01, batch_size=32),
        },
        path,
    )


def save_random(job):
    rng = random.Random(job["seed"])
    torch.manual_seed(job["seed"])
    state = collections.OrderedDict()
    dtypes = list(SAFETENSORS_NAMES)
    for i in range(job["tensors"]):
        dtype = dtypes[rng.randrange(len(dtypes))]
        shape = [rng.randrange(0, 6) for _ in range(rng.randrange(0, 4))]
        raw = torch.randint(0, 256, (max(1, math.prod(shape)) * torch.empty((), dtype=dtype).element_size(),), dtype=torch.uint8)
        t = raw[: math.prod(shape) * torch.empty((), dtype=dtype).element_size()].view(dtype).reshape(shape)
        if dtype == torch.bool:
            t = raw[: math.prod(shape)].bool().reshape(shape)
        if rng.random() < 0.3 and len(shape) >= 2:
            t = t.transpose(0, 1)  # a non-contiguous view
        state[f"layer.{i}.weight"] = t
    state["step"] = job["seed"]
    torch.save(state, job["path"])
    return describe(state)


if __name__ == "__main__":
    main()
