using DiffusionClassifier.Classification;

namespace DiffusionClassifier.Benchmarks;

/// <summary>The <see cref="BayesClassifier"/> settings the benchmarks compare.</summary>
public enum Estimator
{
    /// <summary><see cref="BayesClassifierOptions.Reference"/>: random t, full network per class, no pruning.</summary>
    Reference,
    /// <summary><see cref="BayesClassifierOptions.Default"/>: stratified t, shared trunk, pruning in stages.</summary>
    Default,
    /// <summary><see cref="Default"/> plus the sequential early exit at error rate 0.05 (docs/early-exit.md).</summary>
    EarlyExit,
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
        Estimator.EarlyExit => BayesClassifierOptions.Default with { EarlyExit = new Classification.EarlyExit { ErrorRate = 0.05 } },
        _ => throw new ArgumentOutOfRangeException(nameof(estimator), estimator, "Unknown estimator."),
    };
}
