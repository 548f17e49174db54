"""Fits the scale s of softmax(-s * e) to single-sample errors written by `evaluate --sample-errors`.

Usage: python3 tools/analysis/single_sample_scale.py FILE.jsonl[.gz]
Each (image, t) sample is scored alone: e_c is the summed squared error of the noise predicted with label c. Prints the
mean negative log-likelihood of the true label over a grid of s, the best s, and the single-sample accuracy per band of
t. Pure Python (no numpy). Used for the default of TrainingOptions.DiscriminativeScale; see docs/training.md.
"""
import math, sys
from sample_errors import read

samples = []  # (t, label, errors)
for d in read(sys.argv[1]):
    for t, e in zip(d['timesteps'], d['errors']):
        samples.append((t, d['label'], e))

def nll(s, subset):
    total = 0.0
    for _, y, e in subset:
        z = [-s * v for v in e]
        m = max(z)
        total -= z[y] - m - math.log(sum(math.exp(v - m) for v in z))
    return total / len(subset)

grid = [0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0]
print(f"{len(samples)} samples; ln(classes) = {math.log(len(samples[0][2])):.4f}")
print("scale  mean NLL")
scores = [(nll(s, samples), s) for s in grid]
for v, s in scores:
    print(f"{s:5.2f}  {v:.4f}")
print(f"best scale on the grid: {min(scores)[1]}")
print("t band     samples  accuracy  NLL at the best scale")
best = min(scores)[1]
for lo in range(0, 400, 50):
    band = [x for x in samples if lo <= x[0] < lo + 50]
    if band:
        acc = sum(1 for _, y, e in band if min(range(len(e)), key=e.__getitem__) == y) / len(band)
        print(f"[{lo:3},{lo + 50:3})  {len(band):7}  {acc:8.3f}  {nll(best, band):.3f}")
