using BenchmarkDotNet.Attributes;
using DiffusionClassifier.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// <see cref="ConditionalUNet"/> forward throughput (eval mode, inference mode) at widths 32/64/128 over chunk sizes,
/// numeric formats and memory layouts (<see cref="ForwardVariant"/>): one invocation is one forward of one chunk of
/// <see cref="Chunk"/> images.
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
    [Params(10, 32, 128)]
    public int Chunk { get; set; } = 10;

    /// <summary>Format and layout.</summary>
    [ParamsAllValues]
    public ForwardVariant Variant { get; set; }

    /// <summary>Builds a random-weight model and a seeded input chunk in the variant's format.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchmarkEnvironment.Initialize();
        var config = BenchmarkEnvironment.ModelConfig(Features);
        model = BenchmarkEnvironment.CreateModel(config);
        ForwardVariants.Apply(model, Variant);
        Tensor x32;
        (x32, labels, t) = BenchmarkEnvironment.CreateInputs(config, Chunk);
        x = ForwardVariants.Input(x32, Variant).DetachFromDisposeScope();
        x32.Dispose();
        if (Variant.IsBFloat16())
        {
            var t16 = t.to(ScalarType.BFloat16).DetachFromDisposeScope();
            t.Dispose();
            t = t16;
        }
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
