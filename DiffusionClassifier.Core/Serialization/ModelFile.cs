using TorchSharp;
using System.Globalization;
using System.Text.Json;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Serialization;

/// <summary>
/// The self-describing model file: a safetensors file whose tensors are the <see cref="ConditionalUNet"/>
/// state_dict (reference key names without <c>nn_model.</c>) and whose metadata holds the architecture and the
/// noise schedule, so that <see cref="Load(string, Device?)"/> needs nothing else. Extra tensors (for example a
/// training checkpoint's optimizer state) are stored under names that start with <see cref="ExtraTensorPrefix"/>.
/// </summary>
/// <remarks>
/// Loading validates everything before the network is built: the safetensors layout (see <see cref="SafeTensors"/>),
/// the <c>format</c> and <c>format_version</c> entries, the exact fields of the <c>config</c> and <c>schedule</c>
/// JSON, that the file holds at least as many weight elements as the described network has (so a damaged
/// configuration cannot make it allocate more than the file holds), then every key, shape and dtype. Any problem is an
/// <see cref="InvalidDataException"/> whose message names the file (or stream) and the problem. All members are
/// thread-safe.
/// </remarks>
public static class ModelFile
{
    /// <summary>Value of the <c>format</c> metadata entry.</summary>
    public const string FormatName = "diffusion-classifier";
    /// <summary>Version of the layout written by this library.</summary>
    public const int FormatVersion = 1;
    /// <summary>Prefix of tensors that are not model weights.</summary>
    public const string ExtraTensorPrefix = "extra.";
    /// <summary>The largest number of diffusion steps a model file may describe.</summary>
    internal const int MaxTimesteps = 100_000;

    /// <summary>Metadata key of the format name.</summary>
    internal const string FormatKey = "format";
    /// <summary>Metadata key of the format version.</summary>
    internal const string FormatVersionKey = "format_version";
    /// <summary>Metadata key of the architecture (JSON: in_channels, features, classes, height, width).</summary>
    internal const string ConfigKey = "config";
    /// <summary>Metadata key of the schedule (JSON: num_train_timesteps, beta_start, beta_end).</summary>
    internal const string ScheduleKey = "schedule";
    /// <summary>Metadata key of the optional probability calibration (JSON: temperature, samples, items, fitted_on);
    /// see <see cref="ProbabilityCalibration"/>.</summary>
    internal const string CalibrationKey = "calibration";

    /// <summary>The JSON style of every metadata value (snake_case names), shared with training checkpoints.</summary>
    internal static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private static readonly string[] ConfigFields = ["in_channels", "features", "classes", "height", "width"];
    private static readonly string[] ScheduleFields = ["num_train_timesteps", "beta_start", "beta_end"];
    private static readonly string[] CalibrationFields = ["temperature", "samples", "items", "fitted_on"];

    /// <summary>Writes the model, its schedule and optional extras to <paramref name="path"/> atomically.</summary>
    /// <param name="path">Target file (conventionally <c>.safetensors</c>).</param>
    /// <param name="model">The network; its weights are copied to the CPU.</param>
    /// <param name="scheduler">The schedule it was trained with.</param>
    /// <param name="metadata">Extra string metadata; keys must not collide with the reserved ones.</param>
    /// <param name="extraTensors">Extra tensors; stored with <see cref="ExtraTensorPrefix"/> prepended.</param>
    /// <param name="calibration">The probability calibration to store (null: none).</param>
    /// <exception cref="ArgumentException">A reserved metadata key is used, or a value is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="calibration"/> is out of range.</exception>
    public static void Save(string path, ConditionalUNet model, DdpmScheduler scheduler,
        IReadOnlyDictionary<string, string>? metadata = null, IReadOnlyDictionary<string, Tensor>? extraTensors = null,
        ProbabilityCalibration? calibration = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var (tensors, meta) = Describe(model, scheduler, metadata, extraTensors, calibration);
        SafeTensors.Save(path, tensors, meta);
    }

    /// <summary>Writes the model file to a stream (see <see cref="Save"/>; <see cref="Read"/> reads it back).</summary>
    /// <param name="stream">Destination.</param>
    /// <param name="model">The network.</param>
    /// <param name="scheduler">The schedule it was trained with.</param>
    /// <param name="metadata">Extra string metadata.</param>
    /// <param name="extraTensors">Extra tensors.</param>
    /// <param name="calibration">The probability calibration to store (null: none).</param>
    public static void Write(Stream stream, ConditionalUNet model, DdpmScheduler scheduler,
        IReadOnlyDictionary<string, string>? metadata = null, IReadOnlyDictionary<string, Tensor>? extraTensors = null,
        ProbabilityCalibration? calibration = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var (tensors, meta) = Describe(model, scheduler, metadata, extraTensors, calibration);
        SafeTensors.Write(stream, tensors, meta);
    }

