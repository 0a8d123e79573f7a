#!/usr/bin/python3
"""Write the float ONNX models and calibration arrays that `make bench` times.

Usage: /usr/bin/python3 bench/make_models.py OUTDIR [--models a,b,...] [--calib-n N]

For each model NAME this writes OUTDIR/NAME.onnx (opset 13, dynamic batch
dimension on the input and the output, eval mode with BatchNormalization kept
so that qforge folds it), OUTDIR/NAME.calib.npy (N float32 samples drawn
from a unit normal, the model's input shape; `qforge quantize --calib` reads
it), NAME.calib_labels.npy (N zero labels, which --calib requires beside an
array file) and NAME.input1.npy (the first sample, for `qforge run`). Files
already present are kept. All weights are random (seeded, torch's
default initialisation): the benchmark measures speed, not accuracy.

Models (name: what it is, input):
  mobilenetv2   torchvision MobileNetV2, 1x3x224x224
  resnet18      torchvision ResNet-18, 1x3x224x224
  squeezenet11  torchvision SqueezeNet 1.1, 1x3x224x224
  alexnet       the Keras AlexNet of issue 4 (conv 96 11x11/4 same, pool 3/2, BN; conv 256 5x5
                same, pool, BN; conv 384, 384, 256 3x3 same, pool, BN; dense 4096, dropout,
                dense 4096, dropout, dense 1000, softmax), 1x3x227x227
  fmnist_cnn    the small CNN of the PTQ issue (tests/fixtures/train_fmnist.py --arch cnn),
                random weights instead of trained ones, 1x1x28x28
  fmnist_resnet the small ResNet of the PTQ issue (--arch resnet), random weights, 1x1x28x28
"""
import argparse
import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # importing train_fmnist must not litter tests/fixtures
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
SEED = 0


class KerasAlexNet(nn.Module):
    """AlexNet as the Keras definition of issue 4 builds it, in NCHW.

    Keras "same" padding with stride 4 on 227 gives ceil(227/4) = 57 outputs and
    a total padding of (57-1)*4 + 11 - 227 = 8, i.e. 4 on each side; stride-1
    "same" convolutions pad k//2. Pools are "valid" (Keras' default). Keras'
    BatchNormalization uses epsilon 1e-3.
    """

    def __init__(self, classes=1000):
        super().__init__()

        def conv(cin, cout, k, stride=1, pad=None):
            return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if pad is None else pad),
                    nn.ReLU()]

        def pool_bn(c):
            return [nn.MaxPool2d(3, 2), nn.BatchNorm2d(c, eps=1e-3)]

        self.features = nn.Sequential(
            *conv(3, 96, 11, stride=4, pad=4), *pool_bn(96),
            *conv(96, 256, 5), *pool_bn(256),
            *conv(256, 384, 3), *conv(384, 384, 3), *conv(384, 256, 3), *pool_bn(256))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, classes), nn.Softmax(dim=1))

    def forward(self, x):
        return self.classifier(self.features(x))


def build(name):
    import torchvision.models as tvm
    if name == "mobilenetv2":
        return tvm.mobilenet_v2(weights=None), (3, 224, 224)
    if name == "resnet18":
        return tvm.resnet18(weights=None), (3, 224, 224)
    if name == "squeezenet11":
        return tvm.squeezenet1_1(weights=None), (3, 224, 224)
    if name == "alexnet":
        return KerasAlexNet(), (3, 227, 227)
    if name in ("fmnist_cnn", "fmnist_resnet"):
        import train_fmnist
        return train_fmnist.make_model(name.split("_", 1)[1]), (1, 28, 28)
    raise SystemExit(f"make_models.py: unknown model {name!r} (known: {', '.join(MODELS)})")


MODELS = ("fmnist_cnn", "fmnist_resnet", "mobilenetv2", "resnet18", "squeezenet11", "alexnet")


def randomize_bn(model, gen):
    # Fresh BatchNorm layers are identities (mean 0, var 1, gamma 1, beta 0);
    # give them some spread so the folded convolutions look like trained ones.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))


def export(name, outdir, calib_n):
    onnx_path = os.path.join(outdir, name + ".onnx")
    calib_path = os.path.join(outdir, name + ".calib.npy")
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED + 1)
    model, shape = build(name)
    randomize_bn(model, gen)
    model.eval()
    if not os.path.exists(onnx_path):
        tmp = onnx_path + ".tmp"
        # TrainingMode.PRESERVE on an eval-mode model: inference semantics
        # without the exporter folding BatchNorm away (qforge folds it).
        torch.onnx.export(model, torch.zeros(1, *shape), tmp, opset_version=13,
                          input_names=["input"], output_names=["output"],
                          training=torch.onnx.TrainingMode.PRESERVE,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        os.replace(tmp, onnx_path)
        print(f"  wrote {onnx_path}", flush=True)
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((calib_n, *shape), dtype=np.float32)
    # calibration images, their (unused, required) labels, and one sample
    # for `qforge run` (the memory measurement)
    for path, arr in ((calib_path, x),
                      (os.path.join(outdir, name + ".calib_labels.npy"),
                       np.zeros(calib_n, dtype=np.int64)),
                      (os.path.join(outdir, name + ".input1.npy"), x[:1])):
        if os.path.exists(path):
            continue
        tmp = path + ".tmp.npy"
        np.save(tmp, arr)
        os.replace(tmp, path)
        print(f"  wrote {path}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma-separated subset of: " + ", ".join(MODELS))
    ap.add_argument("--calib-n", type=int, default=8, help="calibration samples (default 8)")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    torch.set_num_threads(2)
    for name in [m for m in args.models.split(",") if m]:
        export(name, args.outdir, args.calib_n)


if __name__ == "__main__":
    main()
