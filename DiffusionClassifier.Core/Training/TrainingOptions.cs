using System.Text.Json.Serialization;
using static System.FormattableString;

namespace DiffusionClassifier.Training;

/// <summary>
/// Settings of a <see cref="DiffusionTrainer"/> run. The defaults follow the reference recipe (docs/algorithm.md §3:
/// Adam, lr 1e-4 decayed linearly per epoch, label drop 0.1) except for the epoch count, the batch size and the
/// EMA of the weights, which are chosen for a CPU run. Call <see cref="Validate"/> (the trainer does) to check them.
/// </summary>
/// <remarks>Thread safety: an immutable record, safe to share; derive variants with <c>with</c>.</remarks>
public sealed record TrainingOptions
{
    /// <summary>Passes over the training data. Default 20 (the reference classifier model trained 50).</summary>
    public int Epochs { get; init; } = 20;

    /// <summary>Images per optimizer step. Default 128 (the reference used 512 on a GPU; large batches are slow on
    /// CPUs). The last batch of an epoch may be smaller (no images are dropped).</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Initial Adam learning rate. Default 1e-4 (reference). Adam uses beta1 0.9, beta2 0.999, eps 1e-8
    /// (PyTorch's defaults, as the reference).</summary>
    public double LearningRate { get; init; } = 1e-4;

    /// <summary>How the learning rate decays. Default <see cref="Training.LearningRateSchedule.LinearPerEpoch"/>
    /// (reference).</summary>
    [JsonConverter(typeof(JsonStringEnumConverter<LearningRateSchedule>))]
    public LearningRateSchedule LearningRateSchedule { get; init; } = LearningRateSchedule.LinearPerEpoch;

    /// <summary>Steps of linear warm-up in front of the schedule: step s (zero-based) of the first W trains at
    /// <c>(s + 1) / W</c> times the schedule's rate (Goyal et al., 2017), which keeps Adam's first steps small while its
    /// moment estimates settle. Default 0 (no warm-up, the reference recipe). A W that is not below the run's steps
    /// makes every step a warm-up step; the trainer logs a warning then.</summary>
    public int WarmupSteps { get; init; }

    /// <summary>Probability that a sample's label is dropped (the unconditional case of classifier-free guidance),
    /// drawn independently per sample and step. Default 0.1 (reference).</summary>
    public double LabelDropProbability { get; init; } = 0.1;

    /// <summary>Seed of the trainer's random generator, which draws the shuffling, timesteps, noise and label drops.
    /// Default 0. The network's initial weights are not drawn by the trainer: seed them where the model is
    /// built.</summary>
    public long Seed { get; init; }

    /// <summary>Device to train on: auto, cpu, cuda or cuda:N (<see cref="Devices.DeviceSelection"/>); null (default)
    /// trains where the model is. Unlike the classifier and the sampler, which run a private copy, the trainer moves the
    /// model there: it trains the caller's weights. Random numbers are always drawn on the CPU so that a run is the same
    /// on every device.</summary>
    public string? Device { get; init; }

    /// <summary>Where checkpoints are written (atomically, one file, overwritten each time); null (default) writes
    /// none. A checkpoint is also a loadable model file.</summary>
    public string? CheckpointPath { get; init; }

    /// <summary>Write a checkpoint every this many optimizer steps; 0 (default) disables the step trigger.
    /// Checkpoints are also written at the end of every epoch, on cancellation and by
    /// <see cref="CheckpointInterval"/>.</summary>
    public int CheckpointEverySteps { get; init; }

    /// <summary>Write a checkpoint when this much time has passed since the last one; <see cref="TimeSpan.Zero"/>
    /// disables the time trigger. Default 10 minutes (an MNIST epoch takes tens of minutes on a CPU).</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Decay of the exponential moving average (EMA) of the weights, in [0, 1); 0 disables it. Default 0.999.
    /// After the n-th update the EMA is <c>d * ema + (1 - d) * w</c> with <c>d = min(EmaDecay, (1 + n) / (10 + n))</c>
    /// (the usual warm-up, so that short runs are not dominated by the initial weights); floating buffers (BatchNorm
    /// statistics) are averaged too, integer buffers copied. EMA weights usually sample and classify better than the
    /// raw weights; they are kept in checkpoints and exported by <see cref="DiffusionTrainer.SaveModel"/>.</summary>
    public double EmaDecay { get; init; } = 0.999;

