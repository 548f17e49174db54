using System.Diagnostics;
using DiffusionClassifier.Devices;
using DiffusionClassifier.Guards;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Sampling;

/// <summary>
/// Generates images of chosen classes with classifier-free guidance (Ho &amp; Salimans 2022), as the reference:
/// x_T ~ N(0, I), then for t = T..1 <c>eps_hat = (1 + w) eps(x_t, c) - w eps(x_t, no label)</c> and the DDPM reverse
/// step <see cref="DdpmScheduler.Step(Tensor, int, Tensor, Tensor?)"/> with z ~ N(0, I) (z = 0 at t = 1). No clipping.
/// </summary>
/// <remarks>
/// <para>Both noise predictions come from one doubled batch (second half with the label dropped). Because the
/// network's trunk does not depend on the label and BatchNorm is per-image in eval mode, the trunk runs once per
/// step on x_t and only the head runs on the doubled batch. With w = 0 the unconditional half is skipped.</para>
/// <para>All randomness (x_T, then z_T, ..., z_2, drawn for the whole batch at each step, the reference's order)
/// comes from a <see cref="Generator"/> on the model's device seeded with <see cref="GuidedSamplerOptions.Seed"/> (the
/// CPU and CUDA generators draw different numbers for one seed): on one device type a seed and chunk size
/// give bit-identical images, and the noise does not depend on <see cref="GuidedSamplerOptions.ChunkSize"/> (other
/// chunk sizes change only float rounding, about 1e-6, through batch-size-dependent oneDNN kernels).</para>
/// <para>Does not own the model or the scheduler. When <see cref="GuidedSamplerOptions.Device"/> names another
/// device than the model's, the sampler runs a private eval-mode copy there, made at construction (later changes to the
/// model's weights are not seen), and disposes it with itself; otherwise it runs the model itself: a model in training
/// mode is switched to eval for the run and switched back afterwards. Concurrent <c>Sample</c> calls are safe when
/// the network is in eval mode and nobody trains it meanwhile.</para>
/// </remarks>
public sealed class GuidedSampler : IDisposable
{
    /// <summary>
    /// The most images one call generates (65,536; at 28 x 28 the batch alone is 205 MB of float32). Larger requests are
    /// refused before anything is allocated; split them into several calls.
    /// </summary>
    public const int MaxImages = 65_536;

    private readonly ConditionalUNet model;
    private readonly ConditionalUNet? copy;
    private readonly DdpmScheduler scheduler;
    private readonly GuidedSamplerOptions options;
    private readonly ILogger<GuidedSampler> logger;
    private bool disposed;

