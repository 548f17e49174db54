namespace DiffusionClassifier.Classification;

/// <summary>
/// A sequential early exit for <see cref="BayesClassifier"/>: at a few looks during the n samples, an image stops as
/// soon as a paired t-test on the per-sample error differences says the leading class beats every other surviving
/// class, at an overall error rate of at most <see cref="ErrorRate"/> (docs/early-exit.md). Immutable and thread-safe.
/// </summary>
/// <remarks>
/// <para>At a look after m samples (every surviving class has received all m, at the same (t, eps)), let a be the
/// survivor with the lowest error sum and, for every other survivor b, d_j = e_b(j) - e_a(j). The image stops when
/// for every b the t statistic mean(d) / (sd(d) / sqrt(m)) exceeds the Student t quantile with m - 1 degrees of
/// freedom at 1 - ErrorRate / (L (K - 1)), where L is the number of looks below n and K the number of classes: a
/// Bonferroni bound over the looks and the rivals, so the chance that the exit picks another class than the
/// estimator's limit stays below <see cref="ErrorRate"/> whatever the stopping time. The looks do not change the draw
/// (only pruning stages are its boundaries), so an image that is not stopped gets exactly the samples, and the label,
/// it gets without the exit; the stratified sample's variance overstates the variance of its mean, which keeps the
/// test conservative.</para>
/// <para>Looks happen after <see cref="FirstLook"/> samples and then at counts growing by <see cref="LookGrowth"/>
/// (rounded, at least one more each time), below n. Pruning still applies at its own stage boundaries.</para>
/// </remarks>
public sealed record EarlyExit
{
    /// <summary>The overall probability that the exit decides differently from spending all samples would in the limit. Default 0.01.</summary>
    public double ErrorRate { get; init; } = 0.01;

    /// <summary>The first look, in samples (at least 2: the test needs a variance). Default 4.</summary>
    public int FirstLook { get; init; } = 4;

    /// <summary>Each look's sample count is the previous one times this, rounded (at least one more). Default 1.5.</summary>
    public double LookGrowth { get; init; } = 1.5;

    /// <summary>Throws when a setting is out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="ErrorRate"/> is not in (0, 0.5),
    /// <see cref="FirstLook"/> is below 2 or <see cref="LookGrowth"/> is not a finite number of at least 1.</exception>
    public void Validate()
    {
        if (!(ErrorRate > 0 && ErrorRate < 0.5))
            throw new ArgumentOutOfRangeException(nameof(ErrorRate), ErrorRate, "ErrorRate must lie in (0, 0.5).");
        if (FirstLook < 2)
            throw new ArgumentOutOfRangeException(nameof(FirstLook), FirstLook, "FirstLook must be at least 2 samples.");
        if (!(LookGrowth >= 1 && double.IsFinite(LookGrowth)))
            throw new ArgumentOutOfRangeException(nameof(LookGrowth), LookGrowth, "LookGrowth must be a finite number of at least 1.");
    }

    /// <summary>The sample counts after which the test runs for <paramref name="n"/> samples: ascending, below n.</summary>
    /// <param name="n">Samples per class; at least 1.</param>
    public IReadOnlyList<int> Looks(int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        var looks = new List<int>();
        for (double m = FirstLook; m < n; m = Math.Max(Math.Round(m * LookGrowth, MidpointRounding.AwayFromZero), m + 1))
            looks.Add((int)m);
        return looks;
    }

    /// <summary>The t statistic every rival must exceed at a look after <paramref name="samples"/> samples.</summary>
    /// <param name="samples">m, at least 2.</param>
    /// <param name="looks">L, the number of looks for this n (at least 1).</param>
    /// <param name="classes">K, at least 2.</param>
    internal double CriticalValue(int samples, int looks, int classes) =>
        StudentT.Quantile(1 - ErrorRate / (looks * (double)(classes - 1)), samples - 1);

    /// <inheritdoc />
    public override string ToString() =>
        FormattableString.Invariant($"error rate {ErrorRate:G4}, looks from {FirstLook} x{LookGrowth:0.###}");
}
