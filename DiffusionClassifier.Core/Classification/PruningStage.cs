namespace DiffusionClassifier.Classification;

/// <summary>
/// One stage of adaptive pruning: once every surviving class has been scored on the first
/// <see cref="SampleFraction"/> of the n samples, only the <see cref="Keep"/> classes with the lowest mean error
/// survive and receive further samples.
/// </summary>
/// <param name="SampleFraction">Fraction of n (in (0, 1]) after which the stage prunes; the sample count is
/// <c>round(SampleFraction * n)</c>, at least 1.</param>
/// <param name="Keep">How many classes survive the stage (at least 1).</param>
/// <remarks>Thread safety: an immutable record; safe to share.</remarks>
public sealed record PruningStage(double SampleFraction, int Keep);