    /// <summary>Clip the global L2 norm of the gradients to this value before each step; 0 (default, reference)
    /// disables clipping.</summary>
    public double GradientClipNorm { get; init; }

    /// <summary>Min-SNR-gamma loss weighting (Hang et al., 2023): each sample's noise MSE is weighted by
    /// min(SNR_t, gamma) / SNR_t with SNR_t = alphabar_t / (1 - alphabar_t), which damps the low-t samples whose
    /// noise is nearly impossible to predict. Null (default, reference): the plain MSE. The paper uses gamma = 5.</summary>
    public double? MinSnrGamma { get; init; }

    /// <summary>Weight of a discriminative term added to the noise loss; 0 (default, reference) turns it off. The term
    /// is the cross-entropy of each image's label under softmax(−<see cref="DiscriminativeScale"/> · e_c), where e_c is
    /// the summed squared error of the noise predicted with label c at the image's own (t, ε): the classifier's own score
    /// for one sample (docs/algorithm.md §5). It costs one network head per class per image, about 7 times a plain step
    /// at F = 48. The reported loss includes the weighted term. Meant for a short fine-tune of a trained model;
    /// docs/training.md has the measured effect.</summary>
    public double DiscriminativeWeight { get; init; }

    /// <summary>Scale of the summed squared errors in the discriminative term's logits (see
    /// <see cref="DiscriminativeWeight"/>). Default 1: the paper's softmax(−‖ε − ε_θ‖²) for one sample, which is also the
    /// scale that fits one sample's errors best on validation (docs/training.md).</summary>
    public double DiscriminativeScale { get; init; } = 1;

    /// <summary>Samples (t, ε) per image in the discriminative term (see <see cref="DiscriminativeWeight"/>). Default 1:
    /// the term scores each image at the (t, ε) of its noise loss. K &gt; 1 draws K more per image, the timesteps
    /// stratified as the classifier's, and takes the cross-entropy of the errors averaged over them: the classifier's
    /// statistic at N = K rather than one sample's. It costs K times the term of K = 1.</summary>
    public int DiscriminativeSamples { get; init; } = 1;

    /// <summary>If set, <c>torch.set_num_threads</c> is called with it when training starts (a process-wide setting).
    /// Default null: leave libtorch's thread count alone.</summary>
    public int? NumThreads { get; init; }

