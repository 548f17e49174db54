namespace DiffusionClassifier.Classification;

/// <summary>
/// One stage of adaptive pruning: once every surviving class has been scored on the first
/// <see cref="SampleFraction"/> of the n samples, only the <see cref="Keep"/> classes with the lowest mean error
/// survive and receive further samples. With a <see cref="Margin"/>, a class survives only if it is also close to the
/// leader, so an easy image drops more classes than <see cref="Keep"/> says and a hard one keeps its rivals.
/// </summary>
/// <param name="SampleFraction">Fraction of n (in (0, 1]) after which the stage prunes; the sample count is
/// <c>round(SampleFraction * n)</c>, at least 1.</param>
/// <param name="Keep">How many classes survive the stage at most (at least 1).</param>
/// <remarks>Thread safety: an immutable record; safe to share.</remarks>
public sealed record PruningStage(double SampleFraction, int Keep)
{
    /// <summary>
    /// When set, a class also leaves at this stage if the mean over the shared samples of ln(e_c / e_leader) exceeds
    /// it: its errors are, in geometric mean, more than e^Margin times those of the leader (the class with the lowest
    /// error sum). The log ratio weighs every timestep alike, where error sums are dominated by the large errors of
    /// low t. Null (the default): keep the best <see cref="Keep"/> whatever their errors. At least 0 and finite.
    /// </summary>
    public double? Margin { get; init; }
}
