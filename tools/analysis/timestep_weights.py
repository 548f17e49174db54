"""Fits per-band timestep weights w_b of the classifier's score on held-out folds and compares them with the uniform sum.

Usage: python3 tools/analysis/timestep_weights.py FILE.jsonl[.gz] [--folds K] [--band WIDTH] [--metric l2|sqrt]
FILE comes from `evaluate --sample-errors` (every class's summed squared error at every (t, eps) sample of an image).
The score of class c is sum_b w_b * sum_{t in band b} e_c(t); uniform weights are today's estimator (without pruning).
The weights (non-negative, one per band of WIDTH timesteps) and a logit scale are fitted by gradient descent on the
multinomial negative log-likelihood of K-1 folds and scored on the held-out fold, so every image is predicted by
weights that never saw it. Prints the fitted weights, the held-out accuracy of both, and McNemar's exact test.
With --metric sqrt each e_c(t) is replaced by its square root (an l2 norm instead of its square), as a cheap look at a
different per-sample metric from the same file. Pure Python (no numpy). See docs/training.md, estimator levers.
"""
import math, sys
from sample_errors import read


def arg(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


path = sys.argv[1]
folds = int(arg('--folds', '5'))
width = int(arg('--band', '50'))
metric = arg('--metric', 'l2')
T = 400
bands = (T + width - 1) // width

images = []  # (label, features[c][b])
for d in read(path):
    classes = len(d['errors'][0])
    f = [[0.0] * bands for _ in range(classes)]
    for t, e in zip(d['timesteps'], d['errors']):
        for c in range(classes):
            f[c][min(t // width, bands - 1)] += math.sqrt(e[c]) if metric == 'sqrt' else e[c]
    images.append((d['label'], f))
classes = len(images[0][1])


def scores(w, f):
    return [sum(wb * x for wb, x in zip(w, fc)) for fc in f]


def predict(w, f):
    s = scores(w, f)
    return min(range(classes), key=s.__getitem__)


def nll_and_grad(w, data):
    """Mean NLL of softmax(-score) and its gradient in w (the weights carry the scale)."""
    total, grad = 0.0, [0.0] * bands
    for y, f in data:
        z = [-v for v in scores(w, f)]
        m = max(z)
        ex = [math.exp(v - m) for v in z]
        s = sum(ex)
        total -= z[y] - m - math.log(s)
        for c in range(classes):
            p = ex[c] / s
            # d(-log p_y)/dz_c = p_c - [c = y]; dz_c/dw_b = -f[c][b]
            coeff = -(p - (1.0 if c == y else 0.0))
            for b in range(bands):
                grad[b] += coeff * f[c][b]
    n = len(data)
    return total / n, [g / n for g in grad]


def fit(data, uniform_only=False):
    """Projected gradient descent with a backtracking step; uniform_only fits the common scale alone."""
    w = [0.05] * bands
    step = 1e-3
    loss, g = nll_and_grad(w, data)
    for _ in range(300):
        if uniform_only:
            mean = sum(g) / bands
            g = [mean] * bands
        while True:
            trial = [max(0.0, wb - step * gb) for wb, gb in zip(w, g)]
            tl, tg = nll_and_grad(trial, data)
            if tl <= loss:
                w, loss, g = trial, tl, tg
                step *= 1.5
                break
            step *= 0.5
            if step < 1e-12:
                return w, loss
    return w, loss


def mcnemar(a_only, b_only):
    n, k = a_only + b_only, min(a_only, b_only)
    if n == 0:
        return 1.0
    p = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * p)


uniform = [1.0] * bands
right_u = [predict(uniform, f) == y for y, f in images]
right_w = [False] * len(images)
print(f"{len(images)} images, {classes} classes, bands of {width} timesteps, metric {metric}, {folds} folds")
for k in range(folds):
    train = [x for i, x in enumerate(images) if i % folds != k]
    w, loss = fit(train)
    wu, lossu = fit(train, uniform_only=True)
    peak = max(w)
    print(f"fold {k}: train NLL {loss:.4f} (uniform, scale only: {lossu:.4f}); weights / max: "
          + ' '.join(f'{x / peak:.2f}' for x in w))
    for i, (y, f) in enumerate(images):
        if i % folds == k:
            right_w[i] = predict(w, f) == y
n = len(images)
a_only = sum(1 for u, v in zip(right_u, right_w) if u and not v)
b_only = sum(1 for u, v in zip(right_u, right_w) if v and not u)
print(f"uniform: {sum(right_u)}/{n} = {sum(right_u) / n:.2%}")
print(f"fitted (held out): {sum(right_w)}/{n} = {sum(right_w) / n:.2%}")
print(f"right only with uniform / only with fitted: {a_only} / {b_only}, McNemar exact p = {mcnemar(a_only, b_only):.3f}")
