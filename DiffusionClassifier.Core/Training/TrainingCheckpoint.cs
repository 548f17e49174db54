using System.Text.Json;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using static TorchSharp.torch;

namespace DiffusionClassifier.Training;

/// <summary>
/// A training checkpoint, read and checked in one pass: the raw weights, the schedule, the options of the run, its
/// position, Adam's state, the EMA weights and the generator state. <see cref="DiffusionTrainer.Resume"/>
/// continues the run from it.
/// </summary>
/// <remarks>
/// <para>On disk a checkpoint is one <see cref="ModelFile"/> (so <see cref="ModelFile.Load"/> reads it as a plain model
/// with the raw weights). Its extras hold Adam's per-parameter state (<c>optimizer.exp_avg.*</c>,
/// <c>optimizer.exp_avg_sq.*</c>, <c>optimizer.step.*</c>), the EMA weights (<c>ema.*</c>), the generator state and the
/// current epoch's item order; its metadata holds the position and the options as JSON. This class is the only code
/// that reads or writes that layout.</para>
/// <para>Owns the tensors it read: dispose it. Reading is all or nothing: a damaged or incomplete file throws
/// <see cref="InvalidDataException"/> naming the file and what is wrong.</para>
/// </remarks>
internal sealed class TrainingCheckpoint : IDisposable
{
    internal const int Version = 1;
    internal const string StateKey = "training_state";
    internal const string OptionsKey = "training_options";
    private const string ExpAvgPrefix = "optimizer.exp_avg.";
    private const string ExpAvgSqPrefix = "optimizer.exp_avg_sq.";
    private const string StepPrefix = "optimizer.step.";
    private const string EmaPrefix = "ema.";
    private const string RngStateKey = "trainer.rng_state";
    private const string PermutationKey = "trainer.permutation";

    private static JsonSerializerOptions Json => ModelFile.Json;

    private readonly LoadedModel file;
    private readonly TrainingOptions options;
    private bool disposed;

    private TrainingCheckpoint(string path, LoadedModel file, TrainingOptions options, TrainingState state,
        IReadOnlyDictionary<string, AdamSnapshot> adam, IReadOnlyDictionary<string, Tensor>? ema, Tensor rngState, long[]? permutation)
    {
        Path = path;
        this.file = file;
        this.options = options;
        State = state;
        Adam = adam;
        Ema = ema;
        RngState = rngState;
        Permutation = permutation;
    }

    /// <summary>The file it was read from.</summary>
    public string Path { get; }

    /// <summary>The options the run was saved with (already validated; immutable: change them with <c>with</c>).</summary>
    public TrainingOptions Options => options;

    /// <summary>The architecture of the network.</summary>
    public ConditionalUNetConfig Config => file.Model.Config;

    /// <summary>The noise schedule of the run.</summary>
    public DdpmScheduler Scheduler => file.Scheduler;

    /// <summary>Epochs completed when it was written.</summary>
    public int CompletedEpochs => State.Epoch;

    /// <summary>Optimizer steps done when it was written.</summary>
    public long CompletedSteps => State.GlobalStep;

    /// <summary>Whether it holds EMA weights.</summary>
    public bool HasEma => Ema is not null;

    internal TrainingState State { get; }

