using DiffusionClassifier.Devices;

namespace DiffusionClassifier.Classification;

/// <summary>
/// How <see cref="BayesClassifier"/> estimates the class posterior. An immutable record: derive variants with
/// <c>with</c>, e.g. <c>BayesClassifierOptions.Reference with { Seed = 7 }</c>.
/// </summary>
/// <remarks>
/// The defaults (<see cref="Default"/>) are the cheaper estimator: stratified timesteps, a shared trunk and pruning
/// in stages. <see cref="Reference"/> is the estimator of the reference implementation (docs/algorithm.md §5), kept as
/// the baseline. docs/estimators.md in the repository measures each option against it on the MNIST test set.
/// <para>Thread safety: an immutable record (the <see cref="Pruning"/> schedule is immutable too); safe to share between classifiers and threads.</para>
/// </remarks>
public sealed record BayesClassifierOptions
{
    /// <summary>Largest sample count accepted by Predict; larger requests are refused before allocating anything.</summary>
    public const int MaxSamples = 100_000;

    /// <summary>Largest <see cref="ChunkSize"/> accepted.</summary>
    public const int MaxChunkSize = 65_536;

    /// <summary>How timesteps are chosen. Default <see cref="TimestepStrategy.Stratified"/>.</summary>
    public TimestepStrategy TimestepStrategy { get; init; } = TimestepStrategy.Stratified;

    /// <summary>
    /// Compute the label-independent trunk of the network once per (t, eps) sample and only the head once per class
    /// (38% of the FLOPs are in the trunk). Exact in eval mode up to float rounding. Default true.
    /// </summary>
    public bool ShareTrunk { get; init; } = true;

    /// <summary>
    /// Adaptive pruning; null spends all n samples on every class. Default: stages (0.2 n, keep 3) and
    /// (0.5 n, keep 2), about 0.39 of the noise predictions of the unpruned estimator for 10 classes.
    /// Pair it with <see cref="TimestepStrategy.Stratified"/>, whose every stage prefix is spread over 1..T: with
    /// <see cref="TimestepStrategy.Random"/> an unlucky draw of the first stage's timesteps prunes true classes
    /// (docs/estimators.md measures it).
    /// </summary>
    public PruningSchedule? Pruning { get; init; } = DefaultPruning;

    /// <summary>
    /// The sequential early exit: stop an image once a paired test says its label is decided at the stated error
    /// rate, before n samples; null spends n samples on every image. Default: <c>new EarlyExit()</c> (error rate 0.05,
    /// looks after 4 samples growing 1.5x), chosen on the validation split (docs/early-exit.md).
    /// </summary>
    public EarlyExit? EarlyExit { get; init; } = new EarlyExit();

    /// <summary>
    /// Rows (image, sample, class) per network call. Samples are never split across calls, so a call holds at least
    /// one sample with all its surviving classes even if that exceeds the chunk size. Default 64: the time per row
    /// is flat around it on small CPUs, and larger networks slow down with large batches (docs/performance.md).
    /// </summary>
    public int ChunkSize { get; init; } = 64;

    /// <summary>
    /// Seed of the per-image generator that draws the timesteps and the noise, used when Predict is given no seed.
    /// The same seed and image always give the same result, whatever the batch. Default 0.
    /// </summary>
    public long Seed { get; init; }

    /// <summary>The per-pixel loss. Default <see cref="Classification.ErrorMetric.L2"/>.</summary>
    public ErrorMetric ErrorMetric { get; init; } = ErrorMetric.L2;

    /// <summary>
    /// The network's floating-point type. When the model's parameters have another dtype (or live on another
    /// device than <see cref="Device"/>), the classifier runs a private converted copy. Default
    /// <see cref="InferencePrecision.Auto"/>: bfloat16 only where a probe on the running machine shows it clearly faster
    /// and accurate enough, float32 elsewhere (<see cref="BayesClassifier.PrecisionReason"/> says why).
    /// </summary>
    public InferencePrecision Precision { get; init; } = InferencePrecision.Auto;

    /// <summary>
    /// The temperature of <see cref="ClassPrediction.Probabilities"/>, <c>softmax(-Scores / Temperature)</c>. Null
    /// (default): the calibration passed to the classifier (a model file's, fitted on held-out data; see
    /// <see cref="ProbabilityCalibration"/>), or 1, the paper's posterior, when there is none. Labels never depend on it.
    /// </summary>
    public double? Temperature { get; init; }

    /// <summary>
    /// Where the network runs: auto, cpu, cuda or cuda:N (<see cref="DeviceSelection"/>); null (default) runs it where the
    /// model is. On another device than the model's, the classifier runs a private copy there and never moves the
    /// caller's model (the library's device rule, shared with <see cref="Sampling.GuidedSamplerOptions.Device"/>).
    /// </summary>
    public string? Device { get; init; }

    /// <summary>The cheaper estimator with the defaults documented on each property.</summary>
    public static BayesClassifierOptions Default => new();

    /// <summary>
    /// The reference estimator (docs/algorithm.md §5): t ~ Uniform{1..T}, the same (t, eps) for every class, the full
    /// network per class, no pruning, L2, float32: n x classes network evaluations per image.
    /// </summary>
    public static BayesClassifierOptions Reference => new()
    {
        TimestepStrategy = TimestepStrategy.Random,
        ShareTrunk = false,
        Pruning = null,
        EarlyExit = null,
        Precision = InferencePrecision.Float32,
    };

    /// <summary>The default pruning schedule: (0.2 n, keep 3), (0.5 n, keep 2).</summary>
    public static PruningSchedule DefaultPruning { get; } = new(new PruningStage(0.2, 3), new PruningStage(0.5, 2));

    /// <summary>Throws when an option is out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An enum value is undefined, <see cref="ChunkSize"/> is not in
    /// 1..<see cref="MaxChunkSize"/>, or <see cref="Temperature"/> is not a finite number in
    /// [<see cref="ProbabilityCalibration.MinTemperature"/>, <see cref="ProbabilityCalibration.MaxTemperature"/>].</exception>
    /// <exception cref="ArgumentException"><see cref="Device"/> is not auto, cpu, cuda or cuda:N.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(TimestepStrategy))
            throw new ArgumentOutOfRangeException(nameof(TimestepStrategy), TimestepStrategy, "Unknown timestep strategy.");
        if (!Enum.IsDefined(ErrorMetric))
            throw new ArgumentOutOfRangeException(nameof(ErrorMetric), ErrorMetric, "Unknown error metric.");
        if (!Enum.IsDefined(Precision))
            throw new ArgumentOutOfRangeException(nameof(Precision), Precision, "Unknown precision.");
        if (ChunkSize < 1 || ChunkSize > MaxChunkSize)
            throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize, $"ChunkSize must lie in 1..{MaxChunkSize}.");
        EarlyExit?.Validate();
        if (Temperature is double temperature)
            ProbabilityCalibration.ValidateTemperature(temperature, nameof(Temperature));
        DeviceSelection.Validate(Device, nameof(Device));
    }
}
