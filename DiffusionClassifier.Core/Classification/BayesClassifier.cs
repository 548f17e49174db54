using System.Diagnostics;
using System.Globalization;
using DiffusionClassifier.Devices;
using DiffusionClassifier.Guards;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Classification;

/// <summary>
/// The diffusion classifier (Li et al. 2023): p(c | x) is proportional to exp(-E_{t,eps} ||eps - eps_theta(x_t, c)||^2),
/// the expectation estimated by Monte Carlo over n (t, eps) pairs shared by every class (a paired comparison).
/// </summary>
/// <remarks>
/// <para><b>Per image</b>: draw (t_j, eps_j), j = 1..n, from a generator seeded with the call's seed (default
/// <see cref="BayesClassifierOptions.Seed"/>); x_t = <see cref="DdpmScheduler.AddNoise"/>(x0, eps, t); score every
/// surviving class on the same x_t (trunk once per sample and the head per class when
/// <see cref="BayesClassifierOptions.ShareTrunk"/>); prune between stages; label = the survivor with the lowest mean
/// error; probabilities as described on <see cref="ClassPrediction"/>.</para>
/// <para><b>Reproducibility</b>: the draw depends only on the seed, n, the options and the device type, never on the
/// batch, the chunk size or other threads. The generator lives on <see cref="Device"/>, so the noise is drawn where the
/// network runs (no copy per chunk); the CPU and CUDA generators draw different numbers for one seed. With the default seed every image gets the same (t, eps) set (common random numbers), so
/// a prediction is a pure function of the image: <c>PredictBatch(images)[i]</c> equals <c>Predict(images[i])</c> up to
/// float rounding of differently sized network batches (about 1e-6 relative). Pass per-image seeds for independent
/// draws.</para>
/// <para><b>Thread safety</b>: <see cref="Predict(Tensor, int, long?, CancellationToken)"/> and the other predict
/// methods may be called from several threads at once; each call has its own generator and dispose scope, runs under
/// <c>torch.inference_mode()</c> (thread-local) and only reads the network, so it returns exactly what a sequential
/// call with the same seed returns. Do not train, modify or dispose the model, or dispose the classifier, while calls
/// are running. Each call also uses libtorch's intra-op threads: with several calling threads, or on a busy machine,
/// <c>torch.set_num_threads(1)</c> avoids oversubscribing the cores.</para>
/// <para><b>Ownership</b>: the classifier does not own the model passed in unless <c>ownsModel</c> is true. It puts
/// the model in eval mode. When <see cref="BayesClassifierOptions.Precision"/> or
/// <see cref="BayesClassifierOptions.Device"/> differ from the model's, it runs a private converted copy, which it owns
/// and disposes (building the copy draws once from the global generator for its throw-away initial weights).</para>
/// </remarks>
public sealed class BayesClassifier : IDisposable
{
    private const int MaxImagesPerGroup = 64;

    private readonly ConditionalUNet model;
    private readonly ConditionalUNet network;
    private readonly bool ownsModel;
    private readonly ScalarType networkType;
    private readonly ILogger<BayesClassifier> logger;
    private volatile bool disposed;

    /// <summary>Creates a classifier.</summary>
    /// <param name="model">The trained noise-prediction network; put in eval mode.</param>
    /// <param name="scheduler">The noise schedule the model was trained with.</param>
    /// <param name="options">The estimator; null uses <see cref="BayesClassifierOptions.Default"/>. Validated here.</param>
    /// <param name="logger">Receives debug timings; null logs nothing.</param>
    /// <param name="ownsModel">Dispose <paramref name="model"/> with the classifier.</param>
    /// <param name="calibration">The model's fitted temperature (a model file's
    /// <see cref="Serialization.LoadedModel.Calibration"/>), used unless <see cref="BayesClassifierOptions.Temperature"/>
    /// is set; null: temperature 1 (the paper's posterior).</param>
    /// <exception cref="ArgumentNullException"><paramref name="model"/> or <paramref name="scheduler"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option or the calibration is out of range.</exception>
    public BayesClassifier(ConditionalUNet model, DdpmScheduler scheduler, BayesClassifierOptions? options = null,
        ILogger<BayesClassifier>? logger = null, bool ownsModel = false, ProbabilityCalibration? calibration = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(scheduler);
        options ??= BayesClassifierOptions.Default;
        options.Validate();
        calibration?.Validate();
        Calibration = calibration;
        Temperature = options.Temperature ?? calibration?.Temperature ?? 1.0;
        this.model = model;
        this.ownsModel = ownsModel;
        Scheduler = scheduler;
        Options = options;
        this.logger = logger ?? NullLogger<BayesClassifier>.Instance;

        var first = model.parameters().First();
        Device = DeviceSelection.ResolveOr(options.Device, first.device, nameof(options));
        this.logger.LogDebug("{Allocator}.", NativeAllocator.EnsureTuned());
        PrecisionDecision = AutoPrecision.Decide(model, scheduler, options.Precision, Device);
        Precision = PrecisionDecision.Chosen;
        if (options.Precision == InferencePrecision.Auto)
            this.logger.LogInformation("Precision: {Decision}.", PrecisionDecision);
        networkType = Precision == InferencePrecision.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        model.eval();
        if (first.dtype == networkType && TensorGuard.SameDevice(first.device, Device))
        {
            network = model;
        }
        else
        {
            network = ModelCopy.Create(model, Device, networkType);
            this.logger.LogDebug("Running a {Type} copy of the model on {Device}.", networkType, Device);
        }
    }

