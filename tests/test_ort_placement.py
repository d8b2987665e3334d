"""Where ONNX Runtime ran each node: read from the profile of a session's first call, so nodes
left on the CPU when a GPU provider was asked for are counted, not missed."""

from __future__ import annotations

from pathlib import Path

import torch
from onnx import TensorProto, helper, save

from accelbench.backends.ort import OrtInfer, node_placement
from accelbench.data.encode import synthetic_batch


def _event(provider: str, index: int, op: str) -> dict:
    args = {"provider": provider, "node_index": str(index), "op_name": op}
    return {"cat": "Node", "name": f"{op}_{index}_kernel_time", "args": args}


def test_nodes_off_the_requested_provider_are_counted_by_op_type():
    events = [
        {"cat": "Session", "name": "session_initialization", "args": {}},
        _event("CUDAExecutionProvider", 0, "MatMul"),
        _event("CUDAExecutionProvider", 0, "MatMul"),  # a node seen twice is one node
        _event("CUDAExecutionProvider", 1, "MemcpyToHost"),
        _event("CPUExecutionProvider", 2, "Shape"),
        _event("CPUExecutionProvider", 3, "Gather"),
        _event("CPUExecutionProvider", 4, "Shape"),
    ]
    placement = node_placement(events, "CUDAExecutionProvider")
    assert placement == {
        "nodes_by_provider": {"CPUExecutionProvider": 3, "CUDAExecutionProvider": 2},
        "nodes_off_requested_provider": 3,
        "ops_off_requested_provider": {"Gather": 1, "Shape": 2},
    }
    on_cpu = node_placement(events[4:], "CPUExecutionProvider")
    assert on_cpu["nodes_off_requested_provider"] == 0


def _graph(path: Path) -> Path:
    """logits = float(input_ids + attention_mask)[..., None]: one label, three nodes."""
    nodes = [
        helper.make_node("Add", ["input_ids", "attention_mask"], ["sum"]),
        helper.make_node("Cast", ["sum"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["f", "axes"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info(name, TensorProto.INT64, ["b", "t"])
            for name in ("input_ids", "attention_mask")
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "t", 1])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [2])],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_the_first_call_records_placement_and_ends_profiling(tmp_path):
    session = OrtInfer(_graph(tmp_path / "g.onnx"), "cpu", "fp32", 1)
    batch = synthetic_batch(2, 5, 30522, 1, seed=0)
    assert session.details()["node_placement"] is None  # nothing ran yet
    first = session.logits(batch)
    assert torch.equal(first[..., 0], (batch.input_ids + batch.attention_mask).float())
    placement = session.details()["node_placement"]
    assert placement["nodes_by_provider"]["CPUExecutionProvider"] >= 1
    assert placement["nodes_off_requested_provider"] == 0
    session.logits(batch)
    assert session.details()["node_placement"] == placement
    assert not list(tmp_path.glob("placement*"))  # the profile is read and removed
    assert session.session.end_profiling() == ""  # profiling ended with the first call
