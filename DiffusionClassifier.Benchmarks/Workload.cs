namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// What one invocation of a benchmark method does: how many images it processes, how many network evaluations
/// (label-conditioned forwards) each image costs, and how many floating-point operations it performs in total.
/// The throughput columns divide these by the measured median time.
/// </summary>
/// <param name="Images">Images processed by one invocation.</param>
/// <param name="EvaluationsPerImage">Network evaluations per image (a forward per image is 1; the reference
/// classifier at N samples and K classes is N*K).</param>
/// <param name="Flops">Floating-point operations of one invocation (multiply-adds counted as 2), from
/// <see cref="FlopCounter"/>.</param>
public sealed record Workload(double Images, double EvaluationsPerImage, double Flops);

/// <summary>
/// Implemented by benchmark classes so that <see cref="ThroughputColumn"/> can report images/s and GFLOP/s.
/// </summary>
public interface IWorkloadBenchmark
{
    /// <summary>
    /// The work done by one call of <paramref name="benchmarkMethod"/> with the current parameter values. It must not
    /// depend on the global setup having run: the column calls it on a fresh instance with only the parameters set.
    /// </summary>
    /// <param name="benchmarkMethod">Name of the benchmark method.</param>
    Workload Describe(string benchmarkMethod);
}
