using System.Diagnostics;
using System.Globalization;
using DiffusionClassifier.Guards;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging;
using TorchSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Training;

/// <summary>
/// Trains a <see cref="ConditionalUNet"/> as a class-conditional DDPM with label dropout (docs/algorithm.md §3): per
/// batch t ~ U{1..T}, eps ~ N(0, I), x_t = <see cref="DdpmScheduler.AddNoise"/>, each label dropped with probability
/// <see cref="TrainingOptions.LabelDropProbability"/>, loss = MSE(eps, net(x_t, c, t/T, mask)), one Adam step.
/// Optional terms: min-SNR-gamma weighting (<see cref="TrainingOptions.MinSnrGamma"/>) and a discriminative
/// cross-entropy over every class's error (<see cref="TrainingOptions.DiscriminativeWeight"/>).
/// </summary>
/// <remarks>
/// <para>All randomness (the per-epoch shuffle, t, eps, the label mask) comes from one seeded CPU
/// <see cref="Generator"/> in a fixed order, so a run is reproducible, and a run resumed from a checkpoint
/// (<see cref="LoadCheckpoint"/>, <see cref="FromCheckpoint"/>) continues exactly as the uninterrupted run would.</para>
/// <para>A checkpoint is one model file written atomically (<see cref="ModelFile"/>): the raw weights as the model,
/// plus extras: Adam's per-parameter state (exp_avg, exp_avg_sq, step), the EMA weights, the generator state, the
/// current epoch's item order and the position, and the options. <see cref="ModelFile.Load"/> reads it as a plain
/// model.</para>
/// <para>Ownership: the trainer owns its optimizer state, EMA tensors and generator; it does not own the model passed
/// to the constructor (it moves it to <see cref="TrainingOptions.Device"/> and changes its weights), but it owns the
/// model it builds in <see cref="FromCheckpoint"/>. Dispose it. Not thread-safe: one <see cref="Train"/> at a time,
/// and nothing else may use the model meanwhile.</para>
/// </remarks>
public sealed class DiffusionTrainer : IDisposable
{
    private const double AdamBeta1 = 0.9, AdamBeta2 = 0.999, AdamEps = 1e-8;

    private readonly TrainingOptions options;
    private readonly ILogger logger;
    private readonly Device device;
    private readonly bool ownsModel;
    private readonly List<(string Name, Parameter Parameter)> parameters;
    private readonly AdamOptimizer optimizer;
    private readonly Generator generator;
    private ExponentialMovingAverage? ema;
    // MinSnrWeight for t = 0..T on the training device, made on the first min-SNR step; indexed per step.
    private Tensor? minSnrWeights;
    private long[]? permutation;
    private int epoch;
    private int stepInEpoch;
    private long globalStep;
    private double epochLossSum;
    private long dataCount;
    private string? dataFingerprint;
    private bool disposed;

    /// <summary>Creates a trainer for <paramref name="model"/> starting from its current weights.</summary>
    /// <param name="model">The network to train; moved to <see cref="TrainingOptions.Device"/>; not owned.</param>
    /// <param name="scheduler">The noise schedule.</param>
    /// <param name="options">The settings; validated and copied (later changes to the object have no effect).</param>
    /// <param name="logger">Optional logger for start, epoch, checkpoint and cancellation messages.</param>
    /// <exception cref="ArgumentException">An option is invalid (see <see cref="TrainingOptions.Validate"/>), or the
    /// device is not available.</exception>
    public DiffusionTrainer(ConditionalUNet model, DdpmScheduler scheduler, TrainingOptions options, ILogger<DiffusionTrainer>? logger = null)
        : this(model, scheduler, options, logger, ownsModel: false)
    {
    }

