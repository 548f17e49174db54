namespace DiffusionClassifier.Classification;

/// <summary>
/// How one classification call spends its samples, resolved once from the options and n: the pruning stages, the
/// early-exit looks, and the boundaries of the stratified draw (both kinds, so every prefix that ends at one is spread
/// over 1..T).
/// </summary>
/// <param name="Samples">n.</param>
/// <param name="Stages">Pruning boundaries below n with the classes kept (<see cref="PruningSchedule.Resolve"/>).</param>
/// <param name="Looks">Sample counts below n at which the early exit tests (<see cref="EarlyExit.Looks"/>).</param>
/// <param name="Boundaries">The union of the stage ends and the looks, ascending.</param>
internal sealed record SamplingPlan(int Samples, IReadOnlyList<(int CumulativeSamples, int Keep)> Stages, IReadOnlyList<int> Looks,
    IReadOnlyList<int> Boundaries)
{
    /// <summary>Resolves the plan of <paramref name="options"/> at <paramref name="n"/> samples.</summary>
    public static SamplingPlan Resolve(BayesClassifierOptions options, int n)
    {
        ArgumentNullException.ThrowIfNull(options);
        var stages = options.Pruning?.Resolve(n) ?? [];
        var looks = options.EarlyExit?.Looks(n) ?? [];
        return new SamplingPlan(n, stages, looks, stages.Select(s => s.CumulativeSamples).Union(looks).Order().ToArray());
    }
}
