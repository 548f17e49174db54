#!/usr/bin/python3
"""Produces the PyTorch test fixtures of DiffusionClassifier.Core.Tests/TestData/pytorch.

Run once with Debian 12's PyTorch 1.13 (apt-get install python3-torch); the .NET tests never need Python:

    /usr/bin/python3 tools/pytorch/make_fixture.py [output-folder]

The network is the reference ContextUnet (reference_model.py, docs/algorithm.md) wrapped in the reference DDPM module, whose
noise schedule is registered as buffers, so that torch.save(ddpm.state_dict()) writes exactly the keys a user's
checkpoint has: nn_model.* plus alpha_t, oneover_sqrta, sqrt_beta_t, alphabar_t, sqrtab, sqrtmab, mab_over_sqrtmab.
The only generalisation is that to_vec / up0 use (H/4, W/4) instead of the literal 7 so that a non-28x28 fixture
can be made; for 28x28 this is the reference exactly.

Written files (all small):
  <name>.pth                 torch.save(ddpm.state_dict()) (zip format)
  <name>.io.safetensors      inputs x, c, t, mask and PyTorch's eval-mode output eps, written by hand in the
                             safetensors layout (8-byte little-endian header length, JSON header, raw data)
  wrong_shape.pth            the small checkpoint with one tensor of the wrong shape
  hostile_zip.pth            a valid zip layout whose data.pkl calls posix.system on load
  hostile_raw.pkl            the same payload as a bare (non-zip) pickle
  hostile_nested.pth         a state dict whose last value is built by builtins.eval
  legacy.pth                 a state dict in the legacy (pre-1.6, non-zip) torch.save format
  views.pth                  tensors of every dtype, views with offsets and strides, a scalar, an empty tensor and
                             two keys sharing one storage; views.expected.safetensors holds their contiguous values
"""
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import torch
import torch.nn as nn

# If a loader ever executed the hostile payloads, this file would appear.
PAYLOAD_MARKER = "/tmp/dc-pytorch-payload-executed"

from reference_model import ContextUnet  # noqa: E402  (the sibling module; scripts run from any folder)


def ddpm_schedules(beta1, beta2, T):
    beta_t = (beta2 - beta1) * torch.arange(0, T + 1, dtype=torch.float32) / T + beta1
    sqrt_beta_t = torch.sqrt(beta_t)
    alpha_t = 1 - beta_t
    log_alpha_t = torch.log(alpha_t)
    alphabar_t = torch.cumsum(log_alpha_t, dim=0).exp()
    sqrtab = torch.sqrt(alphabar_t)
    oneover_sqrta = 1 / torch.sqrt(alpha_t)
    sqrtmab = torch.sqrt(1 - alphabar_t)
    mab_over_sqrtmab_inv = (1 - alpha_t) / sqrtmab
    return {
        "alpha_t": alpha_t,
        "oneover_sqrta": oneover_sqrta,
        "sqrt_beta_t": sqrt_beta_t,
        "alphabar_t": alphabar_t,
        "sqrtab": sqrtab,
        "sqrtmab": sqrtmab,
        "mab_over_sqrtmab": mab_over_sqrtmab_inv,
    }


class DDPM(nn.Module):
    def __init__(self, nn_model, betas, n_T, device="cpu", drop_prob=0.1):
        super().__init__()
        self.nn_model = nn_model.to(device)
        for k, v in ddpm_schedules(betas[0], betas[1], n_T).items():
            self.register_buffer(k, v)
        self.n_T = n_T
        self.device = device
        self.drop_prob = drop_prob
        self.loss_mse = nn.MSELoss()


# ---------------------------------------------------------------- helpers
DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
          torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def save_safetensors(path, tensors, metadata=None):
    """The safetensors layout by hand: 8-byte LE header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        # numpy has no bfloat16: write its bits through a same-sized integer view.
        data = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def randomise(model, gen):
    """Non-trivial BatchNorm / GroupNorm weights and biases (PyTorch initialises them to 1 and 0)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


