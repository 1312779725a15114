"""The Python side of the torch.distributed.checkpoint (DCP) compatibility tests.

    dcp_compat.py save OUT WORLD     torch's dcp.save from WORLD processes (gloo, CPU) of a state with
                                     DTensors sharded on rows and on columns, a replicated bf16 tensor,
                                     nested dicts, an optimizer-like list and plain values; prints the
                                     full state described ({name: {dtype, shape, sha256} or value}).
    dcp_compat.py load OUT WORLD     stdin: JSON {name: [dtype, shape]} of the tensors to load. dcp.load
                                     into DTensors sharded on rows across WORLD processes (resharding
                                     whatever wrote it), or plain tensors when WORLD is 1; every rank
                                     checks its slice against the full tensor; prints the full state
                                     described as above.
    dcp_compat.py hostile OUT        for each KIND of HOSTILE below, writes a one-process DCP checkpoint
                                     to OUT/KIND, then makes it hostile in the way KIND names.
"""
import hashlib
import json
import warnings
import os
import pickle
import socket
import sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.metadata import BytesStorageMetadata, ChunkStorageMetadata

warnings.filterwarnings("ignore")

NAMES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.int64: "I64", torch.float16: "F16", torch.float64: "F64"}
DTYPES = {v: k for k, v in NAMES.items()}


