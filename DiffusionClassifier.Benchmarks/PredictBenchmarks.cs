using BenchmarkDotNet.Attributes;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// <see cref="BayesClassifier"/> throughput at N = 20/50/100 for the reference estimator and the default options,
/// one image per call (<see cref="Predict"/>) and a batch per call (<see cref="PredictBatch"/>).
/// </summary>
[Config(typeof(ThroughputConfig))]
public class PredictBenchmarks : IWorkloadBenchmark
{
    private ConditionalUNet? model;
    private BayesClassifier? classifier;
    private Tensor? images;

    /// <summary>Base width F.</summary>
    [Params(32, 64)]
    public int Features { get; set; } = 32;

    /// <summary>Monte Carlo samples N.</summary>
    [Params(20, 50, 100)]
    public int N { get; set; } = 20;

    /// <summary>Which options. The default's early exit depends on the digits and the weights, so this benchmark of
    /// random weights runs the default without it, which spends exactly the planned work (<see cref="EarlyExitBenchmarks"/>
    /// measures the exit with the trained model on real digits).</summary>
    [Params(Estimator.Reference, Estimator.NoExit)]
    public Estimator Estimator { get; set; }

    /// <summary>Images per <see cref="PredictBatch"/> call.</summary>
    [Params(16)]
    public int Batch { get; set; } = 16;

    /// <summary>Builds a random-weight model, the classifier and seeded images.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchmarkEnvironment.Initialize();
        var config = BenchmarkEnvironment.ModelConfig(Features);
        model = BenchmarkEnvironment.CreateModel(config);
        classifier = new BayesClassifier(model, new DdpmScheduler(), Estimator.Options());
        PrecisionColumn.Record(this, classifier);
        (images, var labels, var t) = BenchmarkEnvironment.CreateInputs(config, BatchSize());
        labels.Dispose();
        t.Dispose();
    }

    /// <summary>One image.</summary>
    [Benchmark]
    public int Predict()
    {
        using var scope = NewDisposeScope();
        int label = classifier!.Predict(images!.narrow(0, 0, 1), SampleCount()).Label;
        BenchmarkEnvironment.Synchronize();
        return label;
    }

    /// <summary>A batch of <see cref="Batch"/> images in one call.</summary>
    [Benchmark]
    public int PredictBatch() => BenchmarkEnvironment.PredictBatch(classifier!, images!, SampleCount());

    /// <summary>Releases the classifier, model and images.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        classifier?.Dispose(); model?.Dispose(); images?.Dispose();
        classifier = null; model = null; images = null;
    }

    /// <inheritdoc />
    public Workload Describe(string benchmarkMethod)
    {
        var config = BenchmarkEnvironment.ModelConfig(Features);
        var options = Estimator.Options();
        int count = benchmarkMethod == nameof(PredictBatch) ? BatchSize() : 1, n = SampleCount();
        var (evaluations, _) = FlopCounter.PredictEvaluations(config.Classes, n, options);
        return new Workload(count, evaluations, count * FlopCounter.Predict(config, n, options));
    }

    private int BatchSize() => BenchmarkEnvironment.Smoke ? 2 : Batch;

    private int SampleCount() => BenchmarkEnvironment.Smoke ? Math.Min(N, 5) : N;
}
