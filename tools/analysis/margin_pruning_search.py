"""Replays margin pruning (PruningStage.Margin) with the early exit on per-sample losses from `evaluate --sample-errors`.

Usage: python3 tools/analysis/margin_pruning_search.py FILE.jsonl[.gz] [max_cost]
Replays the grid of docs/early-exit.md ("second attempt: pruning by a margin") at the file's n (20): a margin after
2 samples, a margin after 4 (or none), keep 2 after 10, the default exit (0.05:4:1.5) with the library's comparison
count (StagedEvaluation, EarlyExit.Comparisons). Prints every setting, then the candidates (replayed cost at most
max_cost, default 36) ranked by net labels lost against the replayed default without the exit, then by cost.
The FILE must have been recorded with a look after every sample (every prefix evenly spread over t); the run's own
draw, stratified at the pruning boundaries, differs slightly, so the figures are estimates.
"""
import math, sys
from early_exit_simulation import load, looks_of, tq

K = 10


def comparisons(looks, stages):
    # As EarlyExit.Comparisons: at each look, the keep of the stages up to it (an upper bound with margins), less 1.
    total = 0
    for m in looks:
        total += max(0, min([k for b, k, _ in stages if b <= m] + [K]) - 1)
    return max(1, total)


def run(item, stages, exit):
    """stages: [(cumulative samples, keep, margin or None)]; exit: (rate, first, growth) or None.
    Returns (label, noise predictions)."""
    n = item['n']; E = item['errors']
    looks = [] if exit is None else looks_of(n, exit[1], exit[2])
    crit = {} if exit is None else {m: tq(1 - exit[0] / comparisons(looks, stages), m - 1) for m in looks}
    byend = {b: (k, mg) for b, k, mg in stages}
    bounds = sorted(set(byend) | set(looks))
    surv = list(range(K)); ev = 0; start = 0
    for b in bounds + [n]:
        ev += (b - start) * len(surv); start = b
        if b == n:
            break
        s = {c: sum(E[j][c] for j in range(b)) for c in surv}
        if b in byend:
            keep, margin = byend[b]
            ranked = sorted(surv, key=lambda c: (s[c], c)); a = ranked[0]
            logs = {c: sum(math.log(max(E[j][c], 1e-300)) for j in range(b)) for c in surv}
            surv = sorted(c for c in ranked[:keep] if margin is None or (logs[c] - logs[a]) / b <= margin)
        if len(surv) == 1:
            break
        if b in crit:
            a = min(surv, key=lambda c: (s[c], c)); ok = True
            for c in surv:
                if c == a:
                    continue
                d = [E[j][c] - E[j][a] for j in range(b)]; mu = sum(d) / b
                se = math.sqrt(max(0.0, sum((x - mu) ** 2 for x in d) / (b - 1)) / b)
                if not (mu > 0 and (se == 0 or mu / se > crit[b])):
                    ok = False; break
            if ok:
                break
    s = {c: sum(E[j][c] for j in range(start)) for c in surv}
    return min(surv, key=lambda c: (s[c], c)), ev


def main():
    items = load(sys.argv[1])
    max_cost = float(sys.argv[2]) if len(sys.argv) > 2 else 36.0
    n = items[0]['n']
    default = [run(it, [(4, 3, None), (10, 2, None)], None) for it in items]
    acc0 = sum(r[0] == it['label'] for r, it in zip(default, items)) / len(items)
    print(f"{len(items)} items, n = {n}; default without the exit: {acc0:.2%}, 78.0 noise predictions")
    rows = []
    for m1 in (0.2, 0.3, 0.4, 0.5):
        for m2 in (None, 0.1, 0.15, 0.2):
            stages = [(2, 10, m1)] + ([(4, 10, m2)] if m2 is not None else []) + [(10, 2, None)]
            res = [run(it, stages, (0.05, 4, 1.5)) for it in items]
            gained = sum(r[0] == it['label'] != d[0] for r, d, it in zip(res, default, items))
            lost = sum(d[0] == it['label'] != r[0] for r, d, it in zip(res, default, items))
            cost = sum(r[1] for r in res) / len(items)
            spec = f"0.1:10:{m1}" + (f",0.2:10:{m2}" if m2 is not None else "") + ",0.5:2"
            rows.append((spec, gained, lost, cost))
            print(f"{spec:28s} gained {gained:2d} lost {lost:2d} noise predictions {cost:5.1f}", flush=True)
    candidates = sorted((r for r in rows if r[3] <= max_cost), key=lambda r: (r[2] - r[1], r[2], r[3]))
    print(f"candidates (cost <= {max_cost}), best first:")
    for spec, gained, lost, cost in candidates:
        print(f"  --pruning {spec}: net lost {lost - gained}, lost {lost}, {cost:.1f}")


if __name__ == "__main__":
    main()
