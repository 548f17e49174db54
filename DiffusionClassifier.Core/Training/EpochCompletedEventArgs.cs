namespace DiffusionClassifier.Training;

/// <summary>What <see cref="DiffusionTrainer.EpochCompleted"/> reports at the end of an epoch.</summary>
/// <param name="Epoch">The epoch just completed, 1-based.</param>
/// <param name="Epochs">Epochs of the whole run.</param>
/// <param name="MeanLoss">The epoch's mean training loss.</param>
/// <param name="Elapsed">Time since this <see cref="DiffusionTrainer.Train"/> call started.</param>
public sealed class EpochCompletedEventArgs(int Epoch, int Epochs, double MeanLoss, TimeSpan Elapsed) : EventArgs
{
    /// <summary>The epoch just completed, 1-based.</summary>
    public int Epoch { get; } = Epoch;

    /// <summary>Epochs of the whole run.</summary>
    public int Epochs { get; } = Epochs;

    /// <summary>The epoch's mean training loss.</summary>
    public double MeanLoss { get; } = MeanLoss;

    /// <summary>Time since this <see cref="DiffusionTrainer.Train"/> call started.</summary>
    public TimeSpan Elapsed { get; } = Elapsed;
}
