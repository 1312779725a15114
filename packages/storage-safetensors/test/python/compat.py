"""The Python side of the safetensors compatibility tests (safetensors, numpy).

    compat.py read FILE...        -> JSON: per file, metadata and each tensor's dtype, shape, sha256
                                     (via safetensors.deserialize, plus numpy's load_file where numpy has the dtype)
    compat.py rewrite SRC DST     -> re-serializes SRC with Python's serialize_file into DST
    compat.py write SPEC          -> writes the files SPEC (JSON on stdin) describes, random bytes per tensor;
                                     prints each tensor's sha256
"""
import ctypes
import hashlib
import json
import random
import sys

import numpy as np
import safetensors
import safetensors.numpy
from safetensors import TensorSpec, safe_open

SPEC_NAMES = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16", "I32": "int32",
    "U32": "uint32", "I64": "int64", "U64": "uint64", "F16": "float16", "BF16": "bfloat16",
    "F32": "float32", "F64": "float64", "C64": "complex64", "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2", "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz",
    "F8_E8M0": "float8_e8m0fnu", "F4": "float4_e2m1fn_x2",
}
NUMPY_DTYPES = {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "F32", "F64", "C64"}


def sha256(data):
    return hashlib.sha256(bytes(data)).hexdigest()


def read(paths):
    out = {}
    for path in paths:
        with open(path, "rb") as f:
            raw = f.read()
        tensors = {name: {"dtype": t["dtype"], "shape": list(t["shape"]), "sha256": sha256(t["data"])}
                   for name, t in safetensors.deserialize(raw)}
        with safe_open(path, "np") as f:
            metadata = f.metadata() or {}
        if all(t["dtype"] in NUMPY_DTYPES for t in tensors.values()):
            for name, array in safetensors.numpy.load_file(path).items():
                tensors[name]["numpy_sha256"] = sha256(np.ascontiguousarray(array).tobytes())
                tensors[name]["numpy_shape"] = list(array.shape)
        out[path] = {"metadata": metadata, "tensors": tensors}
    return out


def spec_of(name, dtype, shape, data, keep):
    buffer = ctypes.create_string_buffer(bytes(data), len(data))
    keep.append(buffer)
    if dtype == "F4":  # TensorSpec takes the packed storage shape and doubles the last dimension
        shape = list(shape[:-1]) + [shape[-1] // 2]
    return TensorSpec(dtype=SPEC_NAMES[dtype], shape=list(shape), data_ptr=ctypes.addressof(buffer), data_len=len(data))


def rewrite(src, dst):
    with open(src, "rb") as f:
        raw = f.read()
    with safe_open(src, "np") as f:
        metadata = f.metadata()
    keep = []
    specs = {name: spec_of(name, t["dtype"], t["shape"], t["data"], keep) for name, t in safetensors.deserialize(raw)}
    safetensors.serialize_file(specs, dst, metadata=metadata)


def write(spec):
    out = {}
    for file in spec["files"]:
        rng = random.Random(file["seed"])
        keep, specs, digests = [], {}, {}
        for t in file["tensors"]:
            data = rng.randbytes(t["bytes"])
            specs[t["name"]] = spec_of(t["name"], t["dtype"], t["shape"], data, keep)
            digests[t["name"]] = sha256(data)
        safetensors.serialize_file(specs, file["path"], metadata=file.get("metadata"))
        out[file["path"]] = digests
    return out


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "read":
        print(json.dumps(read(sys.argv[2:])))
    elif command == "rewrite":
        rewrite(sys.argv[2], sys.argv[3])
    elif command == "write":
        print(json.dumps(write(json.load(sys.stdin))))
    else:
        raise SystemExit(f"unknown command {command}")