    /// <summary>Creates a sampler.</summary>
    /// <param name="model">The noise-prediction network (not owned).</param>
    /// <param name="scheduler">The noise schedule the model was trained with.</param>
    /// <param name="options">Settings; null uses the defaults. They are copied and validated.</param>
    /// <param name="logger">Optional logger; start and end of every run are logged at Information.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (see <see cref="GuidedSamplerOptions.Validate"/>).</exception>
    /// <exception cref="ArgumentException"><see cref="GuidedSamplerOptions.Device"/> is not valid or not available.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public GuidedSampler(ConditionalUNet model, DdpmScheduler scheduler, GuidedSamplerOptions? options = null, ILogger<GuidedSampler>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(scheduler);
        this.model = model;
        this.scheduler = scheduler;
        this.options = options ?? new GuidedSamplerOptions();
        this.options.Validate();
        this.logger = logger ?? NullLogger<GuidedSampler>.Instance;
        var first = FirstParameter(model);
        var device = DeviceSelection.ResolveOr(this.options.Device, first.device, nameof(options));
        this.logger.LogDebug("{Allocator}.", NativeAllocator.EnsureTuned());
        if (!TensorGuard.SameDevice(first.device, device))
        {
            copy = ModelCopy.Create(model, device, first.dtype);
            this.logger.LogDebug("Sampling with a copy of the model on {Device}.", device);
        }
    }

    /// <summary>The model passed in (the sampler may run a copy of it: see <see cref="GuidedSamplerOptions.Device"/>).</summary>
    public ConditionalUNet Model => model;

    /// <summary>The noise schedule.</summary>
    public DdpmScheduler Scheduler => scheduler;

    /// <summary>A copy of the settings in use.</summary>
    public GuidedSamplerOptions Options => options;

    /// <summary>Generates one image per label.</summary>
    /// <param name="labels">Class of every image, each in [0, Classes); at least one.</param>
    /// <param name="progress">Receives a report after every reverse step (on the calling thread).</param>
    /// <param name="cancellationToken">Checked before every network call.</param>
    /// <returns>The images [B, C, H, W] and the captured steps; the caller owns (disposes) the result.</returns>
    /// <exception cref="ArgumentException">No labels.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A label is outside [0, Classes), or there are more than <see cref="MaxImages"/>.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public SamplingResult Sample(IReadOnlyList<int> labels, IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(labels);
        CheckCount(labels.Count);
        return SampleCore(ValidateLabels(labels.ToArray()), progress, cancellationToken);
    }

    /// <summary>Generates one image per label (this overload resolves the ambiguity of an <c>int[]</c> argument,
    /// which also converts implicitly to a <see cref="Tensor"/>).</summary>
    /// <param name="labels">Class of every image, each in [0, Classes); at least one.</param>
    /// <param name="progress">Receives a report after every reverse step (on the calling thread).</param>
    /// <param name="cancellationToken">Checked before every network call.</param>
    /// <returns>The images [B, C, H, W] and the captured steps; the caller owns (disposes) the result.</returns>
    /// <exception cref="ArgumentException">No labels.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A label is outside [0, Classes), or there are more than <see cref="MaxImages"/>.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public SamplingResult Sample(int[] labels, IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Sample((IReadOnlyList<int>)labels, progress, cancellationToken);

    /// <summary>Generates one image per label.</summary>
    /// <param name="labels">Integer tensor [B] of classes, each in [0, Classes); any device.</param>
    /// <param name="progress">Receives a report after every reverse step (on the calling thread).</param>
    /// <param name="cancellationToken">Checked before every network call.</param>
    /// <returns>The images [B, C, H, W] and the captured steps; the caller owns (disposes) the result.</returns>
    /// <exception cref="ArgumentException">The tensor is not a non-empty integer vector.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A label is outside [0, Classes), or there are more than <see cref="MaxImages"/>.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public SamplingResult Sample(Tensor labels, IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(labels);
        TensorGuard.Shape(labels, nameof(labels), [-1]);
        TensorGuard.Integer(labels, nameof(labels));
        CheckCount(labels.shape[0]);
        long[] values;
        using (var cpu = labels.to(ScalarType.Int64, CPU))
            values = cpu.data<long>().ToArray();
        var ints = new int[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] < 0 || values[i] >= model.Config.Classes)
                throw new ArgumentOutOfRangeException(nameof(labels), values[i], $"labels[{i}] = {values[i]} is outside [0, {model.Config.Classes}).");
            ints[i] = (int)values[i];
        }
        return SampleCore(ValidateLabels(ints), progress, cancellationToken);
    }

    /// <summary>
    /// Generates <paramref name="samplesPerLabel"/> images of every class 0..Classes-1, label-major
    /// (0, 0, ..., 1, 1, ...), ready for <see cref="SamplingResult.SaveGrid"/> (one row per label).
    /// </summary>
    /// <param name="samplesPerLabel">Images per class, at least 1.</param>
    /// <param name="progress">Receives a report after every reverse step.</param>
    /// <param name="cancellationToken">Checked before every network call.</param>
    /// <returns>The images [Classes * samplesPerLabel, C, H, W]; the caller owns (disposes) the result.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="samplesPerLabel"/> is below 1 or the grid would exceed <see cref="MaxImages"/>.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public SamplingResult SampleGrid(int samplesPerLabel, IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        int classes = model.Config.Classes;
        if (samplesPerLabel < 1 || (long)classes * samplesPerLabel > MaxImages)
            throw new ArgumentOutOfRangeException(nameof(samplesPerLabel), samplesPerLabel,
                $"samplesPerLabel must lie in 1..{MaxImages / classes} ({classes} classes, at most {MaxImages} images per call).");
        var labels = new int[classes * samplesPerLabel];
        for (int i = 0; i < labels.Length; i++)
            labels[i] = i / samplesPerLabel;
        return SampleCore(labels, progress, cancellationToken);
    }

    private static void CheckCount(long count)
    {
        if (count > MaxImages)
            throw new ArgumentOutOfRangeException("labels", count, $"At most {MaxImages} images can be generated per call; split the request.");
    }

    private int[] ValidateLabels(int[] labels)
    {
        if (labels.Length == 0)
            throw new ArgumentException("At least one label is needed.", nameof(labels));
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] < 0 || labels[i] >= model.Config.Classes)
                throw new ArgumentOutOfRangeException(nameof(labels), labels[i], $"labels[{i}] = {labels[i]} is outside [0, {model.Config.Classes}).");
        return labels;
    }

    private SamplingResult SampleCore(int[] labels, IProgress<SamplingProgress>? progress, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(disposed, this);
        var network = copy ?? model;
        var first = FirstParameter(network);
        var (device, dtype) = (first.device, first.dtype);
        var config = model.Config;
        int steps = scheduler.NumTrainTimesteps, every = options.CaptureEvery;
        long[] shape = { labels.Length, config.InChannels, config.Height, config.Width };
        logger.LogInformation("Sampling {Count} images, w = {GuidanceWeight}, T = {Steps}, seed {Seed}, chunks of {ChunkSize} on {Device}.",
            labels.Length, options.GuidanceWeight, steps, options.Seed, options.ChunkSize, device);
        var stopwatch = Stopwatch.StartNew();

        bool wasTraining = network.training;
        if (wasTraining) network.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            // The seed is reinterpreted as unsigned; libtorch seeds with 64 bits.
            // The generator lives on the model's device: no copy of the noise per step (CPU and CUDA draws differ).
            using var generator = new Generator(unchecked((ulong)options.Seed), device);
            var labelTensor = tensor(labels.Select(l => (long)l).ToArray(), ScalarType.Int64, device);
            var x = randn(shape, dtype, device, generator: generator);
            var captures = new List<Tensor>();
            var captureTimes = new List<int>();

            for (int t = steps; t >= 1; t--)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using (var stepScope = NewDisposeScope())
                {
                    var z = t > 1 ? randn(shape, dtype, device, generator: generator) : null;
                    var eps = PredictGuidedNoise(network, x, labelTensor, t, cancellationToken);
                    var next = scheduler.Step(eps, t, x, z).MoveToOuterDisposeScope();
                    x.Dispose();
                    x = next;
                }
                int done = steps - t + 1;
                if (every > 0 && (done % every == 0 || t == 1))
                {
                    captures.Add(x.clone());
                    captureTimes.Add(t - 1);
                }
                progress?.Report(new SamplingProgress(done, steps, t, stopwatch.Elapsed));
            }

            var stacked = captures.Count > 0 ? stack(captures).MoveToOuterDisposeScope() : null;
            var elapsed = stopwatch.Elapsed;
            logger.LogInformation("Sampled {Count} images in {Seconds:F2} s ({Rate:F1} images/s).",
                labels.Length, elapsed.TotalSeconds, labels.Length / Math.Max(elapsed.TotalSeconds, 1e-9));
            return new SamplingResult(x.MoveToOuterDisposeScope(), stacked, captureTimes.ToArray(), labels,
                options.GuidanceWeight, options.Seed, elapsed);
        }
        finally
        {
            if (wasTraining) network.train();
        }
    }

    /// <summary>eps_hat for the whole batch at timestep t, computed chunk by chunk.</summary>
    private Tensor PredictGuidedNoise(ConditionalUNet network, Tensor x, Tensor labels, int t, CancellationToken cancellationToken)
    {
        using var scope = NewDisposeScope();
        double w = options.GuidanceWeight, tNorm = t / (double)scheduler.NumTrainTimesteps;
        long batch = x.shape[0], chunk = options.ChunkSize;
        // Scalars held for the whole call and explicit alphas: see TorchScalars.
        using var tScalar = tNorm.ToScalar();
        using var conditional = (1 + w).ToScalar();
        using var unconditional = w.ToScalar();
        var eps = empty_like(x);
        for (long start = 0; start < batch; start += chunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var chunkScope = NewDisposeScope();
            long n = Math.Min(chunk, batch - start);
            var xc = x.narrow(0, start, n);
            var cc = labels.narrow(0, start, n);
            using var trunk = network.Trunk(xc);
            Tensor e;
            if (w == 0)
            {
                e = network.Head(trunk, cc, full(new[] { n }, tScalar, x.dtype, x.device));
            }
            else
            {
                // First half conditional (mask 0), second half unconditional (mask 1), sharing the trunk.
                // arange(n) would build three temporary Scalars (see TorchScalars): hold them.
                using var end = n.ToScalar();
                var rows = arange(TorchScalars.Zero, end, TorchScalars.One, ScalarType.Int64, x.device).repeat(2);
                using var doubled = trunk.Select(rows);
                var mask = cat([zeros(n, x.dtype, x.device), ones(n, x.dtype, x.device)]);
                var both = network.Head(doubled, cat([cc, cc]), full(new[] { 2 * n }, tScalar, x.dtype, x.device), mask);
                e = both.narrow(0, 0, n).mul(conditional).add(both.narrow(0, n, n).mul(unconditional), TorchScalars.MinusOne);
            }
            eps.narrow(0, start, n).copy_(e);
        }
        return eps.MoveToOuterDisposeScope();
    }

    /// <summary>Disposes the private copy, if any (never the model passed in).</summary>
    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        copy?.Dispose();
    }

    // A ConditionalUNet always has parameters: none left means it was disposed.
    private static TorchSharp.Modules.Parameter FirstParameter(ConditionalUNet model) => model.parameters().FirstOrDefault()
        ?? throw new ObjectDisposedException(nameof(ConditionalUNet), "The model passed to the sampler was disposed.");
}
