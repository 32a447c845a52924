"""Write the PyTorch golden files that tests/test_layers.c compares with.

Run with an interpreter that has torch and numpy (Debian's python3-torch
1.13 was used):  /usr/bin/python3 tests/golden/make_golden.py

Every case saves float32 .npy files named <case>_<tensor>.npy under
tests/data/golden/. Inputs are drawn in float32; outputs and gradients
are computed in float64 from those inputs and then rounded to float32, so
they are the exact values to float32 precision. Gradients are those of
sum(dy * y) for a random upstream gradient dy. A <case>_meta.npy file
stores the layer's settings as a float vector.
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                   "golden")


def save(case, name, tensor):
    array = np.ascontiguousarray(tensor.detach().cpu().numpy(),
                                 dtype=np.float32)
    np.save(os.path.join(OUT, f"{case}_{name}.npy"), array)


def randn(*shape):
    """Float32 normal draws, returned as float64 with those exact values."""
    return torch.randn(*shape, dtype=torch.float32).double()


def input_leaf(*shape, away_from_zero=0.0):
    x = randn(*shape)
    if away_from_zero:
        # Keep values off the activation kinks so gradients are unambiguous.
        x = torch.where(x.abs() < away_from_zero,
                        torch.sign(x) * away_from_zero + x, x)
        x = x.float().double()
    return x.requires_grad_(True)


def save_grads(case, tensors):
    for name, tensor in tensors.items():
        if tensor is not None:
            save(case, name, tensor)


def conv_case(case, transposed, n, in_ch, out_ch, kernel, stride, pad, h,
              w, bias=True):
    x = input_leaf(n, in_ch, h, w)
    if transposed:
        weight = randn(in_ch, out_ch, kernel, kernel) * 0.3
    else:
        weight = randn(out_ch, in_ch, kernel, kernel) * 0.3
    weight.requires_grad_(True)
    b = (randn(out_ch) * 0.5).requires_grad_(True) if bias else None
    if transposed:
        y = F.conv_transpose2d(x, weight, b, stride=stride, padding=pad)
    else:
        y = F.conv2d(x, weight, b, stride=stride, padding=pad)
    dy = randn(*y.shape)
    (y * dy).sum().backward()
    meta = [n, in_ch, out_ch, kernel, stride, pad, h, w, int(bias)]
    save(case, "meta", torch.tensor(meta, dtype=torch.float32))
    save_grads(case, {"x": x, "weight": weight, "bias": b, "y": y,
                      "dy": dy, "dx": x.grad, "dweight": weight.grad,
                      "dbias": b.grad if bias else None})


def linear_case(case, n, in_features, out_features, bias=True):
    x = input_leaf(n, in_features)
    weight = (randn(out_features, in_features) * 0.3).requires_grad_(True)
    b = (randn(out_features) * 0.5).requires_grad_(True) if bias else None
    y = F.linear(x, weight, b)
    dy = randn(*y.shape)
    (y * dy).sum().backward()
    meta = [n, in_features, out_features, int(bias)]
    save(case, "meta", torch.tensor(meta, dtype=torch.float32))
    save_grads(case, {"x": x, "weight": weight, "bias": b, "y": y,
                      "dy": dy, "dx": x.grad, "dweight": weight.grad,
                      "dbias": b.grad if bias else None})


def activation_case(case, slope, count):
    x = input_leaf(count, away_from_zero=1e-3)
    y = F.relu(x) if slope == 0 else F.leaky_relu(x, slope)
    dy = randn(count)
    (y * dy).sum().backward()
    save(case, "meta", torch.tensor([slope], dtype=torch.float32))
    save_grads(case, {"x": x, "y": y, "dy": dy, "dx": x.grad})


def minibatch_std(x, group):
    """Minibatch standard deviation feature over consecutive groups."""
    n, c, h, w = x.shape
    g = min(group, n)
    grouped = x.reshape(n // g, g, c, h, w)
    var = grouped.var(dim=1, unbiased=False)
    feature = torch.sqrt(var + 1e-8).mean(dim=(1, 2, 3))
    feature = feature.reshape(n // g, 1, 1, 1, 1).expand(n // g, g, 1, h, w)
    return torch.cat([x, feature.reshape(n, 1, h, w)], dim=1)


def mbstd_case(case, group, n, c, h, w):
    x = input_leaf(n, c, h, w)
    y = minibatch_std(x, group)
    dy = randn(*y.shape)
    (y * dy).sum().backward()
    meta = [group, n, c, h, w]
    save(case, "meta", torch.tensor(meta, dtype=torch.float32))
    save_grads(case, {"x": x, "y": y, "dy": dy, "dx": x.grad})


def loss_case(case, target):
    logits = torch.tensor([-100.0, -20.0, -3.5, -0.25, 0.0, 0.7, 2.0, 15.0,
                           100.0], dtype=torch.float32).double()
    logits.requires_grad_(True)
    targets = torch.full_like(logits, float(target))
    loss = F.binary_cross_entropy_with_logits(logits, targets)
    loss.backward()
    save(case, "meta", torch.tensor([target], dtype=torch.float32))
    save_grads(case, {"logits": logits, "loss": loss.reshape(1),
                      "dlogits": logits.grad})


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20240611)

    # Conv2d: the discriminator's geometries at small channel counts, odd
    # and non-square sides, stride 1 without bias.
    conv_case("conv_k4s2", False, 3, 3, 4, 4, 2, 1, 9, 7)
    conv_case("conv_k6s2", False, 2, 1, 5, 6, 2, 2, 10, 10)
    conv_case("conv_k3s1_nobias", False, 2, 2, 3, 3, 1, 1, 5, 6, bias=False)
    conv_case("conv_k4s2_hot", False, 2, 8, 8, 4, 2, 1, 4, 4)

    # ConvTranspose2d: the generator's geometries, likewise.
    conv_case("tconv_k4s2", True, 3, 4, 3, 4, 2, 1, 5, 3)
    conv_case("tconv_k6s2", True, 2, 5, 3, 6, 2, 2, 4, 4)
    conv_case("tconv_k3s1_nobias", True, 2, 3, 2, 3, 1, 1, 4, 5, bias=False)
    conv_case("tconv_k4s2_hot", True, 2, 8, 8, 4, 2, 1, 2, 2)

    linear_case("linear", 5, 10, 6)
    linear_case("linear_nobias", 3, 7, 4, bias=False)

    activation_case("leaky_relu", 0.2, 60)
    activation_case("relu", 0.0, 60)

    mbstd_case("mbstd_group4", 4, 8, 3, 4, 4)
    mbstd_case("mbstd_small_batch", 4, 3, 2, 3, 3)

    loss_case("loss_real", 1)
    loss_case("loss_fake", 0)
    print(f"wrote golden files to {os.path.normpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
