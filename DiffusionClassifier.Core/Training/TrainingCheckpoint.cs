using System.Text.Json;

namespace DiffusionClassifier.Training;

/// <summary>
/// Names and the position record of a training checkpoint: a <see cref="Serialization.ModelFile"/> whose model
/// tensors are the raw (non-EMA) weights and whose extras hold the rest of the training state.
/// </summary>
internal static class TrainingCheckpoint
{
    public const int Version = 1;
    public const string StateKey = "training_state";
    public const string OptionsKey = "training_options";
    public const string ExpAvgPrefix = "optimizer.exp_avg.";
    public const string ExpAvgSqPrefix = "optimizer.exp_avg_sq.";
    public const string StepPrefix = "optimizer.step.";
    public const string EmaPrefix = "ema.";
    public const string RngStateKey = "trainer.rng_state";
    public const string PermutationKey = "trainer.permutation";

    public static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}

/// <summary>Where a run stands; stored as JSON in a checkpoint's metadata.</summary>
/// <param name="Version">Layout version (<see cref="TrainingCheckpoint.Version"/>).</param>
/// <param name="Epoch">Zero-based epoch in progress (equals the number of completed epochs).</param>
/// <param name="StepInEpoch">Steps of that epoch already done.</param>
/// <param name="GlobalStep">Steps done over the whole run.</param>
/// <param name="BatchSize">Batch size of the run.</param>
/// <param name="DataCount">Number of training items (0 if training never started).</param>
/// <param name="EpochLossSum">Sum of the losses of the steps of the epoch in progress.</param>
/// <param name="EmaUpdates">Updates of the EMA; -1 when the checkpoint has no EMA.</param>
/// <param name="HasPermutation">Whether the epoch in progress has its item order stored.</param>
internal sealed record TrainingState(int Version, int Epoch, int StepInEpoch, long GlobalStep, int BatchSize,
    long DataCount, double EpochLossSum, long EmaUpdates, bool HasPermutation);
