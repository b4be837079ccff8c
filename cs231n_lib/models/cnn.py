"""A small convnet: conv - relu - 2x2 max pool - affine - relu - affine - softmax."""

import numpy as np

from ..conv import conv_backward, conv_forward, max_pool_backward, max_pool_forward
from .. import layers


class ThreeLayerConvNet:
    """Three layers with weights: a convolution, a hidden affine layer and a scoring one.

    The convolution keeps the image size (stride 1, pad (filter_size - 1) // 2, so an odd
    filter_size), the 2x2 max pool halves it (H and W must be even).

    Parameters (in .params): W1 (F, C, filter_size, filter_size), b1 (F,),
    W2 (F * H/2 * W/2, hidden_dim), b2 (hidden_dim,), W3 (hidden_dim, num_classes),
    b3 (num_classes,). Weights are drawn from N(0, weight_scale^2), biases are zero.
    The loss adds 0.5 * reg * sum(W^2) over W1, W2, W3.
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=np.float32, seed=None):
        if len(input_dim) != 3:
            raise ValueError(f"input_dim must be (C, H, W), got {input_dim!r}")
        C, H, W = input_dim
        if filter_size % 2 == 0:
            raise ValueError(f"filter_size must be odd to keep the image size, got {filter_size}")
        if H % 2 or W % 2:
            raise ValueError(f"the 2x2 max pool needs an even image size, got {H}x{W}")
        if reg < 0:
            raise ValueError(f"reg must be non-negative, got {reg}")
        rng = np.random.default_rng(seed)
        self.reg = reg
        self.dtype = dtype
        self.conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
        self.pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        shapes = {
            "W1": (num_filters, C, filter_size, filter_size), "b1": (num_filters,),
            "W2": (num_filters * (H // 2) * (W // 2), hidden_dim), "b2": (hidden_dim,),
            "W3": (hidden_dim, num_classes), "b3": (num_classes,),
        }
        self.params = {
            name: (weight_scale * rng.standard_normal(shape) if name[0] == "W"
                   else np.zeros(shape)).astype(dtype)
            for name, shape in shapes.items()
        }

    def loss(self, X, y=None):
        """Scores (N, num_classes) when y is None; else (loss, grads), grads keyed like params.

        X: (N, C, H, W); y: (N,) integer labels in [0, num_classes).
        """
        p = self.params
        X = np.asarray(X, dtype=self.dtype)
        conv, conv_cache = conv_forward(X, p["W1"], p["b1"], self.conv_param)
        a1, relu1_cache = layers.relu_forward(conv)
        pooled, pool_cache = max_pool_forward(a1, self.pool_param)
        hidden, affine2_cache = layers.affine_forward(pooled, p["W2"], p["b2"])
        a2, relu2_cache = layers.relu_forward(hidden)
        scores, affine3_cache = layers.affine_forward(a2, p["W3"], p["b3"])
        if y is None:
            return scores

        data_loss, dscores = layers.softmax_loss(scores, y)
        weights = (p["W1"], p["W2"], p["W3"])
        loss = data_loss + 0.5 * self.reg * sum(np.sum(W * W) for W in weights)

        grads = {}
        da2, grads["W3"], grads["b3"] = layers.affine_backward(dscores, affine3_cache)
        dhidden = layers.relu_backward(da2, relu2_cache)
        dpooled, grads["W2"], grads["b2"] = layers.affine_backward(dhidden, affine2_cache)
        da1 = max_pool_backward(dpooled.reshape(pooled.shape), pool_cache)
        dconv = layers.relu_backward(da1, relu1_cache)
        _, grads["W1"], grads["b1"] = conv_backward(dconv, conv_cache)
        for name in ("W1", "W2", "W3"):
            grads[name] = grads[name] + self.reg * p[name]
        grads = {k: v.astype(self.dtype, copy=False) for k, v in grads.items()}
        return loss, grads
