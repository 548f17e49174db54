using TorchSharp;
using System.Globalization;
using System.Text.Json;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Serialization;

/// <summary>
/// The self-describing model file: a safetensors file whose tensors are the <see cref="ConditionalUNet"/>
/// state_dict (reference key names without <c>nn_model.</c>) and whose metadata holds the architecture and the
/// noise schedule, so that <see cref="Load"/> needs nothing else. Extra tensors (for example a training
/// checkpoint's optimizer state) are stored under names that start with <see cref="ExtraTensorPrefix"/>.
/// </summary>
public static class ModelFile
{
    /// <summary>Value of the <c>format</c> metadata entry.</summary>
    public const string FormatName = "diffusion-classifier";
    /// <summary>Version of the layout written by this library.</summary>
    public const int FormatVersion = 1;
    /// <summary>Prefix of tensors that are not model weights.</summary>
    public const string ExtraTensorPrefix = "extra.";

    /// <summary>Metadata key of the format name.</summary>
    public const string FormatKey = "format";
    /// <summary>Metadata key of the format version.</summary>
    public const string FormatVersionKey = "format_version";
    /// <summary>Metadata key of the architecture (JSON of <see cref="ConditionalUNetConfig"/>).</summary>
    public const string ConfigKey = "config";
    /// <summary>Metadata key of the schedule (JSON: num_train_timesteps, beta_start, beta_end).</summary>
    public const string ScheduleKey = "schedule";

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Writes the model, its schedule and optional extras to <paramref name="path"/> atomically.</summary>
    /// <param name="path">Target file (conventionally <c>.safetensors</c>).</param>
    /// <param name="model">The network; its weights are copied to the CPU.</param>
    /// <param name="scheduler">The schedule it was trained with.</param>
    /// <param name="metadata">Extra string metadata; keys must not collide with the reserved ones.</param>
    /// <param name="extraTensors">Extra tensors; stored with <see cref="ExtraTensorPrefix"/> prepended.</param>
    public static void Save(string path, ConditionalUNet model, DdpmScheduler scheduler,
        IReadOnlyDictionary<string, string>? metadata = null, IReadOnlyDictionary<string, Tensor>? extraTensors = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(scheduler);
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        if (metadata is not null)
        {
            foreach (var (k, v) in metadata)
            {
                if (k is FormatKey or FormatVersionKey or ConfigKey or ScheduleKey)
                    throw new ArgumentException($"Metadata key '{k}' is reserved.", nameof(metadata));
                meta[k] = v;
            }
        }
        meta[FormatKey] = FormatName;
        meta[FormatVersionKey] = FormatVersion.ToString(CultureInfo.InvariantCulture);
        meta[ConfigKey] = JsonSerializer.Serialize(model.Config, Json);
        meta[ScheduleKey] = JsonSerializer.Serialize(new ScheduleConfig(scheduler.NumTrainTimesteps, scheduler.BetaStart, scheduler.BetaEnd), Json);

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (k, v) in model.state_dict()) tensors[k] = v;
        if (extraTensors is not null)
            foreach (var (k, v) in extraTensors) tensors[ExtraTensorPrefix + k] = v;
        SafeTensors.Save(path, tensors, meta);
    }

    /// <summary>Loads a model file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="device">Device to place the model on; CPU when null.</param>
    /// <returns>The model (in eval mode), its scheduler, metadata and extras; dispose it.</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is damaged, not a model file, or its tensors do not fit its architecture.</exception>
    public static LoadedModel Load(string path, Device? device = null)
    {
        using var content = SafeTensors.Load(path);
        try
        {
            return FromContent(content, device);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}': {e.Message}", e);
        }
    }

    /// <summary>Reads the architecture and schedule of a model file without building the network.</summary>
    /// <param name="metadata">The file's metadata.</param>
    /// <returns>The architecture and schedule.</returns>
    /// <exception cref="InvalidDataException">The metadata does not describe a model.</exception>
    public static (ConditionalUNetConfig Config, DdpmScheduler Scheduler) ReadDescription(IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (!metadata.TryGetValue(FormatKey, out var format) || format != FormatName)
            throw new InvalidDataException($"Not a {FormatName} model file (metadata '{FormatKey}' is '{format ?? "missing"}').");
        if (!metadata.TryGetValue(FormatVersionKey, out var version) || version != FormatVersion.ToString(CultureInfo.InvariantCulture))
            throw new InvalidDataException($"Unsupported model file version '{version ?? "missing"}'; this library reads version {FormatVersion}.");
        ConditionalUNetConfig config;
        ScheduleConfig schedule;
        try
        {
            config = JsonSerializer.Deserialize<ConditionalUNetConfig>(metadata.GetValueOrDefault(ConfigKey) ?? "null", Json)
                ?? throw new InvalidDataException($"The model file has no '{ConfigKey}' metadata.");
            schedule = JsonSerializer.Deserialize<ScheduleConfig>(metadata.GetValueOrDefault(ScheduleKey) ?? "null", Json)
                ?? throw new InvalidDataException($"The model file has no '{ScheduleKey}' metadata.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The model file's description is not valid JSON: {e.Message}", e);
        }
        try
        {
            config.Validate();
            return (config, new DdpmScheduler(schedule.NumTrainTimesteps, schedule.BetaStart, schedule.BetaEnd));
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The model file describes an invalid model: {e.Message}", e);
        }
    }

    private static LoadedModel FromContent(SafeTensorsContent content, Device? device)
    {
        var (config, scheduler) = ReadDescription(content.Metadata);
        var model = new ConditionalUNet(config);
        try
        {
            var weights = content.Tensors.Where(p => !p.Key.StartsWith(ExtraTensorPrefix, StringComparison.Ordinal))
                .ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
            CopyStateDict(model, weights);
            if (device is not null) model.to(device);
            model.eval();
            var extras = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (k, v) in content.Tensors)
                if (k.StartsWith(ExtraTensorPrefix, StringComparison.Ordinal))
                    extras[k[ExtraTensorPrefix.Length..]] = v.clone().DetachFromDisposeScope();
            return new LoadedModel(model, scheduler, content.Metadata.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal), extras);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies <paramref name="weights"/> into <paramref name="model"/>'s parameters and buffers after checking that
    /// the key sets, shapes and dtypes match exactly.
    /// </summary>
    /// <param name="model">The destination network.</param>
    /// <param name="weights">Tensors by state_dict key.</param>
    /// <exception cref="InvalidDataException">A key is missing or unexpected, or a shape or dtype differs; the message names the first such key.</exception>
    public static void CopyStateDict(ConditionalUNet model, IReadOnlyDictionary<string, Tensor> weights)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(weights);
        var target = model.state_dict();
        foreach (var (key, dest) in target)
        {
            if (!weights.TryGetValue(key, out var src))
                throw new InvalidDataException($"Missing tensor '{key}' (expected shape [{string.Join(", ", dest.shape)}]).");
            if (!src.shape.SequenceEqual(dest.shape))
                throw new InvalidDataException($"Tensor '{key}' has shape [{string.Join(", ", src.shape)}] but the architecture needs [{string.Join(", ", dest.shape)}].");
            if (src.dtype != dest.dtype)
                throw new InvalidDataException($"Tensor '{key}' has dtype {src.dtype} but the architecture needs {dest.dtype}.");
        }
        foreach (var key in weights.Keys)
            if (!target.ContainsKey(key))
                throw new InvalidDataException($"Unexpected tensor '{key}': the architecture has no such parameter or buffer.");
        using var noGrad = no_grad();
        foreach (var (key, dest) in target)
            dest.copy_(weights[key]);
    }

    private sealed record ScheduleConfig(int NumTrainTimesteps, double BetaStart, double BetaEnd);
}
