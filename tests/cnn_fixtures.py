"""Tiny ONNX models and rasters generated for the CNN tests (built with the onnx helper API)."""

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LAND_WATER = [{"value": 0, "name": "land", "color": "#c8b58a"},
              {"value": 1, "name": "water", "color": "#1f78b4"}]


def conv_model(path, weights, bias=None, kernel=1, task_props=None, input_rank=4,
               channels_static=True, spatial=None, output_type="logits", opset=13):
    """Writes a one-layer convolution model: output = conv(input, weights) + bias.

    Args:
        weights: array (K, C, k, k) or (K, C) for 1x1.
        task_props: metadata_props to embed (dict of JSON-able values), or None for none.
        spatial: a fixed tile size (static H, W) or None for dynamic.
    """
    weights = np.asarray(weights, dtype="float32")
    if weights.ndim == 2:
        weights = weights[:, :, None, None]
    k_out, c_in, kh, _ = weights.shape
    bias = np.zeros(k_out, "float32") if bias is None else np.asarray(bias, "float32")
    size = spatial if spatial else "H"
    size_w = spatial if spatial else "W"
    in_shape = ["N", c_in if channels_static else "C", size, size_w]
    if input_rank != 4:
        in_shape = ["N", c_in, size][:input_rank]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", k_out, size, size_w])
    pad = kh // 2
    node = helper.make_node("Conv", ["input", "w", "b"], ["scores"], pads=[pad] * 4,
                            kernel_shape=[kh, kh])
    graph = helper.make_graph([node], "conv", [x], [y],
                              [numpy_helper.from_array(weights, "w"),
                               numpy_helper.from_array(bias, "b")])
    if input_rank != 4:  # a valid graph of another rank: element-wise Relu
        y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, in_shape)
        graph = helper.make_graph([helper.make_node("Relu", ["input"], ["scores"])], "relu",
                                  [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if task_props is not None:
        props = {k: v if isinstance(v, str) else json.dumps(v) for k, v in task_props.items()}
        props.setdefault("output_type", output_type)
        helper.set_model_props(model, props)
    onnx.save(model, path)
    return path


def pooling_patch_model(path, classes, bands, patch, props):
    """Writes a patch classifier: global average of each band -> class scores (N, K)."""
    k_out = len(classes)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", len(bands), patch, patch])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", k_out])
    weights = np.zeros((len(bands), k_out), "float32")
    weights[0, :] = np.linspace(-1.0, 1.0, k_out) * 10.0
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["scores"]),
    ]
    graph = helper.make_graph(nodes, "patch", [x], [y], [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {k: v if isinstance(v, str) else json.dumps(v)
                                   for k, v in props.items()})
    onnx.save(model, path)
    return path


def write_raster(path, data, descriptions=None, nodata=None, crs="EPSG:32633",
                 transform=None, dtype=None):
    """Writes a (bands, rows, cols) array as a GeoTIFF with band descriptions."""
    import rasterio
    from rasterio.transform import from_origin

    data = np.asarray(data)
    profile = {
        "driver": "GTiff", "count": data.shape[0], "height": data.shape[1],
        "width": data.shape[2], "dtype": dtype or data.dtype.name, "crs": crs,
        "transform": transform or from_origin(500000.0, 4500000.0, 10.0, 10.0),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"]))
        for i, name in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, name)
    return path
