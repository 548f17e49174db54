using BenchmarkDotNet.Attributes;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Training;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// One training step of <see cref="DiffusionTrainer"/> with its default options (noise, forward in train mode, MSE,
/// backward, Adam, EMA): a trainer over exactly one batch of random images is built before each iteration, so each
/// invocation is one step.
/// </summary>
[Config(typeof(ThroughputConfig))]
[InvocationCount(1)]
public class TrainingStepBenchmarks : IWorkloadBenchmark
{
    private ConditionalUNet? model;
    private Tensor? images, labels;
    private TensorTrainingData? data;
    private DiffusionTrainer? trainer;

    /// <summary>Base width F.</summary>
    [Params(32, 64, 128)]
    public int Features { get; set; } = 32;

    /// <summary>Batch size (the trainer's default is 128).</summary>
    [Params(128)]
    public int Batch { get; set; } = 128;

    /// <summary>Builds a random-weight model and one batch of random images.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchmarkEnvironment.Initialize();
        var config = BenchmarkEnvironment.ModelConfig(Features);
        model = BenchmarkEnvironment.CreateModel(config);
        int batch = BenchmarkEnvironment.Smoke ? 4 : Batch;
        (images, labels, var t) = BenchmarkEnvironment.CreateInputs(config, batch);
        t.Dispose();
        if (BenchmarkEnvironment.IsCuda)
        {
            // The trainer moves batches to its device itself; the data stays where users keep it.
            var (cpuImages, cpuLabels) = (images.cpu().DetachFromDisposeScope(), labels.cpu().DetachFromDisposeScope());
            images.Dispose(); labels.Dispose();
            (images, labels) = (cpuImages, cpuLabels);
        }
        data = new TensorTrainingData(images, labels);
    }

    /// <summary>A fresh trainer (Adam state, EMA) for the next step.</summary>
    [IterationSetup]
    public void CreateTrainer()
    {
        trainer?.Dispose();
        var options = new TrainingOptions
        {
            Epochs = 1,
            BatchSize = (int)data!.Count,
            Device = BenchmarkEnvironment.IsCuda ? "cuda" : "cpu",
            CheckpointPath = null,
        };
        trainer = new DiffusionTrainer(model!, new DdpmScheduler(), options);
    }

    /// <summary>One step: the whole (one-batch) epoch.</summary>
    [Benchmark]
    public void TrainingStep()
    {
        trainer!.Train(data!);
        BenchmarkEnvironment.Synchronize();
    }

    /// <summary>Releases the trainer of the iteration.</summary>
    [IterationCleanup]
    public void DisposeTrainer()
    {
        trainer?.Dispose();
        trainer = null;
    }

    /// <summary>Releases the model and the batch.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        trainer?.Dispose();
        model?.Dispose(); images?.Dispose(); labels?.Dispose();
        trainer = null; model = null; images = labels = null; data = null;
    }

    /// <inheritdoc />
    public Workload Describe(string benchmarkMethod)
    {
        int batch = BenchmarkEnvironment.Smoke ? 4 : Batch;
        return new Workload(batch, 1, FlopCounter.TrainingStep(BenchmarkEnvironment.ModelConfig(Features), batch));
    }
}
