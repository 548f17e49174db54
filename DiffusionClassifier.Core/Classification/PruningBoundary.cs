namespace DiffusionClassifier.Classification;

/// <summary>A pruning stage resolved for one n: where it prunes and what survives it.</summary>
/// <param name="CumulativeSamples">Samples every class has received when the stage prunes (below n).</param>
/// <param name="Keep">Classes kept at most.</param>
/// <param name="Margin">The stage's <see cref="PruningStage.Margin"/>, or null.</param>
internal readonly record struct PruningBoundary(int CumulativeSamples, int Keep, double? Margin);
