namespace DiffusionClassifier.Training;

/// <summary>How the learning rate changes during training (<see cref="TrainingOptions.LearningRateSchedule"/>).</summary>
public enum LearningRateSchedule
{
    /// <summary>
    /// The reference recipe: constant within an epoch, <c>lr * (1 - e / E)</c> for the zero-based epoch index e of
    /// E epochs (so the last epoch trains at <c>lr / E</c>).
    /// </summary>
    LinearPerEpoch,

    /// <summary>A smooth linear decay: <c>lr * (1 - s / S)</c> for the zero-based global step s of S steps.</summary>
    LinearPerStep,

    /// <summary>No decay: <c>lr</c> throughout.</summary>
    Constant,

    /// <summary>
    /// Half-cosine decay per step (Loshchilov and Hutter, 2017, without restarts): <c>lr * (1 + cos(pi * p)) / 2</c>,
    /// where p = (s - W) / (S - W) is the progress after the <see cref="TrainingOptions.WarmupSteps"/> W (0 during
    /// the warm-up, and throughout when the run has no more steps than the warm-up).
    /// </summary>
    Cosine,
}
