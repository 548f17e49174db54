namespace DiffusionClassifier.Classification;

/// <summary>How <see cref="BayesClassifier"/> chooses the timesteps of its Monte Carlo samples.</summary>
public enum TimestepStrategy
{
    /// <summary>
    /// The reference estimator: every sample draws t ~ Uniform{1..T} independently from the seeded generator.
    /// </summary>
    Random,

    /// <summary>
    /// Evenly spaced timesteps (Li et al. 2023): for n samples, the centres of n equal strata of 1..T exactly as
    /// <see cref="Scheduling.DdpmScheduler.EvenlySpacedTimesteps"/> returns them (fixed, no random offset: a midpoint
    /// rule, which has lower variance than a random offset). When n &gt; T the same formula
    /// <c>1 + floor((i + 0.5) T / n)</c> repeats timesteps, each with its own noise. With pruning the samples are
    /// consumed in an order whose every stage prefix is itself evenly spread over 1..T (see
    /// <see cref="BayesClassifier.DrawNoise"/>). Only the noise is random. More accurate and less seed-dependent than
    /// <see cref="Random"/> at equal cost (docs/estimators.md).
    /// </summary>
    Stratified,
}