    /// <summary>The network's configuration (image shape, classes).</summary>
    public ConditionalUNetConfig ModelConfig => model.Config;

    /// <summary>The noise schedule.</summary>
    public DdpmScheduler Scheduler { get; }

    /// <summary>The estimator (validated, immutable).</summary>
    public BayesClassifierOptions Options { get; }

    /// <summary>The device the network runs on; images passed in must live there.</summary>
    public Device Device { get; }

    /// <summary>The precision the network runs in: <see cref="BayesClassifierOptions.Precision"/> with
    /// <see cref="InferencePrecision.Auto"/> resolved for this machine and <see cref="Device"/>.</summary>
    public InferencePrecision Precision { get; }

    /// <summary>The calibration given to the constructor (null: none).</summary>
    public ProbabilityCalibration? Calibration { get; }

    /// <summary>
    /// The temperature of <see cref="ClassPrediction.Probabilities"/>: <see cref="BayesClassifierOptions.Temperature"/>,
    /// else <see cref="Calibration"/>'s, else 1 (the paper's posterior).
    /// </summary>
    public double Temperature { get; }

    /// <summary>Keep every per-sample loss in <see cref="ClassPrediction.SampleErrors"/> (for offline analysis; set
    /// before predicting).</summary>
    internal bool RecordSampleErrors { get; set; }

    /// <summary>Why <see cref="Precision"/> was chosen, with the probe's measurements when
    /// <see cref="InferencePrecision.Auto"/> ran one.</summary>
    internal PrecisionDecision PrecisionDecision { get; }

    /// <summary>Why <see cref="Precision"/> was chosen, in words (with the probe's speed-up and score error when
    /// <see cref="InferencePrecision.Auto"/> ran one); also logged at Information level.</summary>
    public string PrecisionReason => PrecisionDecision.ToString();

