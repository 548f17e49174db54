using BenchmarkDotNet.Attributes;
using DiffusionClassifier.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// Scoring every label of a chunk of images: the full forward on each (image, label) row against the trunk run
/// once per image and the head once per (image, label) row. Both give the same noise predictions in eval mode.
/// </summary>
[Config(typeof(ThroughputConfig))]
public class TrunkHeadBenchmarks : IWorkloadBenchmark
{
    private ConditionalUNet? model;
    private Tensor? x, rows, rowLabels, rowT;

    /// <summary>Base width F.</summary>
    [Params(32, 64, 128)]
    public int Features { get; set; } = 32;

    /// <summary>Images per call; each is scored for all 10 labels, so a call evaluates 10x as many rows.</summary>
    [Params(10)]
    public int Images { get; set; } = 10;

    /// <summary>Builds a random-weight model, the images, and the (image, label) rows.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchmarkEnvironment.Initialize();
        var config = BenchmarkEnvironment.ModelConfig(Features);
        model = BenchmarkEnvironment.CreateModel(config);
        Tensor labels, t;
        (x, labels, t) = BenchmarkEnvironment.CreateInputs(config, Images);
        using (var scope = NewDisposeScope())
        {
            int k = config.Classes;
            rows = x.repeat_interleave(k, 0).MoveToOuterDisposeScope();
            rowLabels = arange(k, ScalarType.Int64, x.device).repeat(Images).MoveToOuterDisposeScope();
            rowT = t.repeat_interleave(k, 0).MoveToOuterDisposeScope();
            rows.DetachFromDisposeScope(); rowLabels.DetachFromDisposeScope(); rowT.DetachFromDisposeScope();
        }
        labels.Dispose();
        t.Dispose();
    }

    /// <summary>The full network on every (image, label) row.</summary>
    [Benchmark(Baseline = true)]
    public void FullForward()
    {
        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        model!.forward(rows!, rowLabels!, rowT!);
        BenchmarkEnvironment.Synchronize();
    }

    /// <summary>The trunk once per image, its activations repeated per label, the head once per row.</summary>
    [Benchmark]
    public void TrunkOnceHeadPerLabel()
    {
        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        using var trunk = model!.Trunk(x!);
        using var repeated = trunk.RepeatInterleave(model.Config.Classes);
        model.Head(repeated, rowLabels!, rowT!);
        BenchmarkEnvironment.Synchronize();
    }

    /// <summary>Releases the model and inputs.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        model?.Dispose(); x?.Dispose(); rows?.Dispose(); rowLabels?.Dispose(); rowT?.Dispose();
        model = null; x = rows = rowLabels = rowT = null;
    }

    /// <inheritdoc />
    public Workload Describe(string benchmarkMethod)
    {
        var config = BenchmarkEnvironment.ModelConfig(Features);
        double evaluations = (double)Images * config.Classes;
        double flops = benchmarkMethod == nameof(TrunkOnceHeadPerLabel)
            ? FlopCounter.TrunkAndHeads(config, Images, evaluations)
            : evaluations * FlopCounter.Forward(config);
        return new Workload(Images, config.Classes, flops);
    }
}