    private DiffusionTrainer(ConditionalUNet model, DdpmScheduler scheduler, TrainingOptions options, ILogger<DiffusionTrainer>? logger, bool ownsModel)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        this.logger = logger ?? NullLogger<DiffusionTrainer>.Instance;
        device = Devices.DeviceSelection.ResolveOr(this.options.Device, model.parameters().First().device, nameof(options));
        this.logger.LogDebug("{Allocator}.", Devices.NativeAllocator.EnsureTuned());
        Model = model;
        Scheduler = scheduler;
        model.to(device);
        parameters = model.named_parameters().ToList();
        optimizer = new AdamOptimizer(parameters.Select(p => p.Parameter).ToList(), this.options.LearningRate, AdamBeta1, AdamBeta2, AdamEps);
        generator = new Generator(unchecked((ulong)this.options.Seed), CPU);
        if (this.options.EmaDecay > 0)
            ema = new ExponentialMovingAverage(model, this.options.EmaDecay);
        this.ownsModel = ownsModel;
    }

    /// <summary>
    /// Rebuilds the model from a checkpoint and returns a trainer positioned where the checkpoint left off. The trainer
    /// owns that model (see <see cref="Model"/>).
    /// </summary>
    /// <param name="checkpointPath">A checkpoint written by a trainer.</param>
    /// <param name="options">The settings to continue with; null uses the ones stored in the checkpoint.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The trainer; dispose it.</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="checkpointPath"/>.</exception>
    /// <exception cref="InvalidDataException">The file is damaged, not a training checkpoint, or does not fit the
    /// options (for example another batch size).</exception>
    public static DiffusionTrainer FromCheckpoint(string checkpointPath, TrainingOptions? options = null, ILogger<DiffusionTrainer>? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkpointPath);
        using var checkpoint = TrainingCheckpoint.Load(checkpointPath);
        return Resume(checkpoint, options, logger);
    }

    /// <summary>
    /// Builds the model of a checkpoint already read and returns a trainer positioned where it left off. The trainer owns
    /// that model; the checkpoint stays usable (and still needs disposing).
    /// </summary>
    /// <param name="checkpoint">A checkpoint from <see cref="TrainingCheckpoint.Load"/>.</param>
    /// <param name="options">The settings to continue with; null uses <see cref="TrainingCheckpoint.Options"/>.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The trainer; dispose it.</returns>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid.</exception>
    /// <exception cref="InvalidDataException">The checkpoint does not fit <paramref name="options"/> (another batch size,
    /// or more epochs done than the options ask for).</exception>
    internal static DiffusionTrainer Resume(TrainingCheckpoint checkpoint, TrainingOptions? options = null, ILogger<DiffusionTrainer>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var model = new ConditionalUNet(checkpoint.Config);
        DiffusionTrainer? trainer = null;
        try
        {
            trainer = new DiffusionTrainer(model, checkpoint.Scheduler, options ?? checkpoint.Options, logger, ownsModel: true);
            trainer.Restore(checkpoint);
            return trainer;
        }
        catch
        {
            if (trainer is not null) trainer.Dispose();
            else model.Dispose();
            throw;
        }
    }

    /// <summary>The network being trained.</summary>
    public ConditionalUNet Model { get; }

    /// <summary>The noise schedule.</summary>
    public DdpmScheduler Scheduler { get; }

    /// <summary>A copy of the settings in use.</summary>
    public TrainingOptions Options => options;

    /// <summary>Epochs completed so far (including those before a resume).</summary>
    public int CompletedEpochs => epoch;

    /// <summary>Optimizer steps done so far (including those before a resume).</summary>
    public long CompletedSteps => globalStep;

    /// <summary>Whether an exponential moving average of the weights is kept (<see cref="TrainingOptions.EmaDecay"/> &gt; 0).</summary>
    public bool HasEma => ema is not null;

    /// <summary>
    /// Trains until <see cref="TrainingOptions.Epochs"/> epochs are complete, continuing from the current position
    /// (a fresh trainer starts at epoch 0; after <see cref="LoadCheckpoint"/> it continues the checkpoint's run).
    /// </summary>
    /// <param name="data">The training items; after a resume the same items as before (their count and a fingerprint of 64 evenly spaced items are checked).</param>
    /// <param name="progress">Receives a report after every step, on the training thread.</param>
    /// <param name="cancellationToken">Checked before every step. On cancellation a checkpoint is written (when
    /// <see cref="TrainingOptions.CheckpointPath"/> is set) and then <see cref="OperationCanceledException"/> is thrown;
    /// the trainer stays usable and a later <see cref="Train"/> call continues.</param>
    /// <returns>What this call did.</returns>
    /// <exception cref="ArgumentException">The data is empty, does not fit the model (shape, dtype, value range,
    /// labels), or its count or fingerprint differs from the run's being continued.</exception>
    /// <exception cref="OperationCanceledException">Cancelled (after writing the checkpoint).</exception>
    /// <exception cref="InvalidOperationException">The loss became NaN or infinite; the weights are those before the
    /// failing step and no checkpoint is written for it.</exception>
    public TrainingResult Train(ITrainingData data, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentNullException.ThrowIfNull(data);
        long n = data.Count;
        if (n < 1)
            throw new ArgumentException($"The training data is empty (Count = {n}).", nameof(data));
        if (dataCount != 0 && dataCount != n)
            throw new ArgumentException($"The training data has {n} items but the run being continued was trained on {dataCount}; resume with the same data.", nameof(data));
        string fingerprint = TrainingDataFingerprint.Compute(data);
        if (dataFingerprint is not null && dataFingerprint != fingerprint)
            throw new ArgumentException($"The training data has {n} items, as the run being continued, but other items (fingerprint {fingerprint}, the run's {dataFingerprint}); resume with the same items: same source, subset and offset.", nameof(data));
        if (options.NumThreads is int threads)
            set_num_threads(threads);

        dataCount = n;
        dataFingerprint = fingerprint;
        var run = new TrainingRun(n, options.BatchSize, options.Epochs);
        bool wasTraining = Model.training;
        Model.train();
        if (epoch < options.Epochs)
            logger.LogInformation("Training {Parameters:N0} parameters on {Items} items: epoch {Epoch}/{Epochs}, step {Step}/{TotalSteps}, batch {Batch}, device {Device}.",
                parameters.Sum(p => p.Parameter.numel()), n, epoch + 1, options.Epochs, globalStep, run.TotalSteps, options.BatchSize, device);
        if (options.WarmupSteps >= run.TotalSteps)
            logger.LogWarning("WarmupSteps {Warmup} is not below the run's {TotalSteps} steps: every step is a warm-up step, and the last one runs at {LastMultiplierNumerator}/{LastMultiplierDenominator} of the scheduled learning rate.",
                options.WarmupSteps, run.TotalSteps, run.TotalSteps, options.WarmupSteps);
        try
        {
            while (epoch < options.Epochs)
                RunEpoch(data, run, progress, cancellationToken);
        }
        finally
        {
            Model.train(wasTraining);
        }
        var total = run.Clock.Elapsed;
        return new TrainingResult(run.StepLosses.Count, run.TotalSteps, epoch, run.StepLosses, run.EpochMeans, total,
            run.ImagesRun / Math.Max(total.TotalSeconds, 1e-9));
    }

    /// <summary>The bookkeeping of one <see cref="Train"/> call.</summary>
    private sealed class TrainingRun(long items, int batchSize, int epochs)
    {
        public long Items { get; } = items;
        public int StepsPerEpoch { get; } = checked((int)((items + batchSize - 1) / batchSize));
        public long TotalSteps => (long)StepsPerEpoch * epochs;
        public List<float> StepLosses { get; } = new();
        public List<double> EpochMeans { get; } = new();
        public long ImagesRun { get; set; }
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public Stopwatch SinceCheckpoint { get; } = Stopwatch.StartNew();
        public double ImagesPerSecond => ImagesRun / Math.Max(Clock.Elapsed.TotalSeconds, 1e-9);
    }

    /// <summary>Runs the rest of the current epoch (from <see cref="stepInEpoch"/>), then closes it.</summary>
    private void RunEpoch(ITrainingData data, TrainingRun run, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        if (permutation is null)
        {
            using var order = randperm(run.Items, generator: generator);
            permutation = order.data<long>().ToArray();
        }
        while (stepInEpoch < run.StepsPerEpoch)
        {
            if (cancellationToken.IsCancellationRequested)
                Cancel(run, cancellationToken);

            int start = stepInEpoch * options.BatchSize;
            int count = (int)Math.Min(options.BatchSize, run.Items - start);
            var indices = permutation.AsSpan(start, count).ToArray();
            float loss = Step(data, indices, options.LearningRateAt(epoch, globalStep, run.TotalSteps));

            stepInEpoch++;
            globalStep++;
            epochLossSum += loss;
            run.ImagesRun += count;
            run.StepLosses.Add(loss);
            if (progress is not null)
                Report(progress, run, loss);
            if (stepInEpoch < run.StepsPerEpoch && CheckpointDue(run))
            {
                SaveCheckpoint(options.CheckpointPath!);
                run.SinceCheckpoint.Restart();
            }
        }

        double mean = epochLossSum / run.StepsPerEpoch;
        var completed = Snapshot(run, run.StepLosses.Count > 0 ? run.StepLosses[^1] : float.NaN);
        run.EpochMeans.Add(mean);
        epoch++;
        stepInEpoch = 0;
        epochLossSum = 0;
        permutation = null;
        logger.LogInformation("Epoch {Epoch}/{Epochs}: mean loss {Loss:F5}, {Rate:F1} images/s, elapsed {Elapsed}.",
            epoch, options.Epochs, mean, run.ImagesPerSecond, run.Clock.Elapsed);
        if (options.CheckpointPath is { } epochPath)
        {
            SaveCheckpoint(epochPath);
            run.SinceCheckpoint.Restart();
        }
        EpochCompleted?.Invoke(this, completed);
    }

    /// <summary>Writes the checkpoint (when there is a path) and throws <see cref="OperationCanceledException"/>.</summary>
    private void Cancel(TrainingRun run, CancellationToken cancellationToken)
    {
        if (options.CheckpointPath is { } cancelPath)
            SaveCheckpoint(cancelPath);
        logger.LogWarning("Training cancelled at epoch {Epoch}, step {Step}/{TotalSteps}{Saved}.", epoch + 1, globalStep, run.TotalSteps,
            options.CheckpointPath is null ? "" : $"; checkpoint written to {options.CheckpointPath}");
        cancellationToken.ThrowIfCancellationRequested();
    }

    private void Report(IProgress<TrainingProgress> progress, TrainingRun run, float loss) => progress.Report(Snapshot(run, loss));

    /// <summary>The progress after the step just run (its loss <paramref name="loss"/>), before the epoch is closed.</summary>
    private TrainingProgress Snapshot(TrainingRun run, float loss)
    {
        var elapsed = run.Clock.Elapsed;
        double seconds = Math.Max(elapsed.TotalSeconds, 1e-9);
        var remaining = TimeSpan.FromSeconds(seconds / Math.Max(run.StepLosses.Count, 1) * (run.TotalSteps - globalStep));
        return new TrainingProgress(epoch + 1, options.Epochs, stepInEpoch, run.StepsPerEpoch, globalStep, run.TotalSteps,
            loss, stepInEpoch > 0 ? epochLossSum / stepInEpoch : double.NaN, optimizer.LearningRate, run.ImagesRun / seconds, elapsed, remaining);
    }

    /// <summary>Whether a mid-epoch checkpoint is due (every so many steps, or after the interval).</summary>
    private bool CheckpointDue(TrainingRun run) =>
        options.CheckpointPath is not null &&
        ((options.CheckpointEverySteps > 0 && globalStep % options.CheckpointEverySteps == 0) ||
         (options.CheckpointInterval > TimeSpan.Zero && run.SinceCheckpoint.Elapsed >= options.CheckpointInterval));

    /// <summary>
    /// Writes a checkpoint of the current state to <paramref name="path"/> atomically (the previous file stays intact
    /// until the new one is complete). The file is also a model file with the raw weights.
    /// </summary>
    /// <param name="path">Target file.</param>
    public void SaveCheckpoint(string path)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var state = new TrainingState(TrainingCheckpoint.Version, epoch, stepInEpoch, globalStep, options.BatchSize, dataCount,
            epochLossSum, ema?.Updates ?? -1, permutation is not null, dataFingerprint);
        using var rng = generator.get_state();
        var adam = parameters.Select((p, i) => (p.Name, optimizer.States[i])).ToList();
        TrainingCheckpoint.Save(path, Model, Scheduler, options, state, adam, ema?.Shadow, rng, permutation);
        logger.LogDebug("Checkpoint written to {Path} at epoch {Epoch}, step {Step}.", path, epoch + 1, globalStep);
    }

    /// <summary>
    /// Restores the complete training state from a checkpoint into this trainer (weights, optimizer, EMA, generator,
    /// position), so that <see cref="Train"/> continues that run. Everything is checked before anything is changed: on
    /// an exception the trainer and the file are untouched.
    /// </summary>
    /// <param name="checkpointPath">A checkpoint written by a trainer for the same architecture and schedule.</param>
    /// <exception cref="FileNotFoundException">No file at <paramref name="checkpointPath"/>.</exception>
    /// <exception cref="InvalidDataException">The file is damaged, not a training checkpoint, for another architecture or
    /// schedule, or for another batch size; the message says which.</exception>
    public void LoadCheckpoint(string checkpointPath)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentException.ThrowIfNullOrEmpty(checkpointPath);
        using var checkpoint = TrainingCheckpoint.Load(checkpointPath);
        Restore(checkpoint);
    }

    /// <summary>
    /// Raised on the training thread after each completed epoch, after that epoch's checkpoint is written: for example to
    /// evaluate <see cref="CreateModel"/> on a validation split. Time spent in handlers counts in the training time.
    /// The argument is the progress after the epoch's last step: <see cref="TrainingProgress.Epoch"/> is the epoch just
    /// completed and <see cref="TrainingProgress.EpochMeanLoss"/> its mean loss.
    /// </summary>
    public event EventHandler<TrainingProgress>? EpochCompleted;

    /// <summary>A new network in eval mode holding the current EMA (or raw) weights; the caller disposes it.</summary>
    /// <param name="useEma">The EMA of the weights (as <see cref="SaveModel"/> exports by default) or the raw weights.</param>
    /// <returns>The copy, on the trainer's device.</returns>
    /// <exception cref="InvalidOperationException"><paramref name="useEma"/> is true but the EMA is off.</exception>
    public ConditionalUNet CreateModel(bool useEma)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (useEma && ema is null)
            throw new InvalidOperationException("The EMA of the weights is off (EmaDecay = 0); use the raw weights (useEma: false).");
        var copy = new ConditionalUNet(Model.Config);
        copy.to(device);
        using (no_grad())
        {
            if (useEma)
                ModelFile.CopyStateDict(copy, ema!.Shadow);
            else
                ModelFile.CopyStateDict(copy, Model.state_dict());
        }
        copy.eval();
        return copy;
    }

    /// <summary>Exports the current weights as a plain model file (written atomically).</summary>
    /// <param name="path">Target file.</param>
    /// <param name="useEma">True to export the exponential moving average of the weights (recommended for sampling and
    /// classification), false for the raw weights.</param>
    /// <exception cref="InvalidOperationException"><paramref name="useEma"/> is true but the EMA is off.</exception>
    public void SaveModel(string path, bool useEma)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["weights"] = useEma ? "ema" : "raw",
            ["trained_epochs"] = epoch.ToString(CultureInfo.InvariantCulture),
            ["trained_steps"] = globalStep.ToString(CultureInfo.InvariantCulture),
        };
        if (!useEma)
        {
            ModelFile.Save(path, Model, Scheduler, metadata);
            return;
        }
        if (ema is null)
            throw new InvalidOperationException("The EMA of the weights is off (EmaDecay = 0); export the raw weights with useEma: false.");
        // Swap the EMA weights in for the save and restore the raw ones afterwards.
        using var scope = NewDisposeScope();
        var raw = Model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone(), StringComparer.Ordinal);
        try
        {
            ModelFile.CopyStateDict(Model, ema.Shadow);
            ModelFile.Save(path, Model, Scheduler, metadata);
        }
        finally
        {
            ModelFile.CopyStateDict(Model, raw);
        }
    }

    /// <summary>Disposes the optimizer state, EMA and generator, and the model if this trainer built it.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        optimizer.Dispose();
        ema?.Dispose();
        minSnrWeights?.Dispose();
        generator.Dispose();
        if (ownsModel) Model.Dispose();
    }

    /// <summary>
    /// Draws one step's randomness from the trainer's generator, in the order training uses: timesteps int64 [B] in
    /// 1..T, noise float32 [B, C, H, W], label mask float32 [B] (1 = drop). CPU tensors the caller owns.
    /// </summary>
    internal (Tensor Timesteps, Tensor Noise, Tensor Mask) DrawNoise(long batch)
    {
        var c = Model.Config;
        using var scope = NewDisposeScope();
        var t = Scheduler.SampleTimesteps(batch, generator);
        var eps = randn(new[] { batch, c.InChannels, c.Height, c.Width }, ScalarType.Float32, generator: generator);
        using var dropProbability = options.LabelDropProbability.ToScalar(); // held: see TorchScalars
        var mask = rand(new[] { batch }, ScalarType.Float32, generator: generator).lt(dropProbability).to(ScalarType.Float32);
        return (t.MoveToOuterDisposeScope(), eps.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope());
    }

    private float Step(ITrainingData data, long[] indices, double learningRate)
    {
        // The caller may be inside a no_grad or inference scope; training needs autograd.
        using var grad = enable_grad();
        using var scope = NewDisposeScope();
        var (images, labels) = data.GetBatch(indices);
        ValidateBatch(images, labels, indices.Length);
        images = images.to(device);
        labels = labels.to(device);
        var (t, eps, mask) = DrawNoise(indices.Length);
        eps = eps.to(device);
        var tDevice = t.to(device);
        var xt = Scheduler.AddNoise(images, eps, tDevice);
        var tNorm = Scheduler.NormalizeTimesteps(t).to(device);

        optimizer.LearningRate = learningRate;
        optimizer.ZeroGrad();
        var loss = NoiseLoss(Model.forward(xt, labels, tNorm, mask.to(device)), eps, tDevice);
        float value = loss.item<float>();
        if (options.DiscriminativeWeight > 0)
            value = (float)(value + options.DiscriminativeWeight * (options.DiscriminativeSamples == 1
                ? DiscriminativeStep(Model, xt, eps, labels, tNorm, options.DiscriminativeScale, options.DiscriminativeWeight)
                : MultiSampleDiscriminativeStep(images, labels)));
        if (!float.IsFinite(value))
            throw new InvalidOperationException($"The loss became {value} at epoch {epoch + 1}, step {globalStep + 1}; training stopped before the update (try a lower LearningRate or GradientClipNorm).");
        loss.backward();
        if (options.GradientClipNorm > 0)
            nn.utils.clip_grad_norm_(parameters.Select(p => p.Parameter), options.GradientClipNorm);
        optimizer.Step();
        ema?.Update(Model);
        return value;
    }

    /// <summary>
    /// The discriminative term with <see cref="TrainingOptions.DiscriminativeSamples"/> = K &gt; 1: K fresh (t, ε) per
    /// image, drawn after the step's own draws, the timesteps stratified as the classifier's are (the k-th uniform in
    /// the k-th of K equal parts of 1..T), so that the averaged error is the estimator's statistic at N = K.
    /// </summary>
    private double MultiSampleDiscriminativeStep(Tensor images, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var c = Model.Config;
        int k = options.DiscriminativeSamples;
        long b = images.shape[0];
        var t = StratifiedTimesteps(b, k, Scheduler.NumTrainTimesteps, generator);
        var eps = randn(new[] { b * k, c.InChannels, c.Height, c.Width }, ScalarType.Float32, generator: generator).to(device);
        var tDevice = t.to(device);
        var xt = Scheduler.AddNoise(images.repeat_interleave(k, 0), eps, tDevice);
        var tNorm = Scheduler.NormalizeTimesteps(t).to(device);
        return DiscriminativeStep(Model, xt, eps, labels, tNorm, options.DiscriminativeScale, options.DiscriminativeWeight, samplesPerImage: k);
    }

    /// <summary>Timesteps int64 [B · K] in 1..T, image-major: image b's k-th is uniform in the k-th of K equal
    /// parts of 1..T (⌊(k + u) T / K⌋ + 1, u uniform in [0, 1)), drawn from <paramref name="generator"/>.</summary>
    internal static Tensor StratifiedTimesteps(long batch, int samples, int numTrainTimesteps, Generator generator)
    {
        using var scope = NewDisposeScope();
        var u = rand(new[] { batch, (long)samples }, ScalarType.Float64, generator: generator);
        var t = ((arange(samples, ScalarType.Float64) + u) * ((double)numTrainTimesteps / samples)).floor() + 1;
        return t.clamp(1, numTrainTimesteps).to(ScalarType.Int64).view(batch * samples).MoveToOuterDisposeScope();
    }

    /// <summary>The noise loss: the MSE, or the min-SNR-gamma loss when <see cref="TrainingOptions.MinSnrGamma"/> is set.</summary>
    private Tensor NoiseLoss(Tensor predicted, Tensor eps, Tensor timesteps) => options.MinSnrGamma is { } gamma
        ? MinSnrLoss(predicted, eps, timesteps, gamma)
        : nn.functional.mse_loss(predicted, eps);

    /// <summary>
    /// Accumulates <c>weight ×</c> the gradient of the discriminative term into the parameters and returns the term's
    /// value. The term is computed as the classifier computes its scores: in eval mode (BatchNorm uses its running
    /// statistics and does not update them), on its own trunk, so that it does not depend on how the heads are grouped.
    /// </summary>
    internal static double DiscriminativeStep(ConditionalUNet model, Tensor xt, Tensor eps, Tensor labels, Tensor tNorm, double scale, double weight,
        long? chunkImages = null, int samplesPerImage = 1)
    {
        bool training = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var trunk = model.Trunk(xt);
            double value = DiscriminativeBackward(model, trunk, eps, labels, tNorm, scale, weight, out var trunkGrads, chunkImages, samplesPerImage);
            // The trunk's share enters through a surrogate: d(Σ trunk·g)/dθ = Σ g·dtrunk/dθ.
            var surrogate = trunk.Tensors.Zip(trunkGrads, (a, g) => (a * g).sum()).Aggregate((a, b) => a + b);
            surrogate.backward();
            return value;
        }
        finally
        {
            model.train(training);
        }
    }

    /// <summary>
    /// The discriminative term of <see cref="TrainingOptions.DiscriminativeWeight"/> and its gradient. The term is the
    /// mean over the batch of −log softmax(−scale · e)[label], with e_c = Σ (ε_θ(x_t, c, t) − ε)² over the pixels
    /// (averaged over the image's <paramref name="samplesPerImage"/> rows),
    /// every class's head run on the image's own trunk (the label is never dropped here), in the model's current mode. The heads run a few images at
    /// a time on detached copies of the trunk, so that no activation outgrows glibc's mmap threshold (one batch of
    /// B · classes rows ran 30 times slower, in page faults): <c>weight ×</c> the term's gradient is accumulated into the
    /// head's parameters, and its gradient with respect to the trunk's four tensors is returned for the caller to send
    /// through the trunk.
    /// </summary>
    /// <param name="model">The network.</param>
    /// <param name="trunk">The trunk of the noisy images x_t, batch B · K (K = <paramref name="samplesPerImage"/>),
    /// image-major.</param>
    /// <param name="eps">The noise added to each row, [B · K, C, H, W].</param>
    /// <param name="labels">The true labels, int64 [B].</param>
    /// <param name="tNorm">Normalised timesteps [B · K].</param>
    /// <param name="scale">The logits' scale.</param>
    /// <param name="weight">The term's weight in the loss.</param>
    /// <param name="trunkGrads">The gradient of <c>weight ×</c> the term with respect to <see cref="UNetTrunk.Tensors"/>,
    /// in their order; in the caller's dispose scope.</param>
    /// <param name="chunkImages">Images per chunk; null sizes chunks by the 24 MiB rule (tests pass small values).</param>
    /// <param name="samplesPerImage">Rows (t, ε) per image, whose errors are averaged before the softmax.</param>
    /// <returns>The term's value (unweighted).</returns>
    internal static double DiscriminativeBackward(ConditionalUNet model, UNetTrunk trunk, Tensor eps, Tensor labels, Tensor tNorm, double scale,
        double weight, out Tensor[] trunkGrads, long? chunkImages = null, int samplesPerImage = 1)
    {
        var c = model.Config;
        long s = samplesPerImage, b = trunk.BatchSize / s, k = c.Classes;
        if (b * s != trunk.BatchSize || labels.shape[0] != b)
            throw new ArgumentException($"The trunk's {trunk.BatchSize} rows are not {samplesPerImage} per label of {labels.shape[0]}.", nameof(trunk));
        // The largest head activation of a row is [2F, H, W] float32; keep a chunk's under 24 MiB.
        long perImage = s * k * 2L * c.Features * c.Height * c.Width * eps.element_size();
        long chunk = Math.Clamp(chunkImages ?? (24L << 20) / perImage, 1, Math.Max(b, 1));
        double total = 0;
        var leaves = trunk.Tensors.Select(t => t.detach().requires_grad_(true)).ToArray();
        using (var detached = new UNetTrunk(leaves[0], leaves[1], leaves[2], leaves[3]).DetachFromDisposeScope())
        {
            for (long start = 0; start < b; start += chunk)
            {
                using var scope = NewDisposeScope();
                long n = Math.Min(chunk, b - start);
                var rows = arange(start * s, (start + n) * s, ScalarType.Int64, device: eps.device).repeat_interleave(k, 0);
                using var part = detached.Select(rows);
                var classes = arange(k, ScalarType.Int64, device: eps.device).repeat(n * s);
                var predicted = model.Head(part, classes, tNorm.index_select(0, rows));
                var errors = (predicted - eps.index_select(0, rows)).square().sum([1, 2, 3]).view(n, s, k).mean([1]);
                var ce = nn.functional.cross_entropy(errors * (-scale), labels.narrow(0, start, n), reduction: nn.Reduction.Sum);
                total += ce.ToDouble();
                (ce * (weight / b)).backward();
            }
            trunkGrads = leaves.Select(l => l.grad!.detach().clone()).ToArray();
        }
        return total / b;
    }

    /// <summary>The min-SNR-gamma loss: the mean over the batch of each sample's noise MSE times
    /// <see cref="MinSnrWeight"/> of its timestep.</summary>
    /// <param name="predicted">The network's noise prediction [B, C, H, W].</param>
    /// <param name="eps">The drawn noise [B, C, H, W].</param>
    /// <param name="timesteps">int64 [B] on the training device.</param>
    /// <param name="gamma"><see cref="TrainingOptions.MinSnrGamma"/>.</param>
    private Tensor MinSnrLoss(Tensor predicted, Tensor eps, Tensor timesteps, double gamma)
    {
        minSnrWeights ??= tensor(Enumerable.Range(0, Scheduler.NumTrainTimesteps + 1).Select(t => (float)MinSnrWeight(Scheduler, t, gamma)).ToArray(),
            device: device).DetachFromDisposeScope();
        var perSample = (predicted - eps).square().mean([1, 2, 3]);
        return (perSample * minSnrWeights.index_select(0, timesteps)).mean();
    }

    /// <summary>min(SNR_t, gamma) / SNR_t with SNR_t = alphabar_t / (1 - alphabar_t): the weight of a sample at
    /// timestep <paramref name="t"/> under <see cref="TrainingOptions.MinSnrGamma"/> (Hang et al., 2023, for noise
    /// prediction).</summary>
    internal static double MinSnrWeight(DdpmScheduler scheduler, int t, double gamma)
    {
        double alphaBar = scheduler.AlphaBars[t];
        double snr = alphaBar / (1 - alphaBar);
        return Math.Min(snr, gamma) / snr;
    }

    private void ValidateBatch(Tensor images, Tensor labels, int count)
    {
        var c = Model.Config;
        if (images is null || labels is null)
            throw new ArgumentException("The training data returned a null tensor.", "data");
        // The batch comes from the caller's ITrainingData: its faults are the data argument's.
        TensorGuard.Shape(images, "data", [count, c.InChannels, c.Height, c.Width]);
        TensorGuard.DType(images, "data", ScalarType.Float32);
        TensorGuard.Shape(labels, "data", [count]);
        TensorGuard.DType(labels, "data", ScalarType.Int64);
        TensorGuard.UnitRange(images, "data");
        long minLabel = labels.min().item<long>(), maxLabel = labels.max().item<long>();
        if (minLabel < 0 || maxLabel >= c.Classes)
            throw new ArgumentException($"The training data returned labels from {minLabel} to {maxLabel}; they must lie in [0, {c.Classes}).", "data");
    }

    private void Restore(TrainingCheckpoint checkpoint)
    {
        // 1. Check that the checkpoint fits this trainer (TrainingCheckpoint.Load checked the file itself); change nothing.
        string path = checkpoint.Path;
        var state = checkpoint.State;
        if (checkpoint.Config != Model.Config)
            throw new InvalidDataException($"'{path}' holds a model {checkpoint.Config} but this trainer's model is {Model.Config}.");
        if (checkpoint.Scheduler != Scheduler)
            throw new InvalidDataException($"'{path}' was trained with the schedule {checkpoint.Scheduler} but this trainer uses {Scheduler}.");
        if (state.BatchSize != options.BatchSize)
            throw new InvalidDataException($"'{path}' was trained with BatchSize {state.BatchSize} but the options say {options.BatchSize}; resume with the same batch size.");
        if (state.Epoch > options.Epochs || (state.Epoch == options.Epochs && state.StepInEpoch > 0))
            throw new InvalidDataException($"'{path}' is at epoch {state.Epoch + 1}, beyond the {options.Epochs} epochs of the options.");

        // 2. Apply.
        ModelFile.CopyStateDict(Model, checkpoint.Model.state_dict());
        var states = optimizer.States;
        using (no_grad())
        {
            for (int i = 0; i < parameters.Count; i++)
            {
                var saved = checkpoint.Adam[parameters[i].Name];
                states[i].ExpAvg.copy_(saved.ExpAvg);
                states[i].ExpAvgSq.copy_(saved.ExpAvgSq);
                states[i].Step = saved.Step;
            }
        }
        if (ema is not null)
        {
            if (checkpoint.Ema is not null)
            {
                ema.Load(checkpoint.Ema, state.EmaUpdates);
            }
            else
            {
                logger.LogWarning("'{Path}' has no EMA weights; the EMA restarts from the checkpoint's weights.", path);
                ema.Dispose();
                ema = new ExponentialMovingAverage(Model, options.EmaDecay);
            }
        }
        generator.set_state(checkpoint.RngState);
        permutation = checkpoint.Permutation?.ToArray();
        epoch = state.Epoch;
        stepInEpoch = state.StepInEpoch;
        globalStep = state.GlobalStep;
        epochLossSum = state.EpochLossSum;
        dataCount = state.DataCount;
        dataFingerprint = state.DataFingerprint;
        WarnAboutChangedOptions(path, checkpoint.Options);
        logger.LogInformation("Resumed from '{Path}': epoch {Epoch}, step {Step} ({StepInEpoch} into the epoch).", path, epoch + 1, globalStep, stepInEpoch);
    }

    private void WarnAboutChangedOptions(string path, TrainingOptions stored)
    {
        var changed = new List<string>();
        if (stored.Epochs != options.Epochs) changed.Add($"Epochs {stored.Epochs} -> {options.Epochs}");
        if (stored.LearningRate != options.LearningRate) changed.Add($"LearningRate {stored.LearningRate} -> {options.LearningRate}");
        if (stored.LearningRateSchedule != options.LearningRateSchedule) changed.Add($"LearningRateSchedule {stored.LearningRateSchedule} -> {options.LearningRateSchedule}");
        if (stored.WarmupSteps != options.WarmupSteps) changed.Add($"WarmupSteps {stored.WarmupSteps} -> {options.WarmupSteps}");
        if (stored.LabelDropProbability != options.LabelDropProbability) changed.Add($"LabelDropProbability {stored.LabelDropProbability} -> {options.LabelDropProbability}");
        if (stored.Seed != options.Seed) changed.Add($"Seed {stored.Seed} -> {options.Seed} (the stored generator state is used)");
        if (stored.EmaDecay != options.EmaDecay) changed.Add($"EmaDecay {stored.EmaDecay} -> {options.EmaDecay}");
        if (stored.MinSnrGamma != options.MinSnrGamma) changed.Add($"MinSnrGamma {stored.MinSnrGamma?.ToString() ?? "off"} -> {options.MinSnrGamma?.ToString() ?? "off"}");
        if (stored.DiscriminativeWeight != options.DiscriminativeWeight) changed.Add($"DiscriminativeWeight {stored.DiscriminativeWeight} -> {options.DiscriminativeWeight}");
        if (stored.DiscriminativeScale != options.DiscriminativeScale) changed.Add($"DiscriminativeScale {stored.DiscriminativeScale} -> {options.DiscriminativeScale}");
        if (stored.DiscriminativeSamples != options.DiscriminativeSamples) changed.Add($"DiscriminativeSamples {stored.DiscriminativeSamples} -> {options.DiscriminativeSamples}");
        if (stored.GradientClipNorm != options.GradientClipNorm) changed.Add($"GradientClipNorm {stored.GradientClipNorm} -> {options.GradientClipNorm}");
        if (changed.Count > 0)
            logger.LogWarning("Resuming '{Path}' with changed options ({Changes}): the run will differ from an uninterrupted one.", path, string.Join("; ", changed));
    }
}