    /// <summary>Classifies one image.</summary>
    /// <param name="image">Pixels in [0, 1], float32 or float64, shape [C, H, W], [1, C, H, W], or [H, W] when C = 1;
    /// on <see cref="Device"/>.</param>
    /// <param name="n">Monte Carlo samples per class before pruning, 1..<see cref="BayesClassifierOptions.MaxSamples"/>.</param>
    /// <param name="seed">Seed of this image's draw; null uses <see cref="BayesClassifierOptions.Seed"/>.</param>
    /// <param name="cancellationToken">Checked between network calls.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="image"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="image"/> has the wrong shape, dtype or device, or holds NaN,
    /// infinity or values outside [0, 1].</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The classifier was disposed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public ClassPrediction Predict(Tensor image, int n, long? seed = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentNullException.ThrowIfNull(image);
        ValidateSamples(n);
        var c = model.Config;
        using var scope = NewDisposeScope();
        long[][] shapes = c.InChannels == 1
            ? [[c.InChannels, c.Height, c.Width], [1, c.InChannels, c.Height, c.Width], [c.Height, c.Width]]
            : [[c.InChannels, c.Height, c.Width], [1, c.InChannels, c.Height, c.Width]];
        TensorGuard.Shape(image, nameof(image), shapes);
        var batch = CheckedImages(image.reshape(1, c.InChannels, c.Height, c.Width), nameof(image));
        return Run(batch, n, new[] { seed ?? Options.Seed }, null, cancellationToken)[0];
    }

    /// <summary>Classifies one image given as C x H x W pixel values in [0, 1] (784 for MNIST), row-major.</summary>
    /// <param name="pixels">The pixels.</param>
    /// <param name="n">Monte Carlo samples per class before pruning.</param>
    /// <param name="seed">Seed of the draw; null uses <see cref="BayesClassifierOptions.Seed"/>.</param>
    /// <param name="cancellationToken">Checked between network calls.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="ArgumentException">Wrong length, NaN, infinity or values outside [0, 1].</exception>
    public ClassPrediction Predict(float[] pixels, int n, long? seed = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentNullException.ThrowIfNull(pixels);
        CheckLength(pixels.Length, nameof(pixels));
        ValidateSamples(n);
        TensorGuard.UnitRange(pixels, nameof(pixels));
        var c = model.Config;
        using var scope = NewDisposeScope();
        var image = tensor(pixels, new long[] { 1, c.InChannels, c.Height, c.Width }).to(Device);
        return Run(image, n, new[] { seed ?? Options.Seed }, null, cancellationToken)[0];
    }

    /// <summary>Classifies one image given as C x H x W bytes (0..255, divided by 255), row-major: e.g. an MNIST digit.</summary>
    /// <param name="pixels">The pixels.</param>
    /// <param name="n">Monte Carlo samples per class before pruning.</param>
    /// <param name="seed">Seed of the draw; null uses <see cref="BayesClassifierOptions.Seed"/>.</param>
    /// <param name="cancellationToken">Checked between network calls.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="ArgumentException">Wrong length.</exception>
    public ClassPrediction Predict(byte[] pixels, int n, long? seed = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentNullException.ThrowIfNull(pixels);
        CheckLength(pixels.Length, nameof(pixels));
        return Predict(pixels.Select(b => b / 255f).ToArray(), n, seed, cancellationToken);
    }

    /// <summary>
    /// Classifies a batch, sharing network calls across images. Result i equals
    /// <c>Predict(images[i], n, seeds?[i])</c> up to float rounding.
    /// </summary>
    /// <param name="images">Pixels in [0, 1], float32 or float64, [B, C, H, W] (or [B, H, W] when C = 1), on <see cref="Device"/>.</param>
    /// <param name="n">Monte Carlo samples per class before pruning.</param>
    /// <param name="seeds">Per-image seeds (B of them); null gives every image <see cref="BayesClassifierOptions.Seed"/>.</param>
    /// <param name="progress">Receives the number of images finished so far.</param>
    /// <param name="cancellationToken">Checked between network calls.</param>
    /// <returns>One prediction per image, in order.</returns>
    /// <exception cref="ArgumentException">Bad shape, dtype, device or values, or a seed count other than B.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The classifier was disposed.</exception>
    public IReadOnlyList<ClassPrediction> PredictBatch(Tensor images, int n, IReadOnlyList<long>? seeds = null,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentNullException.ThrowIfNull(images);
        ValidateSamples(n);
        var c = model.Config;
        long[][] shapes = c.InChannels == 1
            ? [[-1, c.InChannels, c.Height, c.Width], [-1, c.Height, c.Width]]
            : [[-1, c.InChannels, c.Height, c.Width]];
        TensorGuard.Shape(images, nameof(images), shapes);
        int count = checked((int)images.shape[0]);
        if (seeds is not null && seeds.Count != count)
            throw TensorGuard.Mismatch(nameof(seeds), $"{count} seeds (one per image)", seeds.Count.ToString(CultureInfo.InvariantCulture));
        if (count == 0)
            return Array.Empty<ClassPrediction>();
        using var scope = NewDisposeScope();
        var batch = CheckedImages(images.reshape(count, c.InChannels, c.Height, c.Width), nameof(images));
        var allSeeds = seeds?.ToArray() ?? Enumerable.Repeat(Options.Seed, count).ToArray();
        return Run(batch, n, allSeeds, progress, cancellationToken);
    }

    /// <summary>
    /// The (t, eps) samples an image gets for <paramref name="n"/> and <paramref name="seed"/> under these options, in
    /// the order they are spent (with pruning, the first stage's samples come first). For checking and reproducing
    /// the estimator outside the library.
    /// </summary>
    /// <param name="n">Samples.</param>
    /// <param name="seed">Seed; null uses <see cref="BayesClassifierOptions.Seed"/>.</param>
    /// <returns>The timesteps (1..T) and the noise [n, C, H, W] (float32, copied to the CPU; the caller owns it). The noise is
    /// drawn on <see cref="Device"/>, so a CUDA classifier draws other numbers than a CPU one for the same seed.</returns>
    public (int[] Timesteps, Tensor Noise) DrawNoise(int n, long? seed = null)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ValidateSamples(n);
        using var scope = NewDisposeScope();
        using var stream = CreateStream(seed ?? Options.Seed, SamplingPlan.Resolve(Options, n));
        var noise = stack(Enumerable.Range(0, n).Select(stream.NextNoise).ToArray()).cpu();
        return (stream.Timesteps, noise.MoveToOuterDisposeScope());
    }

    /// <summary>Disposes the private model copy, and the model when the classifier owns it.</summary>
    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        if (!ReferenceEquals(network, model))
            network.Dispose();
        if (ownsModel)
            model.Dispose();
    }

    private IReadOnlyList<ClassPrediction> Run(Tensor images, int n, long[] seeds, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        if (network.training || model.training)
            throw new InvalidOperationException("The model was switched to training mode; call eval() before classifying.");
        var stopwatch = Stopwatch.StartNew();
        int count = seeds.Length, classes = model.Config.Classes;
        var plan = SamplingPlan.Resolve(Options, n);
        var results = new ClassPrediction[count];
        using var inference = inference_mode();
        for (int start = 0; start < count; start += MaxImagesPerGroup)
        {
            int size = Math.Min(MaxImagesPerGroup, count - start);
            var streams = new NoiseSampleStream[size];
            try
            {
                for (int i = 0; i < size; i++)
                    streams[i] = CreateStream(seeds[start + i], plan);
                using var group = images.narrow(0, start, size);
                using var evaluator = new NetworkEvaluator(network, Scheduler, networkType, Options.ShareTrunk, Options.ErrorMetric, group, streams,
                    () => Interlocked.Increment(ref hostTransfers));
                var tallies = StagedEvaluation.Run(size, n, classes, plan.Stages, Options.ChunkSize, evaluator, cancellationToken,
                    Options.EarlyExit, RecordSampleErrors);
                for (int i = 0; i < size; i++)
                {
                    var t = tallies[i];
                    results[start + i] = ClassPrediction.FromTally(t, n, Options, model.Config, Temperature) with
                    {
                        Timesteps = streams[i].Timesteps,
                    };
                }
            }
            finally
            {
                foreach (var s in streams)
                    s?.Dispose();
            }
            progress?.Report(start + size);
        }
        if (logger.IsEnabled(LogLevel.Debug))
            logger.LogDebug("Classified {Count} images with n = {N} in {Seconds:F3} s ({Evaluations} noise predictions).",
                count, n, stopwatch.Elapsed.TotalSeconds, results.Sum(r => r.NetworkEvaluations));
        return results;
    }

    private NoiseSampleStream CreateStream(long seed, SamplingPlan plan)
    {
        var c = model.Config;
        return new NoiseSampleStream(seed, plan.Samples, Options.TimestepStrategy, Scheduler, plan.Boundaries, new long[] { c.InChannels, c.Height, c.Width }, Device,
            plan.Looks);
    }

    /// <summary>Checks dtype, device, finiteness and range; returns the images as float32 (in the current scope).</summary>
    private Tensor CheckedImages(Tensor images, string parameterName)
    {
        TensorGuard.DType(images, parameterName, ScalarType.Float32, ScalarType.Float64);
        TensorGuard.OnDevice(images, Device, parameterName, "the classifier's");
        TensorGuard.UnitRange(images, parameterName);
        return images.to(ScalarType.Float32);
    }

    private void CheckLength(int length, string parameterName)
    {
        var c = model.Config;
        int expected = c.InChannels * c.Height * c.Width;
        if (length != expected)
            throw TensorGuard.Mismatch(parameterName, $"{expected} pixels ({c.InChannels} x {c.Height} x {c.Width})", length.ToString(CultureInfo.InvariantCulture));
    }

    private static void ValidateSamples(int n)
    {
        if (n < 1 || n > BayesClassifierOptions.MaxSamples)
            throw new ArgumentOutOfRangeException(nameof(n), n, $"The sample count must lie in 1..{BayesClassifierOptions.MaxSamples}.");
    }

    /// <summary>Device-to-host copies of per-row errors made so far (one per <see cref="ISampleErrorEvaluator.Flush"/>
    /// with work pending), for tests of host synchronisation.</summary>
    internal long HostTransfers => Interlocked.Read(ref hostTransfers);

    private long hostTransfers;
}
