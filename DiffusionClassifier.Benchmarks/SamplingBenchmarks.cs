using BenchmarkDotNet.Attributes;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Sampling;
using DiffusionClassifier.Scheduling;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// Classifier-free guided sampling of one batch with <see cref="GuidedSampler"/>: all T = 400 reverse steps, one
/// trunk per image and step and, with guidance, two heads (conditional and unconditional). One invocation takes
/// seconds to minutes; use <c>--job short</c> for a quick look.
/// </summary>
[Config(typeof(ThroughputConfig))]
public class SamplingBenchmarks : IWorkloadBenchmark
{
    private ConditionalUNet? model;
    private GuidedSampler? sampler;
    private int[] labels = [];

    /// <summary>Base width F.</summary>
    [Params(32, 64)]
    public int Features { get; set; } = 32;

    /// <summary>Images in the batch (labels cycle through the classes).</summary>
    [Params(10)]
    public int Batch { get; set; } = 10;

    /// <summary>Guidance weight w (0 runs only the conditional head).</summary>
    [Params(2.0)]
    public double GuidanceWeight { get; set; } = 2.0;

    /// <summary>Builds a random-weight model and the sampler.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchmarkEnvironment.Initialize();
        var config = BenchmarkEnvironment.ModelConfig(Features);
        model = BenchmarkEnvironment.CreateModel(config);
        sampler = new GuidedSampler(model, Scheduler(), new GuidedSamplerOptions { GuidanceWeight = GuidanceWeight, Seed = 1 });
        labels = Enumerable.Range(0, Batch).Select(i => i % config.Classes).ToArray();
    }

    /// <summary>Samples one batch.</summary>
    [Benchmark]
    public void SampleBatch()
    {
        using var result = sampler!.Sample(labels);
        BenchmarkEnvironment.Synchronize();
    }

    /// <summary>Releases the model.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        sampler?.Dispose();
        model?.Dispose();
        model = null;
        sampler = null;
    }

    /// <inheritdoc />
    public Workload Describe(string benchmarkMethod)
    {
        var config = BenchmarkEnvironment.ModelConfig(Features);
        int steps = Scheduler().NumTrainTimesteps, heads = GuidanceWeight == 0 ? 1 : 2;
        return new Workload(Batch, (double)steps * heads, FlopCounter.TrunkAndHeads(config, (double)steps * Batch, (double)steps * Batch * heads));
    }

    private static DdpmScheduler Scheduler() => BenchmarkEnvironment.Smoke ? new DdpmScheduler(5) : new DdpmScheduler();
}
