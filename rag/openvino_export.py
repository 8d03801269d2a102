"""The OpenVINO copies of the exported e5 graph, written beside the ONNX ones (rag/onnx_export.py builds both from
the same plain export, checks both against torch, and lists both in one manifest):

    onnx/openvino.xml, .bin        the graph as OpenVINO's IR, weights float16 on disk (they are float16 values as
                                   built: nothing is lost); run in bfloat16 on a CPU that has it (AVX512_BF16, AMX),
                                   else in float32
    onnx/openvino_int8.xml, .bin   the same with every matrix of the 12 layers int8 (symmetric, one scale per output
                                   channel), which OpenVINO's CPU plugin multiplies in int8 against activations it
                                   quantises per token as it runs (dynamic quantisation, VNNI / AMX)

OpenVINO reads the plain graph, not ONNX Runtime's fused one: its own transformations find the attention
(ScaledDotProductAttention), the layer norms and GELU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.errors import ModelUnavailable

GRAPHS = {"openvino": "openvino.xml", "openvino-int8": "openvino_int8.xml"}


def write_openvino(exported: Path, out_dir: Path) -> dict[str, Path]:
    """Both IR copies of the plain ONNX graph `exported` into `out_dir`. Returns runtime name -> .xml path."""
    from rag.onnx_export import _float16_word_embeddings
    from rag.runtime.openvino import import_openvino

    ov = import_openvino("exporting the model")

    paths = {name: out_dir / file for name, file in GRAPHS.items()}
    ov.save_model(ov.convert_model(str(exported)), str(paths["openvino"]), compress_to_fp16=True)
    int8, table = out_dir / "int8-weights.onnx", out_dir / "int8-table16.onnx"
    _int8_weights(exported, int8)
    # With int8 matrices in the graph, compress_to_fp16 leaves the (float16-valued) word embeddings float32.
    _float16_word_embeddings(int8, table)
    ov.save_model(ov.convert_model(str(table)), str(paths["openvino-int8"]), compress_to_fp16=True)
    int8.unlink()
    table.unlink()
    return paths


def _int8_weights(src: Path, out: Path) -> None:
    """Each MatMul by a constant matrix reads it through DequantizeLinear from int8 codes (symmetric, a scale per
    output channel, zero point 0): the pattern OpenVINO keeps as compressed weights. Activations stay float."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    nodes, done = [], 0
    for node in graph.node:
        w = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if w is not None and len(w.dims) == 2:
            name, matrix = w.name, numpy_helper.to_array(w).astype(np.float32)  # [in, out]
            scale = np.abs(matrix).max(axis=0) / 127.0
            scale[scale == 0] = 1.0
            codes = np.clip(np.round(matrix / scale), -127, 127).astype(np.int8)
            graph.initializer.remove(w)
            graph.initializer.extend([numpy_helper.from_array(codes, name + "_int8"),
                                      numpy_helper.from_array(scale.astype(np.float32), name + "_scale"),
                                      numpy_helper.from_array(np.zeros(scale.shape, np.int8), name + "_zero")])
            nodes.append(helper.make_node("DequantizeLinear", [name + "_int8", name + "_scale", name + "_zero"],
                                          [name + "_dequantized"], axis=1, name=name + "_dequantize"))
            node.input[1] = name + "_dequantized"
            done += 1
        nodes.append(node)
    if done == 0:
        raise ModelUnavailable("cannot export the model: no weight matrix found for the int8 OpenVINO copy")
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(out))