def describe(value):
    if isinstance(value, torch.Tensor):
        if hasattr(value, "full_tensor"):
            value = value.full_tensor()
        data = value.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
        return {"dtype": NAMES[value.dtype], "shape": list(value.shape), "sha256": hashlib.sha256(data).hexdigest()}
    if isinstance(value, dict):
        return {k: describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    return value


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join_group(rank, world, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from torch.distributed.tensor import init_device_mesh

    return init_device_mesh("cpu", (world,))


def leave_group():
    # Every rank reaches this point before any tears its connections down: a rank that left while
    # another was still talking made gloo abort ("terminate called without an active exception").
    dist.barrier()
    dist.destroy_process_group()


def full_state():
    g = torch.Generator().manual_seed(7)
    return {
        "model": {
            "w": torch.randn(12, 5, generator=g),
            "emb": torch.randn(3, 8, generator=g).to(torch.float16),
            "b": torch.randn(7, generator=g).to(torch.bfloat16),
            "steps": torch.arange(5, dtype=torch.int64),
        },
        "optim": {"state": [{"exp_avg": torch.randn(12, 5, generator=g, dtype=torch.float64)}], "lr": 0.001},
        "epoch": 3,
        "tag": "run-a",
    }


def save_worker(rank, world, port, out):
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    mesh = join_group(rank, world, port)
    state = full_state()
    state["model"]["w"] = distribute_tensor(state["model"]["w"], mesh, [Shard(0)])
    state["model"]["emb"] = distribute_tensor(state["model"]["emb"], mesh, [Shard(1)])
    state["model"]["b"] = distribute_tensor(state["model"]["b"], mesh, [Replicate()])
    dcp.save(state, checkpoint_id=out)
    leave_group()


def save(out, world):
    mp.spawn(save_worker, args=(world, free_port(), out), nprocs=world)
    print(json.dumps(describe(full_state())))


def put(state, path, value):
    node = state
    *parents, leaf = path
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def template(spec, out):
    """Zeros for the tensors in spec, and a place for every stored value the metadata lists."""
    state = {}
    for name, (dtype, shape) in spec.items():
        put(state, name.split("."), torch.zeros(shape, dtype=DTYPES[dtype]))
    metadata = FileSystemReader(out).read_metadata()
    for fqn, meta in metadata.state_dict_metadata.items():
        if isinstance(meta, BytesStorageMetadata):
            put(state, metadata.planner_data.get(fqn, (fqn,)), None)
    return state


def load_worker(rank, world, port, out, spec, result):
    from torch.distributed.tensor import Shard, distribute_tensor

    mesh = join_group(rank, world, port)
    state = template(spec, out)
    sharded = {}

    def shard(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict):
                shard(value, f"{prefix}{key}.")
            elif isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] >= world:
                node[key] = distribute_tensor(value, mesh, [Shard(0)])
                sharded[prefix + key] = node[key]

    shard(state)
    dcp.load(state, checkpoint_id=out)
    for name, value in sharded.items():
        full = value.full_tensor()
        rows = (full.shape[0] + world - 1) // world
        expected = full[rank * rows : (rank + 1) * rows]
        assert torch.equal(value.to_local(), expected), f"rank {rank}: {name} slice differs"
    described = describe(state)  # full_tensor() is a collective: every rank takes part
    if rank == 0:
        with open(result, "w") as f:
            json.dump(described, f)
    leave_group()


def load(out, world):
    spec = json.load(sys.stdin)
    if world == 1:
        state = template(spec, out)
        dcp.load(state, checkpoint_id=out)
        print(json.dumps(describe(state)))
        return
    result = out + ".loaded.json"
    mp.spawn(load_worker, args=(world, free_port(), out, spec, result), nprocs=world)
    with open(result) as f:
        print(f.read())
    os.remove(result)


class RunsCode:
    """An object whose pickle calls os.system: what torch's load_bytes (weights_only=False) would run."""

    def __reduce__(self):
        return (os.system, ("echo pwned > " + os.environ["CKPT_PWNED"],))


def rewrite(out, change):
    path = os.path.join(out, ".metadata")
    with open(path, "rb") as f:
        metadata = pickle.load(f)
    change(metadata)
    with open(path, "wb") as f:
        pickle.dump(metadata, f)


def first_item(metadata, fqn):
    return next(k for k in metadata.storage_data if k.fqn == fqn)


HOSTILE = {
    # Nothing wrong: the base the others change.
    "plain": None,
    # The metadata pickle itself names os.system.
    "metadata-runs-code": lambda out, md: md.__setattr__("planner_data", RunsCode()),
    # A stored value (read by torch with weights_only=False) runs code.
    "value-runs-code": None,
    # A stored value that holds a numpy array (as an RNG state does): data, but only with numpy allowed.
    "numpy-value": None,
    # A storage file outside the folder.
    "path-escapes": lambda out, md: md.storage_data[first_item(md, "w")].__setattr__("relative_path", "../outside.distcp"),
    # An item stored through a transform ckpt does not implement.
    "transform": lambda out, md: md.storage_data[first_item(md, "w")].__setattr__("transform_descriptors", ["zstd"]),
    # Two chunks of one tensor overlap (and hide a hole).
    "overlap": lambda out, md: md.state_dict_metadata["w"].chunks.__setitem__(
        slice(None), [ChunkStorageMetadata(torch.Size([0, 0]), torch.Size([4, 3])), ChunkStorageMetadata(torch.Size([0, 0]), torch.Size([4, 3]))]
    ),
    # A tensor whose only chunk covers half of it.
    "hole": lambda out, md: md.state_dict_metadata["w"].__setattr__("size", torch.Size([8, 3])),
    # An item's byte range runs past the end of its file.
    "past-end": lambda out, md: md.storage_data[first_item(md, "w")].__setattr__("length", 10**9),
}


def hostile(out, kind):
    state = {"w": torch.arange(12, dtype=torch.float32).reshape(4, 3), "step": 1}
    if kind == "value-runs-code":
        state["step"] = RunsCode()
    if kind == "numpy-value":
        import numpy

        state["step"] = numpy.arange(4, dtype=numpy.int32)
    dcp.save(state, checkpoint_id=out, no_dist=True)
    change = HOSTILE[kind]
    if change:
        rewrite(out, lambda md: change(out, md))


if __name__ == "__main__":
    command, out = sys.argv[1], sys.argv[2]
    if command == "save":
        save(out, int(sys.argv[3]))
    elif command == "load":
        load(out, int(sys.argv[3]))
    elif command == "hostile":
        for kind in HOSTILE:
            hostile(os.path.join(out, kind), kind)
    else:
        raise SystemExit(f"unknown command {command}")