    private static (Dictionary<string, Tensor>, Dictionary<string, string>) Describe(ConditionalUNet model, DdpmScheduler scheduler,
        IReadOnlyDictionary<string, string>? metadata, IReadOnlyDictionary<string, Tensor>? extraTensors, ProbabilityCalibration? calibration)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(scheduler);
        calibration?.Validate();
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        if (metadata is not null)
        {
            foreach (var (k, v) in metadata)
            {
                if (IsReserved(k))
                    throw new ArgumentException($"Metadata key '{k}' is reserved.", nameof(metadata));
                meta[k] = v ?? throw new ArgumentException($"Metadata '{k}' is null.", nameof(metadata));
            }
        }
        meta[FormatKey] = FormatName;
        meta[FormatVersionKey] = FormatVersion.ToString(CultureInfo.InvariantCulture);
        meta[ConfigKey] = JsonSerializer.Serialize(model.Config, Json);
        meta[ScheduleKey] = JsonSerializer.Serialize(new ScheduleConfig(scheduler.NumTrainTimesteps, scheduler.BetaStart, scheduler.BetaEnd), Json);
        if (calibration is not null)
            meta[CalibrationKey] = JsonSerializer.Serialize(calibration, Json);

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (k, v) in model.state_dict()) tensors[k] = v;
        if (extraTensors is not null)
            foreach (var (k, v) in extraTensors) tensors[ExtraTensorPrefix + k] = v;
        return (tensors, meta);
    }

    /// <summary>Loads a model file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="device">Device to place the model on; CPU when null. Extra tensors stay on the CPU.</param>
    /// <returns>The model (in eval mode), its scheduler, metadata and extras; dispose it.</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is damaged, not a model file, or its tensors do not fit its
    /// architecture; the message names the file and the first problem found.</exception>
    public static LoadedModel Load(string path, Device? device = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"No model file at '{path}'.", path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(stream, device, path);
    }

    /// <summary>
    /// Imports a checkpoint of the reference PyTorch implementation (a <c>.pth</c> zip written by
    /// <c>torch.save(state_dict)</c>; docs/model-files.md): the network, its architecture inferred from the shapes
    /// when <paramref name="config"/> is null, and its schedule, rebuilt from the checkpoint's schedule buffers and
    /// verified (the default schedule when it has none, recorded as <c>schedule_source = default</c> in
    /// <see cref="LoadedModel.Metadata"/>). No Python code runs: the pickle is read by a restricted reader.
    /// Save the result with <see cref="Save"/> to get a model file.
    /// </summary>
    /// <param name="path">The checkpoint.</param>
    /// <param name="config">The architecture; inferred when null.</param>
    /// <param name="prefix">The prefix of the network's keys: <c>nn_model.</c> in the reference's DDPM wrapper,
    /// empty for a bare network's state_dict.</param>
    /// <param name="device">Device of the network; CPU when null.</param>
    /// <returns>The network (eval mode), schedule and metadata (<c>source_format</c>, <c>source_file</c>,
    /// <c>schedule_source</c>); dispose it.</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The checkpoint cannot be read or does not fit; the message names the
    /// file and the first mismatching key.</exception>
    public static LoadedModel ImportPyTorch(string path, ConditionalUNetConfig? config = null, string prefix = PyTorchCheckpoint.DefaultPrefix,
        Device? device = null) =>
        PyTorchCheckpoint.Load(path, config, prefix, device);

    /// <summary>Loads a model file from a seekable stream (from its current position to its end).</summary>
    /// <param name="stream">A readable, seekable stream; it is not closed.</param>
    /// <param name="device">Device to place the model on; CPU when null. Extra tensors stay on the CPU.</param>
    /// <param name="sourceName">Name of the content in error messages (for example a file or resource name).</param>
    /// <returns>The model (in eval mode), its scheduler, metadata and extras; dispose it.</returns>
    /// <exception cref="ArgumentException">The stream cannot seek or read.</exception>
    /// <exception cref="InvalidDataException">The content is damaged, not a model file, or its tensors do not fit its
    /// architecture; the message names <paramref name="sourceName"/> and the first problem found.</exception>
    public static LoadedModel Read(Stream stream, Device? device = null, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        string name = sourceName ?? "<stream>";
        LoadedModel loaded;
        using (var scope = NewDisposeScope())
        {
            SafeTensorsContent content;
            try
            {
                content = SafeTensors.Read(stream);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"'{name}' is not a valid safetensors file: {e.Message}", e);
            }
            using (content)
            {
                try
                {
                    loaded = FromContent(content);
                }
                catch (InvalidDataException e)
                {
                    throw new InvalidDataException($"'{name}' is not a valid model file: {e.Message}", e);
                }
            }
        }
        // Outside the dispose scope: moving replaces the buffers with new tensors, which the scope would dispose.
        if (device is not null) MoveOrDispose(loaded, device);
        return loaded;
    }

    internal static void MoveOrDispose(LoadedModel loaded, Device device)
    {
        try
        {
            loaded.Model.to(device);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>Reads the architecture and schedule of a model file without building the network.</summary>
    /// <param name="metadata">The file's metadata.</param>
    /// <returns>The architecture and schedule.</returns>
    /// <exception cref="InvalidDataException">The metadata does not describe a model: wrong or missing format or
    /// version, or a config / schedule that is not exactly the expected JSON object or describes an invalid model.</exception>
    internal static (ConditionalUNetConfig Config, DdpmScheduler Scheduler) ReadDescription(IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (!metadata.TryGetValue(FormatKey, out var format) || format != FormatName)
            throw new InvalidDataException($"Not a {FormatName} model file (metadata '{FormatKey}' is {Show(format)}).");
        if (!metadata.TryGetValue(FormatVersionKey, out var version) || version != FormatVersion.ToString(CultureInfo.InvariantCulture))
            throw new InvalidDataException($"Unsupported model file version {Show(version)}; this library reads version {FormatVersion}.");

        var c = ParseObject(metadata, ConfigKey, ConfigFields);
        var config = new ConditionalUNetConfig(Int(c, ConfigKey, "in_channels"), Int(c, ConfigKey, "features"),
            Int(c, ConfigKey, "classes"), Int(c, ConfigKey, "height"), Int(c, ConfigKey, "width"));
        var s = ParseObject(metadata, ScheduleKey, ScheduleFields);
        int steps = Int(s, ScheduleKey, "num_train_timesteps");
        double betaStart = Double(s, ScheduleKey, "beta_start"), betaEnd = Double(s, ScheduleKey, "beta_end");
        try
        {
            config.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The '{ConfigKey}' metadata describes an invalid network: {e.Message}", e);
        }
        if (steps > MaxTimesteps)
            throw new InvalidDataException($"The '{ScheduleKey}' metadata has num_train_timesteps {steps}, above the limit of {MaxTimesteps}.");
        try
        {
            return (config, new DdpmScheduler(steps, betaStart, betaEnd));
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The '{ScheduleKey}' metadata describes an invalid schedule: {e.Message}", e);
        }
    }

    /// <summary>Whether <paramref name="key"/> is a metadata key this library writes itself (format, version,
    /// config, schedule, calibration): a caller's metadata may not use it.</summary>
    /// <param name="key">A metadata key.</param>
    /// <returns>True for a reserved key.</returns>
    internal static bool IsReserved(string key) => key is FormatKey or FormatVersionKey or ConfigKey or ScheduleKey or CalibrationKey;

    /// <summary>Reads the optional calibration of a model file.</summary>
    /// <param name="metadata">The file's metadata.</param>
    /// <returns>The calibration, or null when the file has none.</returns>
    /// <exception cref="InvalidDataException">The <c>calibration</c> entry is not exactly the expected JSON object or
    /// holds values out of range.</exception>
    internal static ProbabilityCalibration? ReadCalibration(IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (!metadata.ContainsKey(CalibrationKey))
            return null;
        var o = ParseObject(metadata, CalibrationKey, CalibrationFields);
        if (o["fitted_on"].ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"The '{CalibrationKey}' metadata field 'fitted_on' is {SafeTensors.Truncate(o["fitted_on"].GetRawText())}, not a string.");
        var calibration = new ProbabilityCalibration(Double(o, CalibrationKey, "temperature"), Int(o, CalibrationKey, "samples"),
            Int(o, CalibrationKey, "items"), o["fitted_on"].GetString()!);
        try
        {
            calibration.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The '{CalibrationKey}' metadata is out of range: {e.Message}", e);
        }
        return calibration;
    }

    private static string Show(string? value) => value is null ? "missing" : $"'{SafeTensors.Truncate(value)}'";

    private static Dictionary<string, JsonElement> ParseObject(IReadOnlyDictionary<string, string> metadata, string key, string[] fields)
    {
        if (!metadata.TryGetValue(key, out var json))
            throw new InvalidDataException($"The model file has no '{key}' metadata.");
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 4, AllowDuplicateProperties = false });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"The '{key}' metadata is a JSON {doc.RootElement.ValueKind}, not an object.");
            var result = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (!fields.Contains(p.Name, StringComparer.Ordinal))
                    throw new InvalidDataException($"The '{key}' metadata has the unknown field '{SafeTensors.Truncate(p.Name)}' (expected {string.Join(", ", fields)}).");
                result[p.Name] = p.Value.Clone();
            }
            foreach (var f in fields)
                if (!result.ContainsKey(f))
                    throw new InvalidDataException($"The '{key}' metadata lacks the field '{f}'.");
            return result;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The '{key}' metadata is not valid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidDataException($"The '{key}' metadata holds invalid text: {e.Message}", e);
        }
    }

    private static int Int(Dictionary<string, JsonElement> o, string key, string field) =>
        o[field].ValueKind == JsonValueKind.Number && o[field].TryGetInt32(out int v)
            ? v
            : throw new InvalidDataException($"The '{key}' metadata field '{field}' is {SafeTensors.Truncate(o[field].GetRawText())}, not a 32-bit integer.");

    private static double Double(Dictionary<string, JsonElement> o, string key, string field) =>
        o[field].ValueKind == JsonValueKind.Number && o[field].TryGetDouble(out double v) && double.IsFinite(v)
            ? v
            : throw new InvalidDataException($"The '{key}' metadata field '{field}' is {SafeTensors.Truncate(o[field].GetRawText())}, not a finite number.");

    private static LoadedModel FromContent(SafeTensorsContent content)
    {
        var (config, scheduler) = ReadDescription(content.Metadata);
        var calibration = ReadCalibration(content.Metadata);
        long present = content.Tensors.Where(p => !p.Key.StartsWith(ExtraTensorPrefix, StringComparison.Ordinal)).Sum(p => p.Value.numel());
        long? needed = StateDictBudget.ElementCount(config);
        if (!StateDictBudget.Allows(needed, present))
            throw new InvalidDataException(
                $"The '{ConfigKey}' metadata describes a network of {needed?.ToString(CultureInfo.InvariantCulture) ?? "more than 2^63"} elements but the file holds only {present} weight elements.");
        var model = new ConditionalUNet(config);
        try
        {
            CopyStateDict(model, content.Tensors, "", key => key.StartsWith(ExtraTensorPrefix, StringComparison.Ordinal));
            model.eval();
            var extras = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (k, v) in content.Tensors)
                if (k.StartsWith(ExtraTensorPrefix, StringComparison.Ordinal))
                    extras[k[ExtraTensorPrefix.Length..]] = v.clone().DetachFromDisposeScope();
            return new LoadedModel(model, scheduler, content.Metadata.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal), extras, calibration);
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
    /// <param name="weights">Tensors by state_dict key (on any device).</param>
    /// <exception cref="InvalidDataException">A key is missing or unexpected, or a shape or dtype differs; the message
    /// names the first such key (in the network's parameter order; unexpected keys after that).</exception>
    internal static void CopyStateDict(ConditionalUNet model, IReadOnlyDictionary<string, Tensor> weights)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(weights);
        CopyStateDict(model, weights, "", _ => false);
    }

    /// <summary>
    /// Like <see cref="CopyStateDict(ConditionalUNet, IReadOnlyDictionary{string, Tensor})"/> for weights whose keys
    /// carry <paramref name="prefix"/>; keys for which <paramref name="ignore"/> is true are skipped. Messages name
    /// the keys as they appear in <paramref name="weights"/>.
    /// </summary>
    internal static void CopyStateDict(ConditionalUNet model, IReadOnlyDictionary<string, Tensor> weights, string prefix, Func<string, bool> ignore)
    {
        var target = model.state_dict();
        foreach (var (key, dest) in target)
        {
            string full = prefix + key;
            if (!weights.TryGetValue(full, out var src) || src is null)
                throw new InvalidDataException($"Missing tensor '{full}' (expected shape [{string.Join(", ", dest.shape)}]).");
            if (!src.shape.SequenceEqual(dest.shape))
                throw new InvalidDataException($"Tensor '{full}' has shape [{string.Join(", ", src.shape)}] but the architecture needs [{string.Join(", ", dest.shape)}].");
            if (src.dtype != dest.dtype)
                throw new InvalidDataException($"Tensor '{full}' has dtype {src.dtype} but the architecture needs {dest.dtype}.");
        }
        foreach (var key in weights.Keys)
        {
            if (ignore(key)) continue;
            if (!key.StartsWith(prefix, StringComparison.Ordinal) || !target.ContainsKey(key[prefix.Length..]))
                throw new InvalidDataException($"Unexpected tensor '{SafeTensors.Truncate(key)}': the architecture has no such parameter or buffer.");
        }
        using var noGrad = no_grad();
        foreach (var (key, dest) in target)
            dest.copy_(weights[prefix + key]);
    }

    private sealed record ScheduleConfig(int NumTrainTimesteps, double BetaStart, double BetaEnd);
}
