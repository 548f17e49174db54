using DiffusionClassifier.Classification;

namespace DiffusionClassifier.Benchmarks;

/// <summary>The <see cref="BayesClassifier"/> settings the benchmarks compare.</summary>
public enum Estimator
{
    /// <summary><see cref="BayesClassifierOptions.Reference"/>: random t, full network per class, no pruning.</summary>
    Reference,
    /// <summary><see cref="BayesClassifierOptions.Default"/>: stratified t, shared trunk, pruning in stages and the
    /// sequential early exit at error rate 0.05 (docs/early-exit.md; on by default since 2026-12-07).</summary>
    Default,
    /// <summary><see cref="Default"/> without the early exit: every image gets the planned work (the default before
    /// 2026-12-07).</summary>
    NoExit,
}

/// <summary>Maps <see cref="Estimator"/> to options.</summary>
public static class Estimators
{
    /// <summary>The options of an estimator.</summary>
    /// <param name="estimator">The estimator.</param>
    public static BayesClassifierOptions Options(this Estimator estimator) => estimator switch
    {
        Estimator.Reference => BayesClassifierOptions.Reference,
        Estimator.Default => BayesClassifierOptions.Default,
        Estimator.NoExit => BayesClassifierOptions.Default with { EarlyExit = null },
        _ => throw new ArgumentOutOfRangeException(nameof(estimator), estimator, "Unknown estimator."),
    };
}
