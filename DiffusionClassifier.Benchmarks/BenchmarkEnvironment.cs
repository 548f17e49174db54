using DiffusionClassifier.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// Process-wide settings shared by every benchmark: the device, the thread count, how timing ends on CUDA, and the
/// tiny-size override the smoke test uses.
/// </summary>
public static class BenchmarkEnvironment
{
    /// <summary>
    /// When true every benchmark builds tiny models and shortened schedules instead of its real sizes, so that the
    /// smoke test can call each benchmark method once in milliseconds. Never set it for a measurement.
    /// </summary>
    public static bool Smoke { get; set; }

    /// <summary>
    /// Intra-op threads for libtorch; 0 (the default) means <see cref="Environment.ProcessorCount"/>. Can also be set
    /// with the environment variable <c>DC_BENCH_THREADS</c>.
    /// </summary>
    public static int Threads { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("DC_BENCH_THREADS"), out var t) && t > 0 ? t : 0;

    /// <summary>The device the benchmarks run on: CUDA when the backend has it and a GPU is present, else CPU.</summary>
    public static Device Device => cuda.is_available() ? CUDA : CPU;

    /// <summary>Whether <see cref="Device"/> is a CUDA device (timing then synchronises).</summary>
    public static bool IsCuda => Device.type == DeviceType.CUDA;

    /// <summary>Sets libtorch's thread count. Call it in every <c>GlobalSetup</c>.</summary>
    /// <param name="threads">Threads to use; 0 or less means <see cref="Threads"/> or, if that is 0, all processors.</param>
    public static void Initialize(int threads = 0)
    {
        int n = threads > 0 ? threads : Threads > 0 ? Threads : Environment.ProcessorCount;
        if (get_num_threads() != n)
            set_num_threads(n);
    }

    /// <summary>
    /// Waits for queued GPU work so that the time measured covers it; a no-op on CPU. Every benchmark method calls it
    /// before returning.
    /// </summary>
    public static void Synchronize()
    {
        if (IsCuda)
            cuda.synchronize();
    }

    /// <summary>One timed <c>PredictBatch</c> call, synchronised; returns the first label so the work is not dropped.</summary>
    /// <param name="classifier">The classifier.</param>
    /// <param name="images">The batch.</param>
    /// <param name="n">Samples N.</param>
    public static int PredictBatch(Classification.BayesClassifier classifier, Tensor images, int n)
    {
        var predictions = classifier.PredictBatch(images, n);
        Synchronize();
        return predictions[0].Label;
    }

    /// <summary>The MNIST-shaped configuration at width <paramref name="features"/>, or a tiny one in smoke mode.</summary>
    /// <param name="features">Base width F.</param>
    public static ConditionalUNetConfig ModelConfig(int features) =>
        Smoke ? new ConditionalUNetConfig(InChannels: 1, Features: 8, Classes: 10, Height: 8, Width: 8) : ConditionalUNetConfig.Mnist(features);

    /// <summary>
    /// Builds the networks of <see cref="CreateModel"/> instead of the constructor when set (tests use it to create
    /// models under their own seeding lock).
    /// </summary>
    public static Func<ConditionalUNetConfig, ConditionalUNet>? ModelFactory { get; set; }

    /// <summary>
    /// A network with random weights on <see cref="Device"/> in eval mode: speed does not depend on the weights. The
    /// caller owns it.
    /// </summary>
    /// <param name="config">The architecture.</param>
    public static ConditionalUNet CreateModel(ConditionalUNetConfig config)
    {
        // The global generator is left unseeded: tests running in parallel may rely on its sequence.
        var model = ModelFactory?.Invoke(config) ?? new ConditionalUNet(config);
        model.to(Device);
        model.eval();
        return model;
    }

    /// <summary>Seeded random inputs for a forward pass: images in [0, 1), labels, and normalised timesteps.</summary>
    /// <param name="config">The architecture.</param>
    /// <param name="batch">Batch size.</param>
    /// <param name="seed">Seed.</param>
    /// <returns>Tensors the caller owns (detached from any dispose scope).</returns>
    public static (Tensor X, Tensor Labels, Tensor T) CreateInputs(ConditionalUNetConfig config, long batch, long seed = 2)
    {
        using var gen = new Generator((ulong)seed);
        var x = rand(new[] { batch, config.InChannels, config.Height, config.Width }, generator: gen).to(Device);
        var labels = randint(0, config.Classes, new[] { batch }, dtype: ScalarType.Int64, generator: gen).to(Device);
        var t = randint(1, 401, new[] { batch }, dtype: ScalarType.Float32, generator: gen).div_(400).to(Device);
        x.DetachFromDisposeScope(); labels.DetachFromDisposeScope(); t.DetachFromDisposeScope();
        return (x, labels, t);
    }
}
