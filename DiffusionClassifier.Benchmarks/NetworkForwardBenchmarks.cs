using BenchmarkDotNet.Attributes;
using DiffusionClassifier.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// <see cref="ConditionalUNet"/> forward throughput (eval mode, inference mode) at widths 32/64/128 over chunk
/// sizes: one invocation is one forward of one chunk of <see cref="Chunk"/> images.
/// </summary>
[Config(typeof(ThroughputConfig))]
public class NetworkForwardBenchmarks : IWorkloadBenchmark
{
    private ConditionalUNet? model;
    private Tensor? x, labels, t;

    /// <summary>Base width F.</summary>
    [Params(32, 64, 128)]
    public int Features { get; set; } = 32;

    /// <summary>Images per forward call.</summary>
    [Params(10, 32, 64, 128)]
    public int Chunk { get; set; } = 10;

    /// <summary>Builds a random-weight model and a seeded input chunk.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchmarkEnvironment.Initialize();
        var config = BenchmarkEnvironment.ModelConfig(Features);
        model = BenchmarkEnvironment.CreateModel(config);
        (x, labels, t) = BenchmarkEnvironment.CreateInputs(config, Chunk);
    }

    /// <summary>One forward of one chunk.</summary>
    [Benchmark]
    public void Forward()
    {
        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        model!.forward(x!, labels!, t!);
        BenchmarkEnvironment.Synchronize();
    }

    /// <summary>Releases the model and inputs.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        model?.Dispose(); x?.Dispose(); labels?.Dispose(); t?.Dispose();
        model = null; x = labels = t = null;
    }

    /// <inheritdoc />
    public Workload Describe(string benchmarkMethod) =>
        new(Chunk, 1, Chunk * FlopCounter.Forward(BenchmarkEnvironment.ModelConfig(Features)));
}
