using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// The configuration every benchmark class uses (<c>[Config(typeof(ThroughputConfig))]</c>): the default jobs plus
/// the images/s, evaluations-per-image and GFLOP/s columns, the median, the precision a classifier ran in, and the device the benchmarks ran on.
/// </summary>
public sealed class ThroughputConfig : ManualConfig
{
    /// <summary>Creates the configuration.</summary>
    public ThroughputConfig()
    {
        AddColumn(BenchmarkDotNet.Columns.StatisticColumn.Median);
        AddColumn(ThroughputColumn.ImagesPerSecond, ThroughputColumn.EvaluationsPerImage, ThroughputColumn.GflopsPerSecond);
        AddColumn(PrecisionColumn.Instance);
        // The runner process loads the same backend as the benchmark process, so it sees the same device.
        AddColumn(new TagColumn(DeviceColumnName, _ => BenchmarkEnvironment.Device.ToString()));
    }

    /// <summary>The name of the column that shows the device (cpu, or cuda:N with a CUDA backend and a GPU).</summary>
    public const string DeviceColumnName = "Device";
}