def make_model_fixture(out, name, in_channels, n_feat, n_classes, height, width, betas, n_T, batch, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = ContextUnet(in_channels, n_feat, n_classes, height, width)
    ddpm = DDPM(net, betas, n_T)
    randomise(net, gen)
    net.train()
    # Cumulative averages (momentum None) make the running statistics those of the data, so that activations keep
    # their scale in eval mode; with the default momentum the untrained network shrinks them layer by layer until
    # the label hardly changes the output, and a fixture could not tell right label handling from wrong.
    batch_norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in batch_norms:
        m.momentum = None
    with torch.no_grad():
        for _ in range(3):
            x = torch.rand(8, in_channels, height, width, generator=gen) * 2 - 0.5
            c = torch.randint(0, n_classes, (8,), generator=gen)
            t = torch.randint(1, n_T + 1, (8,), generator=gen).float() / n_T
            mask = torch.bernoulli(torch.full((8,), 0.1), generator=gen)
            net(x, c, t.view(-1, 1, 1, 1), mask)
    for m in batch_norms:
        m.momentum = 0.1
    net.eval()
    x = torch.randn(batch, in_channels, height, width, generator=gen)
    c = torch.randint(0, n_classes, (batch,), generator=gen)
    t = (torch.randint(1, n_T + 1, (batch,), generator=gen).float() / n_T).view(-1, 1, 1, 1)
    mask = torch.zeros(batch)
    mask[1::3] = 1.0  # some labels dropped (unconditional)
    with torch.no_grad():
        eps = net(x, c, t, mask)
    torch.save(ddpm.state_dict(), os.path.join(out, name + ".pth"))
    meta = {
        "in_channels": str(in_channels), "n_feat": str(n_feat), "n_classes": str(n_classes),
        "height": str(height), "width": str(width), "n_T": str(n_T), "beta1": repr(betas[0]), "beta2": repr(betas[1]),
        "torch_version": torch.__version__,
    }
    save_safetensors(os.path.join(out, name + ".io.safetensors"),
                     {"x": x, "c": c, "t": t, "mask": mask, "eps": eps}, meta)
    return ddpm


class Payload:
    """Pickles as a call of os.system (posix.system on Linux): executed by pickle.load, refused by our reader."""
    def __reduce__(self):
        return (os.system, ("touch " + PAYLOAD_MARKER,))


class EvalPayload:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch " + PAYLOAD_MARKER + "')",))


def write_zip_checkpoint(path, data_pkl, storages=None):
    """A zip laid out like torch.save's: archive/data.pkl, archive/version, archive/data/<key>."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/version", "3\n")
        for key, blob in (storages or {}).items():
            z.writestr("archive/data/" + key, blob)


def main():
    # One thread: multi-threaded reductions can differ in the last bit from run to run (BatchNorm statistics).
    torch.set_num_threads(1)
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "..", "DiffusionClassifier.Core.Tests", "TestData", "pytorch")
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else default_out)
    os.makedirs(out, exist_ok=True)

    # The reference MNIST layout and schedule at a small width.
    make_model_fixture(out, "reference_f16", 1, 16, 10, 28, 28, (1e-4, 0.02), 400, batch=6, seed=20261129)
    # Another shape (3 channels, 5 classes, 16x12 images) and schedule, to check that import infers them.
    small = make_model_fixture(out, "small_c3_f8", 3, 8, 5, 16, 12, (2e-4, 0.03), 50, batch=4, seed=7)

    # One tensor of the wrong shape.
    sd = small.state_dict()
    sd["nn_model.down2.model.0.conv2.0.weight"] = torch.zeros(16, 16, 3, 1)
    torch.save(sd, os.path.join(out, "wrong_shape.pth"))

    # Hostile pickles: a bare one, one inside a valid zip layout, one hidden in a state dict value.
    hostile = pickle.dumps(Payload(), protocol=2)
    with open(os.path.join(out, "hostile_raw.pkl"), "wb") as f:
        f.write(hostile)
    write_zip_checkpoint(os.path.join(out, "hostile_zip.pth"), hostile)
    buf = io.BytesIO()
    torch.save({"nn_model.init_conv.conv1.0.bias": torch.arange(4, dtype=torch.float32), "sqrtab": EvalPayload()}, buf)
    with open(os.path.join(out, "hostile_nested.pth"), "wb") as f:
        f.write(buf.getvalue())

    # Every dtype, strided views into shared storages, a scalar and an empty tensor.
    gen = torch.Generator().manual_seed(11)
    base = torch.randn(5, 6, generator=gen)
    wide = torch.randn(4, 8, dtype=torch.float64, generator=gen)
    views = {
        "transposed": base.t(),
        "sliced": base[1:, ::2],
        "offset_row": base[3],
        "f64_view": wide[:, 2:7:2],
        "f16": torch.randn(3, 4, generator=gen).half(),
        "bf16": torch.randn(7, generator=gen).bfloat16(),
        "i64": torch.randint(-2**40, 2**40, (2, 3), generator=gen),
        "i32": torch.randint(-2**30, 2**30, (5,), generator=gen, dtype=torch.int32),
        "i16": torch.randint(-2**14, 2**14, (2, 2), generator=gen, dtype=torch.int16),
        "i8": torch.randint(-128, 127, (6,), generator=gen, dtype=torch.int8),
        "u8": torch.randint(0, 255, (3, 1), generator=gen, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True, True]),
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 3),
        "tied_a": base,
        "tied_b": base,
    }
    torch.save(views, os.path.join(out, "views.pth"))
    save_safetensors(os.path.join(out, "views.expected.safetensors"), {k: v.contiguous() for k, v in views.items()})

    # The legacy (pre-1.6) serialisation.
    torch.save({"w": torch.ones(2, 3)}, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)

    assert not os.path.exists(PAYLOAD_MARKER), "a payload ran while writing the fixture"
    for name in sorted(os.listdir(out)):
        print(f"{os.path.getsize(os.path.join(out, name)):>8}  {name}")


if __name__ == "__main__":
    main()
