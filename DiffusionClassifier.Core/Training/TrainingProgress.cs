namespace DiffusionClassifier.Training;

/// <summary>Reported by <see cref="DiffusionTrainer.Train"/> after every optimizer step.</summary>
/// <param name="Epoch">One-based epoch of the step, 1..<paramref name="Epochs"/>.</param>
/// <param name="Epochs">Epochs of the run.</param>
/// <param name="StepInEpoch">One-based step within the epoch, 1..<paramref name="StepsPerEpoch"/>.</param>
/// <param name="StepsPerEpoch">Optimizer steps per epoch (ceil(items / batch size)).</param>
/// <param name="Step">One-based step over the whole run (including steps before a resume).</param>
/// <param name="TotalSteps">Steps of the whole run.</param>
/// <param name="Loss">The step's loss: mean squared error between the drawn and the predicted noise.</param>
/// <param name="EpochMeanLoss">Mean loss of the steps of this epoch so far.</param>
/// <param name="LearningRate">The learning rate Adam used for the step.</param>
/// <param name="ImagesPerSecond">Training throughput of this <c>Train</c> call so far.</param>
/// <param name="Elapsed">Wall time of this <c>Train</c> call so far.</param>
/// <param name="EstimatedRemaining">Estimated time to the end of the run at the current throughput.</param>
/// <remarks>Thread safety: an immutable record; safe to share.</remarks>
public sealed record TrainingProgress(
    int Epoch,
    int Epochs,
    int StepInEpoch,
    int StepsPerEpoch,
    long Step,
    long TotalSteps,
    float Loss,
    double EpochMeanLoss,
    double LearningRate,
    double ImagesPerSecond,
    TimeSpan Elapsed,
    TimeSpan EstimatedRemaining);
