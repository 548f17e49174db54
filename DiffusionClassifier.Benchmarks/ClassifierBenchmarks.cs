using BenchmarkDotNet.Attributes;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// Cost of <see cref="BayesClassifier.PredictBatch"/> at n = 20 on a random-weight MNIST-sized model, per estimator,
/// precision and chunk size. Run: <c>dotnet run -c Release --project DiffusionClassifier.Benchmarks -- --filter '*Classifier*'</c>.
/// One operation classifies <see cref="Images"/> images; divide by it for the time per image.
/// </summary>
[MemoryDiagnoser(false)]
public class ClassifierBenchmarks
{
    private ConditionalUNet model = null!;
    private BayesClassifier classifier = null!;
    private Tensor images = null!;

    /// <summary>Images per operation.</summary>
    public const int Images = 8;

    /// <summary>Network width F.</summary>
    [Params(32)]
    public int Features { get; set; }

    /// <summary>Estimator: Reference or Default.</summary>
    [Params("Reference", "Default")]
    public string Preset { get; set; } = "Default";

    /// <summary>Network precision.</summary>
    [Params(InferencePrecision.Float32, InferencePrecision.BFloat16)]
    public InferencePrecision Precision { get; set; }

    /// <summary>Rows per network call.</summary>
    [Params(32, 128, 512)]
    public int ChunkSize { get; set; }

    /// <summary>Builds the model and the classifier (two intra-op threads, as on the project machines).</summary>
    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(2);
        manual_seed(1);
        model = new ConditionalUNet(ConditionalUNetConfig.Mnist(Features));
        var options = (Preset == "Reference" ? BayesClassifierOptions.Reference : BayesClassifierOptions.Default)
            with { ChunkSize = ChunkSize, Precision = Precision };
        classifier = new BayesClassifier(model, new DdpmScheduler(), options);
        images = rand(new long[] { Images, 1, 28, 28 }, generator: new Generator(3));
    }

    /// <summary>Classifies the batch at n = 20.</summary>
    [Benchmark]
    public IReadOnlyList<ClassPrediction> PredictBatchN20() => classifier.PredictBatch(images, 20);

    /// <summary>Frees native memory.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        classifier.Dispose();
        model.Dispose();
        images.Dispose();
    }
}