    /// <summary>Throws if a setting is out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range; the parameter name is the property name
    /// and the message states the value and the allowed range.</exception>
    /// <exception cref="ArgumentException"><see cref="Device"/> or <see cref="CheckpointPath"/> is not valid.</exception>
    public void Validate()
    {
        if (Epochs < 1)
            throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, Invariant($"Epochs must be at least 1 but is {Epochs}."));
        if (BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, Invariant($"BatchSize must be at least 1 but is {BatchSize}."));
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, Invariant($"LearningRate must be a positive finite number but is {LearningRate}."));
        if (!Enum.IsDefined(LearningRateSchedule))
            throw new ArgumentOutOfRangeException(nameof(LearningRateSchedule), LearningRateSchedule, Invariant($"LearningRateSchedule {(int)LearningRateSchedule} is not defined."));
        if (WarmupSteps < 0)
            throw new ArgumentOutOfRangeException(nameof(WarmupSteps), WarmupSteps, Invariant($"WarmupSteps must be 0 (off) or positive but is {WarmupSteps}."));
        if (!(LabelDropProbability >= 0 && LabelDropProbability <= 1))
            throw new ArgumentOutOfRangeException(nameof(LabelDropProbability), LabelDropProbability, Invariant($"LabelDropProbability must lie in [0, 1] but is {LabelDropProbability}."));
        Devices.DeviceSelection.Validate(Device, nameof(Device));
        if (CheckpointPath is not null && string.IsNullOrWhiteSpace(CheckpointPath))
            throw new ArgumentException(Invariant($"CheckpointPath must be null or a file path but is '{CheckpointPath}'."), nameof(CheckpointPath));
        if (CheckpointEverySteps < 0)
            throw new ArgumentOutOfRangeException(nameof(CheckpointEverySteps), CheckpointEverySteps, Invariant($"CheckpointEverySteps must be 0 (off) or positive but is {CheckpointEverySteps}."));
        if (CheckpointInterval < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(CheckpointInterval), CheckpointInterval, Invariant($"CheckpointInterval must be zero (off) or positive but is {CheckpointInterval}."));
        if (!(EmaDecay >= 0 && EmaDecay < 1))
            throw new ArgumentOutOfRangeException(nameof(EmaDecay), EmaDecay, Invariant($"EmaDecay must lie in [0, 1) (0 = off) but is {EmaDecay}."));
        if (!(GradientClipNorm >= 0) || double.IsInfinity(GradientClipNorm))
            throw new ArgumentOutOfRangeException(nameof(GradientClipNorm), GradientClipNorm, Invariant($"GradientClipNorm must be 0 (off) or a positive finite number but is {GradientClipNorm}."));
        if (MinSnrGamma is { } gamma && (!(gamma > 0) || double.IsInfinity(gamma)))
            throw new ArgumentOutOfRangeException(nameof(MinSnrGamma), MinSnrGamma, Invariant($"MinSnrGamma must be null (off) or a positive finite number but is {gamma}."));
        if (!(DiscriminativeWeight >= 0) || double.IsInfinity(DiscriminativeWeight))
            throw new ArgumentOutOfRangeException(nameof(DiscriminativeWeight), DiscriminativeWeight, Invariant($"DiscriminativeWeight must be 0 (off) or a positive finite number but is {DiscriminativeWeight}."));
        if (!(DiscriminativeScale > 0) || double.IsInfinity(DiscriminativeScale))
            throw new ArgumentOutOfRangeException(nameof(DiscriminativeScale), DiscriminativeScale, Invariant($"DiscriminativeScale must be a positive finite number but is {DiscriminativeScale}."));
        if (DiscriminativeSamples < 1)
            throw new ArgumentOutOfRangeException(nameof(DiscriminativeSamples), DiscriminativeSamples, Invariant($"DiscriminativeSamples must be at least 1 but is {DiscriminativeSamples}."));
        if (NumThreads is < 1)
            throw new ArgumentOutOfRangeException(nameof(NumThreads), NumThreads, Invariant($"NumThreads must be null or at least 1 but is {NumThreads}."));
    }

    /// <summary>
    /// The learning rate of a step under <see cref="LearningRateSchedule"/>, scaled by (s + 1) / W during the first
    /// <see cref="WarmupSteps"/> W steps.
    /// </summary>
    /// <param name="epoch">Zero-based epoch index, 0..Epochs-1.</param>
    /// <param name="globalStep">Zero-based step index over the whole run, 0..totalSteps-1.</param>
    /// <param name="totalSteps">Steps of the whole run (steps per epoch times <see cref="Epochs"/>).</param>
    /// <returns>The learning rate.</returns>
    public double LearningRateAt(int epoch, long globalStep, long totalSteps)
    {
        if (epoch < 0 || epoch >= Epochs)
            throw new ArgumentOutOfRangeException(nameof(epoch), epoch, $"epoch must lie in 0..{Epochs - 1}.");
        if (totalSteps < 1)
            throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "totalSteps must be at least 1.");
        if (globalStep < 0 || globalStep >= totalSteps)
            throw new ArgumentOutOfRangeException(nameof(globalStep), globalStep, $"globalStep must lie in 0..{totalSteps - 1}.");
        double rate = LearningRateSchedule switch
        {
            LearningRateSchedule.LinearPerEpoch => LearningRate * (1 - (double)epoch / Epochs),
            LearningRateSchedule.LinearPerStep => LearningRate * (1 - (double)globalStep / totalSteps),
            LearningRateSchedule.Cosine => LearningRate * (1 + Math.Cos(Math.PI * CosineProgress(globalStep, totalSteps))) / 2,
            _ => LearningRate,
        };
        return globalStep < WarmupSteps ? rate * (globalStep + 1) / WarmupSteps : rate;
    }

    // The cosine runs over the steps after the warm-up, so that the full rate is reached before the decay starts.
    private double CosineProgress(long globalStep, long totalSteps) =>
        totalSteps > WarmupSteps ? Math.Max(0, globalStep - WarmupSteps) / (double)(totalSteps - WarmupSteps) : 0;
}
