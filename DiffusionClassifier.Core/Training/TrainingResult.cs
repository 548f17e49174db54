namespace DiffusionClassifier.Training;

/// <summary>The outcome of a completed <see cref="DiffusionTrainer.Train"/> call.</summary>
/// <param name="StepsRun">Optimizer steps run by this call (0 when the run was already complete).</param>
/// <param name="TotalSteps">Steps of the whole run.</param>
/// <param name="EpochsCompleted">Epochs completed in total (including those before a resume).</param>
/// <param name="StepLosses">Loss of every step run by this call, in order.</param>
/// <param name="EpochMeanLosses">Mean loss of every epoch that ended during this call, in order (an epoch resumed
/// in the middle includes the steps before the resume).</param>
/// <param name="Elapsed">Wall time of this call.</param>
/// <param name="ImagesPerSecond">Training throughput of this call.</param>
/// <remarks>Thread safety: an immutable record; safe to share.</remarks>
public sealed record TrainingResult(
    long StepsRun,
    long TotalSteps,
    int EpochsCompleted,
    IReadOnlyList<float> StepLosses,
    IReadOnlyList<double> EpochMeanLosses,
    TimeSpan Elapsed,
    double ImagesPerSecond);
