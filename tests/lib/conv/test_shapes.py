"""Bad shapes fail with a ValueError naming the sizes, in every path alike."""

import numpy as np
import pytest

from cs231n_lib.conv import (conv_backward, conv_forward, conv_forward_naive, max_pool_forward,
                             max_pool_forward_naive, spatial_batchnorm_forward)

FORWARDS = [conv_forward_naive, conv_forward]


@pytest.mark.parametrize("forward", FORWARDS)
def test_stride_that_does_not_tile_names_the_sizes(forward):
    x, w, b = np.zeros((1, 1, 6, 6)), np.zeros((1, 1, 3, 3)), np.zeros(1)
    with pytest.raises(ValueError, match=r"stride 2 does not tile the input height: "
                                         r"6 \+ 2\*pad\(0\) - filter\(3\) = 3"):
        forward(x, w, b, {"stride": 2, "pad": 0})


@pytest.mark.parametrize("forward", FORWARDS)
def test_pad_that_does_not_tile_names_the_sizes(forward):
    x, w, b = np.zeros((1, 1, 5, 6)), np.zeros((1, 1, 3, 2)), np.zeros(1)
    with pytest.raises(ValueError, match=r"does not tile the input width: 6 \+ 2\*pad\(1\) "
                                         r"- filter\(2\) = 6"):
        forward(x, w, b, {"stride": 4, "pad": 1})


@pytest.mark.parametrize("forward", FORWARDS)
def test_mismatched_channels(forward):
    with pytest.raises(ValueError, match=r"channels do not match: x has C=3 .* w has C=2"):
        forward(np.zeros((1, 3, 4, 4)), np.zeros((2, 2, 3, 3)), np.zeros(2),
                {"stride": 1, "pad": 1})


@pytest.mark.parametrize("forward", FORWARDS)
def test_filter_larger_than_padded_input(forward):
    with pytest.raises(ValueError, match=r"filter height 5 is larger than the padded input "
                                         r"height 3 \+ 2\*0 = 3"):
        forward(np.zeros((1, 1, 3, 8)), np.zeros((1, 1, 5, 5)), np.zeros(1),
                {"stride": 1, "pad": 0})


@pytest.mark.parametrize("forward", FORWARDS)
@pytest.mark.parametrize("x_shape, w_shape, b_shape, message", [
    ((3, 4, 4), (1, 3, 3, 3), (1,), r"x must have shape \(N, C, H, W\), got shape \(3, 4, 4\)"),
    ((1, 3, 4, 4), (3, 3, 3), (1,), r"w must have shape \(F, C, HH, WW\)"),
    ((1, 3, 4, 4), (2, 3, 3, 3), (3,), r"b must have shape \(F,\) = \(2,\), got \(3,\)"),
])
def test_wrong_ranks(forward, x_shape, w_shape, b_shape, message):
    with pytest.raises(ValueError, match=message):
        forward(np.zeros(x_shape), np.zeros(w_shape), np.zeros(b_shape), {"stride": 1, "pad": 1})


@pytest.mark.parametrize("conv_param, message", [
    ({"pad": 1}, r"needs the key 'stride'"),
    ({"stride": 0, "pad": 1}, r"conv_param\['stride'\] must be >= 1, got 0"),
    ({"stride": 1, "pad": -1}, r"conv_param\['pad'\] must be >= 0, got -1"),
    ({"stride": 1.5, "pad": 1}, r"conv_param\['stride'\] must be an integer"),
])
def test_bad_conv_param(conv_param, message):
    with pytest.raises(ValueError, match=message):
        conv_forward(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), np.zeros(1), conv_param)


def test_unknown_method_and_winograd_misfit():
    x, w, b = np.zeros((1, 1, 6, 6)), np.zeros((1, 1, 5, 5)), np.zeros(1)
    with pytest.raises(ValueError, match=r"unknown conv_param\['method'\] 'fft'"):
        conv_forward(x, w, b, {"stride": 1, "pad": 2, "method": "fft"})
    with pytest.raises(ValueError, match=r"'winograd' needs 3x3 filters and stride 1, "
                                         r"got filters 5x5 and stride 1"):
        conv_forward(x, w, b, {"stride": 1, "pad": 2, "method": "winograd"})


def test_backward_rejects_wrong_dout_shape():
    out, cache = conv_forward(np.zeros((2, 1, 4, 4)), np.zeros((3, 1, 3, 3)), np.zeros(3),
                              {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=r"dout has shape \(2, 3, 4, 5\), expected \(2, 3, 4, 4\)"):
        conv_backward(np.zeros((2, 3, 4, 5)), cache)


@pytest.mark.parametrize("forward", [max_pool_forward, max_pool_forward_naive])
def test_pool_that_does_not_tile(forward):
    with pytest.raises(ValueError, match=r"stride 2 does not tile the input width: "
                                         r"5 - pool\(2\) = 3 is not a multiple of 2"):
        forward(np.zeros((1, 1, 4, 5)), {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match=r"needs the key 'pool_width'"):
        forward(np.zeros((1, 1, 4, 4)), {"pool_height": 2, "stride": 2})


def test_spatial_batchnorm_needs_images():
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, H, W\), got shape \(4, 3\)"):
        spatial_batchnorm_forward(np.zeros((4, 3)), np.ones(3), np.zeros(3), {"mode": "train"})
