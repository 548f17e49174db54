namespace DiffusionClassifier.Classification;

/// <summary>
/// How one classification call spends its samples, resolved once from the options and n: the pruning stages, the
/// early-exit looks, and the boundaries of the stratified draw.
/// </summary>
/// <remarks>
/// Only the pruning stages are boundaries of the draw, so turning the early exit on never changes which samples an
/// image gets: an image that is not stopped gets the same result as without the exit. Making the looks boundaries too
/// (as a first version did) re-ordered the timesteps inside the first pruning stages and cost 0.42 points on the test
/// set (docs/early-exit.md).
/// </remarks>
/// <param name="Samples">n.</param>
/// <param name="Stages">Pruning boundaries below n with the classes kept (<see cref="PruningSchedule.ResolveBoundaries"/>).</param>
/// <param name="Looks">Sample counts below n at which the early exit tests (<see cref="EarlyExit.Looks"/>).</param>
/// <param name="Boundaries">The stage ends, ascending: where the stratified draw must be evenly spread.</param>
internal sealed record SamplingPlan(int Samples, IReadOnlyList<PruningBoundary> Stages, IReadOnlyList<int> Looks,
    IReadOnlyList<int> Boundaries)
{
    /// <summary>Resolves the plan of <paramref name="options"/> at <paramref name="n"/> samples.</summary>
    public static SamplingPlan Resolve(BayesClassifierOptions options, int n)
    {
        ArgumentNullException.ThrowIfNull(options);
        var stages = options.Pruning?.ResolveBoundaries(n) ?? [];
        var looks = options.EarlyExit?.Looks(n) ?? [];
        return new SamplingPlan(n, stages, looks, stages.Select(s => s.CumulativeSamples).ToArray());
    }
}
