using BenchmarkDotNet.Configs;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// The configuration every benchmark class uses (<c>[Config(typeof(ThroughputConfig))]</c>): the default jobs plus
/// the images/s, evaluations-per-image and GFLOP/s columns, and the median.
/// </summary>
public sealed class ThroughputConfig : ManualConfig
{
    /// <summary>Creates the configuration.</summary>
    public ThroughputConfig()
    {
        AddColumn(BenchmarkDotNet.Columns.StatisticColumn.Median);
        AddColumn(ThroughputColumn.ImagesPerSecond, ThroughputColumn.EvaluationsPerImage, ThroughputColumn.GflopsPerSecond);
    }
}
