"""Builds the three tiny ONNX graphs of a text-to-image pipeline for sgl-image's tests.

Usage: python3 make_tiny.py OUT_DIR

Writes, with fixed pseudo-random weights (numpy RandomState(0)):
  text_encoder.onnx  input_ids int64 [1, 16]          -> embedding float [1, 16, 8]
                     (a 259 x 8 embedding table, the byte-level tokenizer's vocabulary)
  unet.onnx          latent float [1, 4, 8, 8], sigma float [1], text float [1, 16, 8]
                     -> prediction float [1, 4, 8, 8]
                     tanh(conv3x3(latent / sqrt(sigma^2 + 1)) + text_mean @ W), an epsilon guess
  vae_decoder.onnx   latent float [1, 4, 8, 8] -> image float [1, 3, 16, 16]
                     tanh(conv_transpose2x2_stride2(latent))
Opset 18, IR version 10 (what ONNX Runtime 1.32 loads). Needs only the `onnx` package and numpy.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MAX_LENGTH = 16
EMBED = 8
VOCABULARY = 259
LATENT = [1, 4, 8, 8]
IMAGE = [1, 3, 16, 16]
OPSET = 18
IR_VERSION = 10


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sgl-image-tests")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, path)


def weights(rng, name, shape, scale):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def text_encoder(rng):
    table = weights(rng, "table", [VOCABULARY, EMBED], 1.0)
    gather = helper.make_node("Gather", ["table", "input_ids"], ["embedding"], axis=0)
    return helper.make_graph(
        [gather],
        "text_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, MAX_LENGTH])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, MAX_LENGTH, EMBED])],
        [table],
    )


def unet(rng):
    initializers = [
        weights(rng, "conv_w", [4, 4, 3, 3], 0.3),
        weights(rng, "conv_b", [4], 0.1),
        weights(rng, "text_w", [EMBED, 4], 0.5),
        numpy_helper.from_array(np.array([1.0], np.float32), "one"),
        numpy_helper.from_array(np.array([1, 4, 1, 1], np.int64), "bias_shape"),
        numpy_helper.from_array(np.array([1], np.int64), "mean_axes"),
    ]
    nodes = [
        helper.make_node("Mul", ["sigma", "sigma"], ["sigma2"]),
        helper.make_node("Add", ["sigma2", "one"], ["sigma2p1"]),
        helper.make_node("Sqrt", ["sigma2p1"], ["c_in_inv"]),
        helper.make_node("Div", ["latent", "c_in_inv"], ["scaled"]),
        helper.make_node("Conv", ["scaled", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceMean", ["text", "mean_axes"], ["text_mean"], keepdims=0),
        helper.make_node("MatMul", ["text_mean", "text_w"], ["text_bias"]),
        helper.make_node("Reshape", ["text_bias", "bias_shape"], ["text_bias4"]),
        helper.make_node("Add", ["conv", "text_bias4"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["prediction"]),
    ]
    return helper.make_graph(
        nodes,
        "unet",
        [
            helper.make_tensor_value_info("latent", TensorProto.FLOAT, LATENT),
            helper.make_tensor_value_info("sigma", TensorProto.FLOAT, [1]),
            helper.make_tensor_value_info("text", TensorProto.FLOAT, [1, MAX_LENGTH, EMBED]),
        ],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, LATENT)],
        initializers,
    )


def vae_decoder(rng):
    kernel = weights(rng, "up_w", [4, 3, 2, 2], 0.5)
    nodes = [
        helper.make_node("ConvTranspose", ["latent", "up_w"], ["up"], strides=[2, 2]),
        helper.make_node("Tanh", ["up"], ["image"]),
    ]
    return helper.make_graph(
        nodes,
        "vae_decoder",
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, LATENT)],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, IMAGE)],
        [kernel],
    )


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(0)
    save(text_encoder(rng), os.path.join(out, "text_encoder.onnx"))
    save(unet(rng), os.path.join(out, "unet.onnx"))
    save(vae_decoder(rng), os.path.join(out, "vae_decoder.onnx"))


if __name__ == "__main__":
    main()
