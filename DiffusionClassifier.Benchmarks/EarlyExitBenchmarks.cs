using BenchmarkDotNet.Attributes;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Pretrained;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// <see cref="BayesClassifier.PredictBatch(Tensor, int, IReadOnlyList{long}?, IProgress{int}?, CancellationToken)"/>
/// at N = 20/50/100 with and without the sequential early exit, on the built-in trained model and the first
/// <see cref="Batch"/> embedded MNIST test digits: the early exit's saving depends on the weights and the digits, so
/// random weights (as in <see cref="PredictBenchmarks"/>) would not show it.
/// </summary>
/// <remarks>The work per image (noise predictions, FLOPs) is what the classifier reported for these digits in a
/// first call during setup; every call repeats the same seeded draw, so it spends the same. BenchmarkDotNet asks for
/// the workload on a fresh instance after the run: the measured work is kept per case for that (in process, the
/// default here). A case not run in this process reports the planned work of <see cref="Estimator.NoExit"/>, which
/// is an upper bound with the early exit.</remarks>
[Config(typeof(ThroughputConfig))]
public class EarlyExitBenchmarks : IWorkloadBenchmark
{
    private BayesClassifier? classifier;
    private Tensor? images;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int N, Estimator Estimator, int Batch, bool Smoke), Workload> Measured = new();

    /// <summary>Monte Carlo samples N.</summary>
    [Params(20, 50, 100)]
    public int N { get; set; } = 20;

    /// <summary>Without (<see cref="Estimator.NoExit"/>) or with (<see cref="Estimator.Default"/>) the early exit.</summary>
    [Params(Estimator.NoExit, Estimator.Default)]
    public Estimator Estimator { get; set; } = Estimator.Default;

    /// <summary>Digits per call.</summary>
    [Params(32)]
    public int Batch { get; set; } = 32;

    /// <summary>Loads the model and the digits, and measures the work of one call.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchmarkEnvironment.Initialize();
        using var loaded = PretrainedModels.LoadMnistDefault(BenchmarkEnvironment.Device);
        var config = loaded.Model.Config;
        classifier = loaded.CreateClassifier(Estimator.Options());
        PrecisionColumn.Record(this, classifier);
        using (var digits = PretrainedModels.LoadMnistTestDigits())
            images = digits.Images.narrow(0, 0, BatchSize()).to(BenchmarkEnvironment.Device).DetachFromDisposeScope();
        var predictions = classifier.PredictBatch(images, SampleCount());
        double evaluations = predictions.Sum(p => (double)p.NetworkEvaluations), trunks = predictions.Sum(p => (double)p.TrunkEvaluations);
        Measured[Key()] = new Workload(predictions.Count, evaluations / predictions.Count, PredictionCost.Flops(config, trunks, evaluations));
    }

    /// <summary>One batch of digits.</summary>
    [Benchmark]
    public int PredictBatch() => BenchmarkEnvironment.PredictBatch(classifier!, images!, SampleCount());

    /// <summary>Releases the classifier and the digits.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        classifier?.Dispose(); images?.Dispose();
        classifier = null; images = null;
    }

    /// <inheritdoc />
    public Workload Describe(string benchmarkMethod)
    {
        if (Measured.TryGetValue(Key(), out var measured))
            return measured;
        using var loaded = PretrainedModels.LoadMnistDefault();
        var config = loaded.Model.Config;
        var (evaluations, trunks) = PredictionCost.Planned(config.Classes, SampleCount(), Estimator.Options());
        return new Workload(BatchSize(), evaluations, BatchSize() * PredictionCost.Flops(config, trunks, evaluations));
    }

    private (int, Estimator, int, bool) Key() => (N, Estimator, Batch, BenchmarkEnvironment.Smoke);

    private int BatchSize() => BenchmarkEnvironment.Smoke ? 2 : Batch;

    private int SampleCount() => BenchmarkEnvironment.Smoke ? Math.Min(N, 5) : N;
}
