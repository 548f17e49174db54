namespace DiffusionClassifier.Sampling;

/// <summary>Progress of a <see cref="GuidedSampler"/> run, reported after every reverse step.</summary>
/// <param name="Step">Reverse steps done so far, 1..<paramref name="TotalSteps"/>.</param>
/// <param name="TotalSteps">T, the number of reverse steps of the run.</param>
/// <param name="Timestep">The timestep t just processed (x_t became x_{t-1}); counts down from T to 1.</param>
/// <param name="Elapsed">Wall time since the run started.</param>
/// <remarks>Thread safety: an immutable value; safe to share.</remarks>
public readonly record struct SamplingProgress(int Step, int TotalSteps, int Timestep, TimeSpan Elapsed)
{
    /// <summary>Fraction done, in (0, 1].</summary>
    public double Fraction => TotalSteps == 0 ? 1 : (double)Step / TotalSteps;
}
