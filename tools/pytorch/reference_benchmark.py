#!/usr/bin/python3
"""Speed of the PyTorch reference on this machine: the network forward and the reference classifier.

Written from docs/algorithm.md (section 1: the network ContextUnet with its reference forward; section 5: the reference
Monte Carlo estimator). Random weights: speed does not depend on them. Run with Debian 12's PyTorch 1.13:

    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 tools/pytorch/reference_benchmark.py [options]

Without OPENBLAS_CORETYPE=SkylakeX (libopenblas0 installed) the matmul path runs at a fraction of its speed on
these CPUs; the convolutions go through oneDNN (torch.backends.mkldnn) either way.

Timing method (identical in DiffusionClassifier.Benchmarks' `compare` mode): for each configuration, untimed
warm-up runs (at least `--warmup` runs and at least `--warmup-seconds` of them), then `--repeats` timed runs
(time.perf_counter around one run), and the median of the timed runs; the process CPU time of each run
(time.process_time) is recorded too and its median reported. One run is: one forward of one chunk (network), one 2048x2048 float32 product (matmul), or the classification of
one image (estimator).

The reference estimator (docs/algorithm.md section 5), per image: N pairs (t ~ U{1..T}, eps ~ N(0, I)); x_t =
sqrtab[t] x + sqrtmab[t] eps; every pair is scored for all 10 classes (the same pair for every class); the error is
the per-image mean squared error between eps and the prediction, averaged over the N pairs; the prediction is the
argmin. The N*10 rows of one image are run through the network in chunks of `--estimator-chunk` rows (default 100:
two forwards per image at N = 20; one batch of all N*10 rows is `--estimator-chunk 0`).

Output: a markdown report on stdout, or with `--json PATH` ('-' for stdout) the raw numbers as JSON.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

N_T = 400
BETAS = (1e-4, 0.02)

from reference_model import ContextUnet  # noqa: E402  (the sibling module)


def schedule(beta1, beta2, n_t):
    """sqrtab and sqrtmab of docs/algorithm.md section 2 (T+1 entries, indexed 0..T)."""
    beta_t = (beta2 - beta1) * torch.arange(0, n_t + 1, dtype=torch.float32) / n_t + beta1
    alphabar_t = torch.cumsum(torch.log(1 - beta_t), dim=0).exp()
    return torch.sqrt(alphabar_t), torch.sqrt(1 - alphabar_t)


def make_model(features, seed=1):
    torch.manual_seed(seed)
    return ContextUnet(1, features, 10).eval()


# ---------------------------------------------------------------- the reference estimator (docs/algorithm.md section 5)
def classify_reference(model, x0, n, chunk, sqrtab, sqrtmab, gen):
    """Predicted label of one image x0 [1, 1, 28, 28] from N paired (t, eps) samples scored for every class."""
    k = model.n_classes
    ts = torch.randint(1, N_T + 1, (n,), generator=gen)
    eps = torch.randn((n,) + tuple(x0.shape[1:]), generator=gen)
    x_t = sqrtab[ts].view(-1, 1, 1, 1) * x0 + sqrtmab[ts].view(-1, 1, 1, 1) * eps
    # Rows are sample-major, class-minor: row s*k + c is pair s scored for class c.
    rows = x_t.repeat_interleave(k, 0)
    targets = eps.repeat_interleave(k, 0)
    labels = torch.arange(k).repeat(n)
    t_rows = (ts.float() / N_T).repeat_interleave(k).view(-1, 1, 1, 1)
    mask = torch.zeros(n * k)
    step = chunk if chunk > 0 else n * k
    errors = []
    for i in range(0, n * k, step):
        pred = model(rows[i:i + step], labels[i:i + step], t_rows[i:i + step], mask[i:i + step])
        errors.append(((pred - targets[i:i + step]) ** 2).mean(dim=(1, 2, 3)))
    score = torch.cat(errors).view(n, k).mean(0)
    return int(score.argmin())


# ---------------------------------------------------------------- timing
def measure(run, warmup, repeats, warmup_seconds=0.0):
    """Median wall seconds of `repeats` timed runs after the warm-up (at least `warmup` runs and at least
    `warmup_seconds` of them), and the median process CPU seconds (user + system, all threads) of the same runs,
    with all samples."""
    start = time.perf_counter()
    i = 0
    while i < warmup or time.perf_counter() - start < warmup_seconds:
        run()
        i += 1
    samples, cpu = [], []
    for _ in range(repeats):
        cpu_start = time.process_time()
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return {"median_s": statistics.median(samples), "samples_s": samples,
            "cpu_median_s": statistics.median(cpu), "cpu_samples_s": cpu}


def with_rates(m, images, flops):
    """Adds the same derived fields as the .NET side: images and GFLOP per wall second and per CPU second."""
    m["gflops"] = flops / m["median_s"] / 1e9
    m["gflops_per_cpu_s"] = flops / m["cpu_median_s"] / 1e9
    if images > 0:
        m["images_per_s"] = images / m["median_s"]
        m["images_per_cpu_s"] = images / m["cpu_median_s"]
    return m


def forward_flops(f, c=1, k=10, h=28, w=28):
    """FLOPs of one forward for one image from the layer shapes (convolutions, transposed convolutions, linear)."""
    hw, hw2, hw4 = h * w, h * w / 4, h * w / 16
    conv3 = lambda cin, cout, px: 2 * 9 * cin * cout * px
    embed = lambda i, e: 2 * (i * e + e * e)
    trunk = conv3(c, f, hw) + 3 * conv3(f, f, hw) + conv3(f, 2 * f, hw2) + conv3(2 * f, 2 * f, hw2) + 2 * (2 * f) * (2 * f) * hw4
    head = (embed(1, 2 * f) + embed(1, f) + embed(k, 2 * f) + embed(k, f)
            + 2 * (4 * f) * f * hw2 + 4 * conv3(f, f, hw2)
            + 2 * (2 * f) * f * hw + 4 * conv3(f, f, hw)
            + conv3(2 * f, f, hw) + conv3(f, c, hw))
    return trunk + head


def load_average():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return None


def parse_list(text):
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", default="32,64,128", help="n_feat values (default 32,64,128)")
    p.add_argument("--chunks", default="10,32,64,128", help="forward chunk sizes (default 10,32,64,128)")
    p.add_argument("--n", type=int, default=20, help="Monte Carlo samples N of the estimator (default 20)")
    p.add_argument("--estimator-widths", default=None, help="widths for the estimator (default: --widths)")
    p.add_argument("--estimator-chunk", type=int, default=100, help="rows per forward in the estimator; 0 = all N*10")
    p.add_argument("--matmul-size", type=int, default=2048)
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first, at least (default 2)")
    p.add_argument("--warmup-seconds", type=float, default=3.0, help="warm up for at least this long (default 3)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = os.cpu_count()")
    p.add_argument("--skip", default="", help="comma list of parts to skip: matmul,forward,estimator")
    p.add_argument("--json", default=None, help="write JSON to this path ('-' = stdout) instead of markdown")
    args = p.parse_args(argv)

    threads = args.threads if args.threads > 0 else os.cpu_count()
    torch.set_num_threads(threads)
    skip = set(s.strip() for s in args.skip.split(",") if s.strip())
    widths = parse_list(args.widths)
    est_widths = parse_list(args.estimator_widths) if args.estimator_widths else widths
    result = {
        "implementation": "pytorch",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "warmup": args.warmup,
        "warmup_seconds": args.warmup_seconds,
        "repeats": args.repeats,
        "load_average_start": load_average(),
        "matmul": None,
        "forward": [],
        "estimator": [],
    }
    gen = torch.Generator().manual_seed(2)

    with torch.inference_mode():
        if "matmul" not in skip:
            n = args.matmul_size
            a = torch.randn(n, n, generator=gen)
            b = torch.randn(n, n, generator=gen)
            m = with_rates(measure(lambda: torch.mm(a, b), args.warmup, args.repeats, args.warmup_seconds), 0, 2.0 * n ** 3)
            m["size"] = n
            result["matmul"] = m
            del a, b

        if "forward" not in skip:
            for f in widths:
                model = make_model(f)
                for chunk in parse_list(args.chunks):
                    x = torch.rand(chunk, 1, 28, 28, generator=gen)
                    c = torch.randint(0, 10, (chunk,), generator=gen)
                    t = (torch.randint(1, N_T + 1, (chunk,), generator=gen).float() / N_T).view(-1, 1, 1, 1)
                    mask = torch.zeros(chunk)
                    m = with_rates(measure(lambda: model(x, c, t, mask), args.warmup, args.repeats, args.warmup_seconds), chunk, chunk * forward_flops(f))
                    m.update({"features": f, "chunk": chunk})
                    result["forward"].append(m)
                del model

        if "estimator" not in skip:
            sqrtab, sqrtmab = schedule(BETAS[0], BETAS[1], N_T)
            for f in est_widths:
                model = make_model(f)
                x0 = torch.rand(1, 1, 28, 28, generator=gen)
                m = measure(lambda: classify_reference(model, x0, args.n, args.estimator_chunk, sqrtab, sqrtmab, gen),
                            max(1, args.warmup // 2), args.repeats, args.warmup_seconds)
                m = with_rates(m, 1, args.n * 10 * forward_flops(f))
                m.update({"features": f, "n": args.n, "chunk": args.estimator_chunk, "evaluations_per_image": args.n * 10})
                result["estimator"].append(m)
                del model

    result["load_average_end"] = load_average()
    if args.json:
        text = json.dumps(result, indent=1)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as fh:
                fh.write(text + "\n")
        return 0

    print(f"PyTorch {result['torch']}, {result['threads']} threads, mkldnn {result['mkldnn']}, "
          f"OPENBLAS_CORETYPE={result['openblas_coretype']}, load average {result['load_average_start']} -> {result['load_average_end']}")
    if result["matmul"]:
        m = result["matmul"]
        print(f"\nfloat32 {m['size']}x{m['size']} matmul: {m['gflops']:.1f} GFLOP/s, {m['gflops_per_cpu_s']:.1f} GFLOP per CPU-s")
    if result["forward"]:
        print("\n| F | chunk | images/s | images/CPU-s | GFLOP/s | median ms |\n|---:|---:|---:|---:|---:|---:|")
        for r in result["forward"]:
            print(f"| {r['features']} | {r['chunk']} | {r['images_per_s']:.1f} | {r['images_per_cpu_s']:.1f} | {r['gflops']:.1f} | {r['median_s'] * 1e3:.1f} |")
    if result["estimator"]:
        print(f"\n| F | N | rows/forward | images/s | images/CPU-s | median s |\n|---:|---:|---:|---:|---:|---:|")
        for r in result["estimator"]:
            print(f"| {r['features']} | {r['n']} | {r['chunk'] or r['n'] * 10} | {r['images_per_s']:.3f} | {r['images_per_cpu_s']:.3f} | {r['median_s']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
