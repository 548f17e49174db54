namespace DiffusionClassifier.Cli.Evaluation;

/// <summary>
/// One evaluation run (one run key and one N in one cache file) compared with a baseline run on the items both
/// classified: accuracies, the discordant pairs and McNemar's exact test, label agreement and cost.
/// </summary>
/// <param name="Name">How the run is shown: file, N and run key.</param>
/// <param name="Items">Items classified by both runs.</param>
/// <param name="Correct">Items this run got right, among those.</param>
/// <param name="BaselineCorrect">Items the baseline got right, among those.</param>
/// <param name="OnlyThisCorrect">Items this run got right and the baseline wrong.</param>
/// <param name="OnlyBaselineCorrect">Items the baseline got right and this run wrong.</param>
/// <param name="SameLabel">Items where both runs predicted the same label.</param>
/// <param name="McNemarP">Two-sided exact McNemar p-value of the discordant pairs (1 when there are none).</param>
/// <param name="EvaluationsPerImage">This run's mean noise predictions per item, on the common items.</param>
/// <param name="FullEquivalentsPerImage">This run's mean cost in full forwards per item, on the common items.</param>
/// <param name="MedianSecondsPerImage">This run's median wall time per item, on the common items.</param>
internal sealed record RunComparison(
    string Name, int Items, int Correct, int BaselineCorrect, int OnlyThisCorrect, int OnlyBaselineCorrect, int SameLabel,
    double McNemarP, double EvaluationsPerImage, double FullEquivalentsPerImage, double MedianSecondsPerImage)
{
    /// <summary>This run's accuracy on the common items.</summary>
    public double Accuracy => Items == 0 ? 0 : (double)Correct / Items;

    /// <summary>The baseline's accuracy on the common items.</summary>
    public double BaselineAccuracy => Items == 0 ? 0 : (double)BaselineCorrect / Items;

    /// <summary>Compares <paramref name="run"/> with <paramref name="baseline"/> on the items (indices) both hold.</summary>
    /// <param name="name">The run's name.</param>
    /// <param name="baseline">The baseline's results, at most one per item.</param>
    /// <param name="run">The run's results, at most one per item.</param>
    /// <exception cref="ArgumentException">The two runs disagree on an item's true label (different data).</exception>
    public static RunComparison Compare(string name, IReadOnlyCollection<ImageResult> baseline, IReadOnlyCollection<ImageResult> run)
    {
        var byIndex = baseline.ToDictionary(r => r.Index);
        var pairs = run.Where(r => byIndex.ContainsKey(r.Index)).Select(r => (Base: byIndex[r.Index], Run: r)).ToList();
        foreach (var (b, r) in pairs)
        {
            if (b.Label != r.Label)
                throw new ArgumentException($"Run '{name}' gives item {r.Index} the true label {r.Label}, the baseline {b.Label}: they were not made on the same data.", nameof(run));
        }
        int onlyThis = pairs.Count(p => p.Run.Correct && !p.Base.Correct);
        int onlyBase = pairs.Count(p => !p.Run.Correct && p.Base.Correct);
        return new RunComparison(
            name, pairs.Count, pairs.Count(p => p.Run.Correct), pairs.Count(p => p.Base.Correct), onlyThis, onlyBase,
            pairs.Count(p => p.Run.Predicted == p.Base.Predicted), McNemarExactP(onlyThis, onlyBase),
            pairs.Count == 0 ? 0 : pairs.Average(p => (double)p.Run.Evaluations),
            pairs.Count == 0 ? 0 : pairs.Average(p => p.Run.FullEquivalents),
            Statistics.Median(pairs.Select(p => p.Run.Seconds)));
    }

    /// <summary>
    /// Two-sided exact McNemar test: under "both runs are equally accurate" each of the b + c discordant items is
    /// equally likely to favour either run, so p = min(1, 2 P(Binomial(b + c, 1/2) &lt;= min(b, c))).
    /// </summary>
    public static double McNemarExactP(int b, int c)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(b);
        ArgumentOutOfRangeException.ThrowIfNegative(c);
        int n = b + c, k = Math.Min(b, c);
        if (n == 0)
            return 1;
        // Sum the binomial probabilities in log space: 2^-n underflows for n > 1074.
        double logPmf = -n * Math.Log(2), tail = 0;
        for (int i = 0; i <= k; i++)
        {
            tail += Math.Exp(logPmf);
            logPmf += Math.Log((double)(n - i) / (i + 1));
        }
        return Math.Min(1, 2 * tail);
    }
}
