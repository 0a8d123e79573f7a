#!/usr/bin/python3
"""PyTorch side of the training-throughput comparison (bench/train_bench.sh).

Trains the torch twin of a qforge built-in architecture (tests/fixtures/
torch_twins.py) for one pass over the first N Fashion-MNIST training images
with the same recipe shape as `qforge train` (batch B, SGD with Nesterov
momentum 0.9, weight decay 5e-4, shuffled batches, softmax cross-entropy),
on T threads, and prints one JSON line: {"arch", "images", "seconds",
"images_per_s"}. Data loading is done once, before timing, as qforge does
(it keeps the IDX arrays in memory).
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "fixtures"))
from torch_twins import lenet, mobilenet_v2_tiny, resnet8  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--arch", required=True, choices=["lenet", "resnet8", "mobilenet_v2_tiny"])
ap.add_argument("--limit", type=int, default=6400)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
root = "/usr/share/datasets/fashion-mnist"
with gzip.open(f"{root}/train-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:a.limit]
with gzip.open(f"{root}/train-labels-idx1-ubyte.gz") as f:
    y = np.frombuffer(f.read(), np.uint8, offset=8)[:a.limit]
x = torch.from_numpy(x.astype(np.float32) / 255.0)
y = torch.from_numpy(y.astype(np.int64))
m = {"lenet": lambda: lenet(True), "resnet8": resnet8, "mobilenet_v2_tiny": mobilenet_v2_tiny}[
    a.arch]()
opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
m.train()
perm = torch.randperm(len(x))
t0 = time.perf_counter()
for i in range(0, len(x), a.batch):
    idx = perm[i:i + a.batch]
    opt.zero_grad()
    loss = F.cross_entropy(m(x[idx]), y[idx])
    loss.backward()
    opt.step()
dt = time.perf_counter() - t0
print(json.dumps({"arch": a.arch, "images": len(x), "seconds": dt, "images_per_s": len(x) / dt}))
