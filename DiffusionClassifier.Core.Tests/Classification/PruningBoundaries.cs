using DiffusionClassifier.Classification;

namespace DiffusionClassifier.Tests.Classification;

/// <summary>Resolved pruning stages written as (cumulative samples, keep) pairs, without margins.</summary>
internal static class PruningBoundaries
{
    public static PruningBoundary[] Boundaries(params (int CumulativeSamples, int Keep)[] stages) =>
        stages.Select(s => new PruningBoundary(s.CumulativeSamples, s.Keep, null)).ToArray();
}
