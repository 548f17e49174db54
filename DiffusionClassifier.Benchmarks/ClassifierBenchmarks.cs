using BenchmarkDotNet.Attributes;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// Cost of <see cref="BayesClassifier.PredictBatch"/> at n = 20 on a random-weight MNIST-sized model, per estimator,
/// precision and chunk size. Run: <c>dotnet run -c Release --project DiffusionClassifier.Benchmarks -- --filter '*Classifier*'</c>.
/// One operation classifies <see cref="Images"/> images; the Images/s column divides by it.
/// </summary>
[Config(typeof(ThroughputConfig))]
[MemoryDiagnoser(false)]
public class ClassifierBenchmarks : IWorkloadBenchmark
{
    private const int N = 20;
    private ConditionalUNet? model;
    private BayesClassifier? classifier;
    private Tensor? images;

    /// <summary>Images per operation.</summary>
    public const int Images = 8;

    /// <summary>Network width F.</summary>
    [Params(32)]
    public int Features { get; set; } = 32;

    /// <summary>Estimator: Reference or Default.</summary>
    [Params("Reference", "Default")]
    public string Preset { get; set; } = "Default";

    /// <summary>Network precision.</summary>
    [Params(InferencePrecision.Float32, InferencePrecision.BFloat16)]
    public InferencePrecision Precision { get; set; }

    /// <summary>Rows per network call.</summary>
    [Params(32, 128, 512)]
    public int ChunkSize { get; set; } = 32;

    /// <summary>Builds the model and the classifier.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchmarkEnvironment.Initialize();
        var config = BenchmarkEnvironment.ModelConfig(Features);
        model = BenchmarkEnvironment.CreateModel(config);
        classifier = new BayesClassifier(model, new DdpmScheduler(), Options());
        PrecisionColumn.Record(this, classifier);
        images = rand(new long[] { ImageCount(), config.InChannels, config.Height, config.Width }, generator: new Generator(3))
            .to(BenchmarkEnvironment.Device).DetachFromDisposeScope();
    }

    /// <summary>Classifies the batch at n = 20.</summary>
    [Benchmark]
    public IReadOnlyList<ClassPrediction> PredictBatchN20()
    {
        var predictions = classifier!.PredictBatch(images!, SampleCount());
        BenchmarkEnvironment.Synchronize();
        return predictions;
    }

    /// <summary>Frees native memory.</summary>
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
        var options = Options();
        var (evaluations, _) = FlopCounter.PredictEvaluations(config.Classes, SampleCount(), options);
        return new Workload(ImageCount(), evaluations, ImageCount() * FlopCounter.Predict(config, SampleCount(), options));
    }

    // Without the default's early exit: on random weights its saving means nothing, and the planned work is exact.
    private BayesClassifierOptions Options() =>
        (Preset == "Reference" ? BayesClassifierOptions.Reference : BayesClassifierOptions.Default)
            with { ChunkSize = ChunkSize, Precision = Precision, EarlyExit = null };

    private static int ImageCount() => BenchmarkEnvironment.Smoke ? 2 : Images;

    private static int SampleCount() => BenchmarkEnvironment.Smoke ? 4 : N;
}