    /// <summary>The raw weights.</summary>
    internal ConditionalUNet Model
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return file.Model;
        }
    }

    /// <summary>Adam's state by parameter name (every parameter of <see cref="Config"/>, shapes checked).</summary>
    internal IReadOnlyDictionary<string, AdamSnapshot> Adam { get; }

    /// <summary>EMA weights by state_dict key (every key, shapes and dtypes checked), or null.</summary>
    internal IReadOnlyDictionary<string, Tensor>? Ema { get; }

    /// <summary>The trainer's CPU generator state.</summary>
    internal Tensor RngState { get; }

    /// <summary>The item order of the epoch in progress (a checked permutation), or null.</summary>
    internal long[]? Permutation { get; }

    /// <summary>Reads and checks a checkpoint written by <see cref="DiffusionTrainer"/>.</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <returns>The checkpoint; dispose it.</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is damaged, a plain model rather than a training checkpoint, of
    /// another layout version, or incomplete; the message names the file and the missing or wrong entry.</exception>
    public static TrainingCheckpoint Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = ModelFile.Load(path);
        try
        {
            var state = ReadState(path, file.Metadata);
            var options = ReadOptions(path, file.Metadata);
            if (state.BatchSize != options.BatchSize)
                throw new InvalidDataException($"'{path}' has BatchSize {state.BatchSize} in its position but {options.BatchSize} in its options.");
            var extras = file.ExtraTensors;

            var adam = new Dictionary<string, AdamSnapshot>(StringComparer.Ordinal);
            foreach (var (name, p) in file.Model.named_parameters())
            {
                var expAvg = Require(path, extras, ExpAvgPrefix + name, p.shape, ScalarType.Float32);
                var expAvgSq = Require(path, extras, ExpAvgSqPrefix + name, p.shape, ScalarType.Float32);
                long step = Require(path, extras, StepPrefix + name, [1], ScalarType.Int64).item<long>();
                if (step < 0)
                    throw new InvalidDataException($"'{path}': Adam step count {step} of '{name}' is negative.");
                adam[name] = new AdamSnapshot(expAvg, expAvgSq, step);
            }

            Dictionary<string, Tensor>? ema = null;
            if (state.EmaUpdates >= 0)
            {
                ema = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                foreach (var (key, value) in file.Model.state_dict())
                    ema[key] = Require(path, extras, EmaPrefix + key, value.shape, value.dtype);
            }

            var rng = Require(path, extras, RngStateKey, null, ScalarType.Byte);
            using (var fresh = new TorchSharp.torch.Generator(0, CPU))
            using (var expected = fresh.get_state())
            {
                if (!rng.shape.SequenceEqual(expected.shape))
                    throw new InvalidDataException($"'{path}': the generator state has shape [{string.Join(", ", rng.shape)}] but [{string.Join(", ", expected.shape)}] is expected.");
            }

            long[]? order = null;
            if (state.HasPermutation)
            {
                order = Require(path, extras, PermutationKey, [state.DataCount], ScalarType.Int64).data<long>().ToArray();
                var seen = new bool[order.Length];
                foreach (var i in order)
                {
                    if (i < 0 || i >= order.Length || seen[i])
                        throw new InvalidDataException($"'{path}': the stored item order is not a permutation of 0..{order.Length - 1}.");
                    seen[i] = true;
                }
            }
            return new TrainingCheckpoint(path, file, options, state, adam, ema, rng, order);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Writes a checkpoint atomically (the previous file stays intact until the new one is complete).</summary>
    internal static void Save(string path, ConditionalUNet model, DdpmScheduler scheduler, TrainingOptions options, TrainingState state,
        IReadOnlyList<(string Name, AdamState State)> adam, IReadOnlyDictionary<string, Tensor>? ema, Tensor rngState, long[]? permutation)
    {
        using var scope = NewDisposeScope();
        var extras = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, s) in adam)
        {
            extras[ExpAvgPrefix + name] = s.ExpAvg;
            extras[ExpAvgSqPrefix + name] = s.ExpAvgSq;
            extras[StepPrefix + name] = tensor(new[] { s.Step });
        }
        if (ema is not null)
            foreach (var (key, value) in ema)
                extras[EmaPrefix + key] = value;
        extras[RngStateKey] = rngState;
        if (permutation is not null)
            extras[PermutationKey] = tensor(permutation);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [StateKey] = JsonSerializer.Serialize(state, Json),
            [OptionsKey] = JsonSerializer.Serialize(options, Json),
        };
        ModelFile.Save(path, model, scheduler, metadata, extras);
    }

    /// <summary>Disposes the tensors read from the file.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        file.Dispose();
    }

    private static TrainingState ReadState(string path, IReadOnlyDictionary<string, string> metadata)
    {
        if (!metadata.TryGetValue(StateKey, out var json))
            throw new InvalidDataException($"'{path}' is a model file but not a training checkpoint: it has no '{StateKey}' metadata.");
        TrainingState state;
        try
        {
            state = JsonSerializer.Deserialize<TrainingState>(json, Json)
                ?? throw new InvalidDataException($"'{path}': the '{StateKey}' metadata is null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}': the '{StateKey}' metadata is not valid: {e.Message}", e);
        }
        if (state.Version != Version)
            throw new InvalidDataException($"'{path}' has training-state version {state.Version}; this library reads version {Version}.");
        if (state.Epoch < 0 || state.StepInEpoch < 0 || state.GlobalStep < 0 || state.DataCount < 0 || state.BatchSize < 1 || !double.IsFinite(state.EpochLossSum))
            throw new InvalidDataException($"'{path}' has an invalid training position: {state}.");
        if (state.DataCount > 0)
        {
            long stepsPerEpoch = (state.DataCount + state.BatchSize - 1) / state.BatchSize;
            if (state.StepInEpoch > stepsPerEpoch || state.GlobalStep != state.Epoch * stepsPerEpoch + state.StepInEpoch)
                throw new InvalidDataException($"'{path}' has an inconsistent training position: {state}.");
        }
        return state;
    }

    private static TrainingOptions ReadOptions(string path, IReadOnlyDictionary<string, string> metadata)
    {
        if (!metadata.TryGetValue(OptionsKey, out var json))
            throw new InvalidDataException($"'{path}' is not a complete training checkpoint: it has no '{OptionsKey}' metadata.");
        try
        {
            var read = JsonSerializer.Deserialize<TrainingOptions>(json, Json)
                ?? throw new InvalidDataException($"'{path}': the '{OptionsKey}' metadata is null.");
            read.Validate();
            return read;
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new InvalidDataException($"'{path}': the stored training options are invalid: {e.Message}", e);
        }
    }

    private static Tensor Require(string path, IReadOnlyDictionary<string, Tensor> extras, string key, long[]? shape, ScalarType dtype)
    {
        if (!extras.TryGetValue(key, out var t))
            throw new InvalidDataException($"'{path}' is not a complete training checkpoint: tensor '{ModelFile.ExtraTensorPrefix}{key}' is missing.");
        if (t.dtype != dtype)
            throw new InvalidDataException($"'{path}': tensor '{ModelFile.ExtraTensorPrefix}{key}' has dtype {t.dtype} but {dtype} is expected.");
        if (shape is not null && !t.shape.SequenceEqual(shape))
            throw new InvalidDataException($"'{path}': tensor '{ModelFile.ExtraTensorPrefix}{key}' has shape [{string.Join(", ", t.shape)}] but [{string.Join(", ", shape)}] is expected.");
        return t;
    }
}

/// <summary>Adam's state of one parameter as read from a checkpoint (tensors owned by the checkpoint).</summary>
internal sealed record AdamSnapshot(Tensor ExpAvg, Tensor ExpAvgSq, long Step);

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
/// <param name="DataFingerprint">The training data's <see cref="TrainingDataFingerprint"/>; null if training never
/// started or the checkpoint predates it (then only the count is checked on resume).</param>
internal sealed record TrainingState(int Version, int Epoch, int StepInEpoch, long GlobalStep, int BatchSize,
    long DataCount, double EpochLossSum, long EmaUpdates, bool HasPermutation, string? DataFingerprint = null);
