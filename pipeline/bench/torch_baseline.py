"""PyTorch baseline for fsr-train's throughput: the same generator,
multi-scale discriminator, losses, R1 schedule and Adam settings, timed
on random data shaped like the demo's levels.

Usage: /usr/bin/python3 torch_baseline.py --size 32 --channels 1
           --steps 60 --threads 2
Prints one JSON object: images per second over the timed steps.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Generator(nn.Module):
    def __init__(self, size, channels, levels, z_dim=100, width=64):
        super().__init__()
        self.s0 = size >> levels
        self.width = width
        self.fc = nn.Linear(z_dim, width * self.s0 * self.s0)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(width, width, 4, 2, 1)
            for _ in range(levels - 1))
        self.to_image = nn.ModuleList(
            nn.ConvTranspose2d(width, channels, 6, 2, 2)
            for _ in range(levels))

    def forward(self, z):
        h = F.relu(self.fc(z)).view(-1, self.width, self.s0, self.s0)
        outputs = [self.to_image[0](h)]
        for up, head in zip(self.up, self.to_image[1:]):
            h = F.relu(up(h))
            outputs.append(head(h))
        return outputs


def minibatch_std(x, group=4):
    n, c, h, w = x.shape
    g = min(group, n)
    y = x.view(g, -1, c, h, w)
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()
    feature = std.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)
    feature = feature.repeat(g, 1, h, w)
    return torch.cat([x, feature], dim=1)


class Discriminator(nn.Module):
    def __init__(self, size, channels, levels, width=64):
        super().__init__()
        s0 = size >> levels
        self.levels = levels
        self.from_image = nn.ModuleList(
            nn.Conv2d(channels, width, 6, 2, 2) for _ in range(levels))
        self.down = nn.ModuleList(
            nn.Conv2d(width if i == levels - 1 else 2 * width, width, 4, 2, 1)
            for i in range(1, levels))
        top = (2 * width if levels > 1 else width) + 1
        self.out = nn.Linear(top * s0 * s0, 1)

    def forward(self, images):
        h = F.leaky_relu(self.from_image[-1](images[-1]), 0.2)
        for level in range(self.levels - 2, -1, -1):
            d = F.leaky_relu(self.down[level](h), 0.2)
            f = F.leaky_relu(self.from_image[level](images[level]), 0.2)
            h = torch.cat([d, f], dim=1)
        h = minibatch_std(h)
        return self.out(h.flatten(1)).squeeze(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--r1-gamma", type=float, default=10.0)
    parser.add_argument("--r1-every", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)

    g = Generator(args.size, args.channels, args.levels)
    d = Discriminator(args.size, args.channels, args.levels)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    sizes = [args.size >> (args.levels - 1 - l) for l in range(args.levels)]
    real = [torch.rand(args.batch, args.channels, s, s) * 2 - 1
            for s in sizes]

    def step(index):
        z = torch.randn(args.batch, 100)
        fake = [x.detach() for x in g(z)]
        loss_d = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
        if args.r1_gamma > 0 and index % args.r1_every == 0:
            inputs = [x.clone().requires_grad_(True) for x in real]
            grads = torch.autograd.grad(d(inputs).sum(), inputs,
                                        create_graph=True)
            penalty = sum(gr.pow(2).sum() for gr in grads) / args.batch
            loss_d = loss_d + 0.5 * args.r1_gamma * args.r1_every * penalty
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        z = torch.randn(args.batch, 100)
        loss_g = F.softplus(-d(g(z))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    for i in range(args.warmup):
        step(i)
    start = time.perf_counter()
    for i in range(args.steps):
        step(args.warmup + i)
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "tool": "pytorch", "version": torch.__version__,
        "threads": args.threads, "steps": args.steps,
        "seconds": round(elapsed, 3),
        "images_per_s": round(args.steps * args.batch / elapsed, 1)}))


if __name__ == "__main__":
    main()
