using System.Globalization;
using System.IO.Compression;
using System.Text;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Serialization;

/// <summary>
/// Imports checkpoints written by the PyTorch reference with <c>torch.save(ddpm.state_dict(), path)</c>: the zip
/// format of PyTorch 1.6 and later (<c>&lt;archive&gt;/data.pkl</c>, <c>&lt;archive&gt;/data/&lt;key&gt;</c>,
/// <c>&lt;archive&gt;/version</c>, optional <c>&lt;archive&gt;/byteorder</c>), with the network's keys under
/// <c>nn_model.</c> and the schedule buffers (<see cref="ScheduleBufferNames"/>) at the top level.
/// </summary>
/// <remarks>
/// <para><b>No code from the file is ever executed.</b> The pickle is read by a restricted interpreter that knows
/// only the opcodes a state_dict uses and accepts only the globals <c>collections.OrderedDict</c>,
/// <c>torch._utils._rebuild_tensor_v2</c>, <c>torch._utils._rebuild_tensor</c>, <c>torch._utils._rebuild_parameter</c>
/// and the <c>torch.*Storage</c> types, which it interprets itself; anything else (<c>os.system</c>,
/// <c>builtins.eval</c>, ...) is refused with an <see cref="InvalidDataException"/> naming it. Storages must be
/// stored uncompressed and little-endian, as PyTorch writes them; views (offsets, strides) are supported, expanded
/// (overlapping) views are not. The legacy pre-1.6 format is refused with a message saying so.</para>
/// <para>All members are thread-safe. Every problem with a file is an <see cref="InvalidDataException"/> whose
/// message names the file and the problem (for shapes and keys: the first mismatching key).</para>
/// </remarks>
internal static class PyTorchCheckpoint
{
    /// <summary>The prefix of the network's keys in a checkpoint of the reference's DDPM wrapper.</summary>
    public const string DefaultPrefix = "nn_model.";

    /// <summary>The largest difference accepted between a stored schedule buffer and the rebuilt linear schedule.</summary>
    public const double ScheduleTolerance = 1e-5;

    /// <summary>The schedule buffers the reference's DDPM wrapper registers (no prefix).</summary>
    internal static IReadOnlyList<string> ScheduleBufferNames { get; } =
        ["alpha_t", "oneover_sqrta", "sqrt_beta_t", "alphabar_t", "sqrtab", "sqrtmab", "mab_over_sqrtmab"];

    private static readonly byte[] ZipSignature = [0x50, 0x4b, 0x03, 0x04];
    private static readonly byte[] EmptyZipSignature = [0x50, 0x4b, 0x05, 0x06];
    // PROTO 2, LONG1 of 10 bytes: the magic number 0x1950a86a20f9469cfc6c that starts the legacy format.
    private static readonly byte[] LegacyMagic = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

    /// <summary>Reads the tensors of a <c>torch.save(state_dict)</c> checkpoint without executing anything.</summary>
    /// <param name="path">The <c>.pth</c> / <c>.pt</c> file.</param>
    /// <returns>The tensors by key in the checkpoint's order, on the CPU; dispose the result.</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">Not a supported checkpoint, damaged, or hostile; the message names the file and the problem.</exception>
    internal static PyTorchStateDict ReadStateDict(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"No PyTorch checkpoint at '{path}'.", path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return ReadStateDict(stream, path);
    }

    /// <summary>Reads the tensors of a <c>torch.save(state_dict)</c> checkpoint from a seekable stream.</summary>
    /// <param name="stream">A readable, seekable stream positioned at the start of the checkpoint; it is not closed.</param>
    /// <param name="sourceName">Name of the content in error messages.</param>
    /// <returns>The tensors by key in the checkpoint's order, on the CPU; dispose the result.</returns>
    /// <exception cref="ArgumentException">The stream cannot seek or read.</exception>
    /// <exception cref="InvalidDataException">Not a supported checkpoint, damaged, or hostile.</exception>
    internal static PyTorchStateDict ReadStateDict(Stream stream, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek || !stream.CanRead) throw new ArgumentException("The stream must be readable and seekable.", nameof(stream));
        string name = sourceName ?? "<stream>";
        try
        {
            using var scope = NewDisposeScope();
            return ReadZip(stream);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{name}' is not a readable PyTorch state_dict checkpoint: {e.Message}", e);
        }
    }

    /// <summary>Copies a checkpoint's network weights into <paramref name="model"/>.</summary>
    /// <param name="model">The destination; its configuration must match the checkpoint.</param>
    /// <param name="path">The checkpoint.</param>
    /// <param name="prefix">The prefix of the network's keys (<see cref="DefaultPrefix"/>; "" for a bare network's state_dict).</param>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The checkpoint cannot be read, or a key is missing or unexpected or a
    /// shape or dtype differs; the message names the file and the first mismatching key.</exception>
    internal static void LoadInto(ConditionalUNet model, string path, string prefix = DefaultPrefix)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prefix);
        using var stateDict = ReadStateDict(path);
        WithSource(path, () => { LoadInto(model, stateDict, prefix); return 0; });
    }

    /// <summary>Copies the network weights of a state_dict into <paramref name="model"/>.</summary>
    /// <param name="model">The destination.</param>
    /// <param name="stateDict">Tensors by checkpoint key; the schedule buffers are ignored.</param>
    /// <param name="prefix">The prefix of the network's keys.</param>
    /// <exception cref="InvalidDataException">A key is missing or unexpected, or a shape or dtype differs; the message
    /// names the first mismatching key as it appears in the checkpoint.</exception>
    internal static void LoadInto(ConditionalUNet model, IReadOnlyDictionary<string, Tensor> stateDict, string prefix = DefaultPrefix)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(stateDict);
        ArgumentNullException.ThrowIfNull(prefix);
        ModelFile.CopyStateDict(model, stateDict, prefix, key => ScheduleBufferNames.Contains(key));
    }

    /// <summary>
    /// Infers the architecture from the shapes: <c>in_channels</c> and <c>n_feat</c> from
    /// <c>init_conv.conv1.0.weight</c> [F, C, 3, 3], <c>n_classes</c> from <c>contextembed1.model.0.weight</c>
    /// [2F, K] and the image size from the kernel of <c>up0.0.weight</c> [2F, 2F, H/4, W/4].
    /// </summary>
    /// <param name="stateDict">Tensors by checkpoint key.</param>
    /// <param name="prefix">The prefix of the network's keys.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="InvalidDataException">A key needed is missing or has an unexpected shape (named), or the
    /// inferred configuration is not supported.</exception>
    internal static ConditionalUNetConfig InferConfig(IReadOnlyDictionary<string, Tensor> stateDict, string prefix = DefaultPrefix)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        ArgumentNullException.ThrowIfNull(prefix);
        var init = Shape(stateDict, prefix + "init_conv.conv1.0.weight", 4);
        if (init[2] != 3 || init[3] != 3) throw Mismatch(prefix + "init_conv.conv1.0.weight", init, "[F, C, 3, 3]");
        long f = init[0], c = init[1];
        var ctx = Shape(stateDict, prefix + "contextembed1.model.0.weight", 2);
        if (ctx[0] != 2 * f) throw Mismatch(prefix + "contextembed1.model.0.weight", ctx, $"[{2 * f}, n_classes]");
        var up0 = Shape(stateDict, prefix + "up0.0.weight", 4);
        if (up0[0] != 2 * f || up0[1] != 2 * f) throw Mismatch(prefix + "up0.0.weight", up0, $"[{2 * f}, {2 * f}, H/4, W/4]");
        const long limit = int.MaxValue / 4;
        if (f > limit || c > limit || ctx[1] > limit || up0[2] > limit || up0[3] > limit)
            throw new InvalidDataException("The checkpoint's dimensions are too large for this library.");
        var config = new ConditionalUNetConfig((int)c, (int)f, (int)ctx[1], (int)up0[2] * 4, (int)up0[3] * 4);
        try
        {
            config.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The checkpoint describes an unsupported network {config}: {e.Message}", e);
        }
        return config;
    }

    /// <summary>
    /// Rebuilds the linear schedule from the reference's schedule buffers: T = length - 1,
    /// beta1 = sqrt_beta_t[0]^2, beta2 = sqrt_beta_t[T]^2 (rounded to 6 significant digits, which recovers the
    /// decimal values the reference was configured with), then checks every buffer against the rebuilt schedule
    /// within <see cref="ScheduleTolerance"/>.
    /// </summary>
    /// <param name="stateDict">Tensors by checkpoint key.</param>
    /// <returns>The scheduler, or null when the checkpoint has none of the buffers.</returns>
    /// <exception cref="InvalidDataException">Some but not all buffers exist, they are malformed, or they are not the
    /// reference's linear schedule; the message names the buffer.</exception>
    internal static DdpmScheduler? InferScheduler(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        if (!ScheduleBufferNames.Any(stateDict.ContainsKey)) return null;
        using var scope = NewDisposeScope();
        var values = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var name in ScheduleBufferNames)
        {
            if (!stateDict.TryGetValue(name, out var t))
                throw new InvalidDataException($"The schedule buffer '{name}' is missing although others are present.");
            if (t.dim() != 1 || !t.is_floating_point() || t.shape[0] < 2)
                throw new InvalidDataException($"The schedule buffer '{name}' has dtype {t.dtype} and shape [{string.Join(", ", t.shape)}]; a float vector of T+1 >= 2 entries is needed.");
            if (t.shape[0] - 1 > ModelFile.MaxTimesteps)
                throw new InvalidDataException($"The schedule buffer '{name}' describes {t.shape[0] - 1} steps, above the limit of {ModelFile.MaxTimesteps}.");
            values[name] = t.to(ScalarType.Float64).cpu().data<double>().ToArray();
        }
        int n = values["sqrt_beta_t"].Length;
        foreach (var (name, v) in values)
            if (v.Length != n)
                throw new InvalidDataException($"The schedule buffer '{name}' has {v.Length} entries but 'sqrt_beta_t' has {n}.");
        int steps = n - 1;
        double beta1 = Round6(values["sqrt_beta_t"][0] * values["sqrt_beta_t"][0]);
        double beta2 = Round6(values["sqrt_beta_t"][steps] * values["sqrt_beta_t"][steps]);
        DdpmScheduler scheduler;
        try
        {
            scheduler = new DdpmScheduler(steps, beta1, beta2);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The schedule buffers give T = {steps}, beta1 = {beta1}, beta2 = {beta2}, which is not a valid schedule: {e.Message}", e);
        }
        var rebuilt = new Dictionary<string, IReadOnlyList<double>>(StringComparer.Ordinal)
        {
            ["alpha_t"] = scheduler.Alphas,
            ["oneover_sqrta"] = scheduler.OneOverSqrtAlphas,
            ["sqrt_beta_t"] = scheduler.SqrtBetas,
            ["alphabar_t"] = scheduler.AlphaBars,
            ["sqrtab"] = scheduler.SqrtAlphaBars,
            ["sqrtmab"] = scheduler.SqrtOneMinusAlphaBars,
            ["mab_over_sqrtmab"] = scheduler.MabOverSqrtMab,
        };
        foreach (var name in ScheduleBufferNames)
        {
            var stored = values[name];
            var expected = rebuilt[name];
            for (int i = 0; i < n; i++)
            {
                if (!(Math.Abs(stored[i] - expected[i]) <= ScheduleTolerance))
                    throw new InvalidDataException(
                        $"The schedule buffer '{name}'[{i}] is {stored[i].ToString("R", CultureInfo.InvariantCulture)} but the linear schedule " +
                        $"T = {steps}, betas ({beta1.ToString("R", CultureInfo.InvariantCulture)}, {beta2.ToString("R", CultureInfo.InvariantCulture)}) " +
                        $"recovered from 'sqrt_beta_t' gives {expected[i].ToString("R", CultureInfo.InvariantCulture)}: not the reference's linear schedule.");
            }
        }
        return scheduler;
    }

    /// <summary>
    /// Loads a checkpoint into a new network (eval mode, CPU), inferring the architecture when
    /// <paramref name="config"/> is null. Use <see cref="Load"/> to get the schedule as well.
    /// </summary>
    /// <param name="path">The checkpoint.</param>
    /// <param name="config">The architecture; inferred from the shapes when null (see <see cref="InferConfig"/>).</param>
    /// <param name="prefix">The prefix of the network's keys.</param>
    /// <returns>The network; the caller owns (and disposes) it.</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The checkpoint cannot be read or does not fit; the message names the file and the first mismatching key.</exception>
    public static ConditionalUNet FromPyTorch(string path, ConditionalUNetConfig? config = null, string prefix = DefaultPrefix)
    {
        using var loaded = Load(path, config, prefix);
        return loaded.DetachModel();
    }

    /// <summary>
    /// Loads a checkpoint: the network (architecture inferred when <paramref name="config"/> is null) and its
    /// schedule (rebuilt from the schedule buffers and verified, see <see cref="InferScheduler"/>; the default
    /// <see cref="DdpmScheduler"/> when the checkpoint has no buffers, recorded as <c>schedule_source = default</c>
    /// in <see cref="LoadedModel.Metadata"/>).
    /// </summary>
    /// <param name="path">The checkpoint.</param>
    /// <param name="config">The architecture; inferred when null.</param>
    /// <param name="prefix">The prefix of the network's keys.</param>
    /// <param name="device">Device of the network; CPU when null.</param>
    /// <returns>The network (eval mode), schedule and metadata (<c>source_format</c>, <c>source_file</c>,
    /// <c>schedule_source</c>); dispose it.</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The checkpoint cannot be read or does not fit; the message names the file and the first mismatching key.</exception>
    public static LoadedModel Load(string path, ConditionalUNetConfig? config = null, string prefix = DefaultPrefix, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        config?.Validate();
        LoadedModel loaded;
        using (var stateDict = ReadStateDict(path))
            loaded = WithSource(path, () => Build(stateDict, config, prefix, Path.GetFileName(path)));
        if (device is not null) ModelFile.MoveOrDispose(loaded, device);
        return loaded;
    }

    /// <summary>
    /// Converts a checkpoint to this library's model file (<see cref="ModelFile"/>) in one call: loads it as
    /// <see cref="Load"/> does and saves network, schedule and provenance metadata atomically.
    /// </summary>
    /// <param name="pthPath">The PyTorch checkpoint.</param>
    /// <param name="outPath">The model file to write.</param>
    /// <param name="config">The architecture; inferred when null.</param>
    /// <param name="prefix">The prefix of the network's keys.</param>
    /// <returns>The architecture and schedule that were written.</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="pthPath"/>.</exception>
    /// <exception cref="InvalidDataException">The checkpoint cannot be read or does not fit.</exception>
    public static (ConditionalUNetConfig Config, DdpmScheduler Scheduler) ConvertToModelFile(string pthPath, string outPath,
        ConditionalUNetConfig? config = null, string prefix = DefaultPrefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(outPath);
        using var loaded = Load(pthPath, config, prefix);
        var meta = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["converted_from"] = Path.GetFileName(pthPath),
            ["source_format"] = "pytorch",
            ["schedule_source"] = loaded.Metadata["schedule_source"],
        };
        ModelFile.Save(outPath, loaded.Model, loaded.Scheduler, meta);
        return (loaded.Model.Config, loaded.Scheduler);
    }

    private static LoadedModel Build(PyTorchStateDict stateDict, ConditionalUNetConfig? config, string prefix, string sourceFile)
    {
        var scheduler = InferScheduler(stateDict);
        if (config is null)
        {
            config = InferConfig(stateDict, prefix);
            // The inferred architecture must not need more than the checkpoint holds (a hostile shape could ask for terabytes).
            long present = stateDict.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal) && !ScheduleBufferNames.Contains(p.Key)).Sum(p => p.Value.numel());
            long? needed = StateDictBudget.ElementCount(config);
            if (!StateDictBudget.Allows(needed, present))
                throw new InvalidDataException(
                    $"The shapes of '{prefix}init_conv.conv1.0.weight', '{prefix}contextembed1.model.0.weight' and '{prefix}up0.0.weight' describe " +
                    $"{config}, which needs {needed?.ToString(CultureInfo.InvariantCulture) ?? "more than 2^63"} elements, but the checkpoint holds only {present} under '{prefix}'.");
        }
        var model = new ConditionalUNet(config);
        try
        {
            LoadInto(model, stateDict, prefix);
            model.eval();
            var meta = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["source_format"] = "pytorch",
                ["source_file"] = sourceFile,
                ["schedule_source"] = scheduler is null ? "default" : "checkpoint",
            };
            return new LoadedModel(model, scheduler ?? new DdpmScheduler(), meta, new Dictionary<string, Tensor>());
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static T WithSource<T>(string source, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{source}': {e.Message}", e);
        }
    }

    private static double Round6(double v) =>
        double.Parse(v.ToString("G6", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    private static long[] Shape(IReadOnlyDictionary<string, Tensor> stateDict, string key, int rank)
    {
        if (!stateDict.TryGetValue(key, out var t))
            throw new InvalidDataException($"Missing tensor '{key}', needed to infer the architecture.");
        if (t.dim() != rank) throw Mismatch(key, t.shape, $"a rank-{rank} tensor");
        return t.shape;
    }

    private static InvalidDataException Mismatch(string key, long[] shape, string expected) =>
        new($"Tensor '{key}' has shape [{string.Join(", ", shape)}] but {expected} is needed.");

    // ------------------------------------------------------------------ zip container

    private static PyTorchStateDict ReadZip(Stream stream)
    {
        long start = stream.Position;
        Span<byte> head = stackalloc byte[LegacyMagic.Length];
        int got = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        stream.Position = start;
        head = head[..got];
        if (!head.StartsWith(ZipSignature) && !head.StartsWith(EmptyZipSignature))
        {
            if (head.StartsWith(LegacyMagic))
                throw new InvalidDataException("it is in the legacy (PyTorch < 1.6, non-zip) torch.save format, which is not supported; " +
                    "re-save it with a current PyTorch: torch.save(torch.load(old), new)");
            if (head.Length > 0 && head[0] == 0x80)
                throw new InvalidDataException("it is a bare pickle, not a torch.save zip archive; bare pickles are refused (loading one could run code)");
            throw new InvalidDataException("it is not a zip archive (torch.save writes a zip since PyTorch 1.6)");
        }
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException or ArgumentException)
        {
            throw new InvalidDataException($"the zip archive is damaged: {e.Message}", e);
        }
        using (zip)
        {
            try
            {
                return ReadArchive(zip, stream.Length - start);
            }
            catch (Exception e) when (e is IOException or NotSupportedException or ArgumentException)
            {
                throw new InvalidDataException($"the zip archive is damaged: {e.Message}", e);
            }
        }
    }

    private static PyTorchStateDict ReadArchive(ZipArchive zip, long contentLength)
    {
        var pickles = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)
            && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
        if (pickles.Count != 1)
            throw new InvalidDataException(pickles.Count == 0
                ? "the zip archive has no <archive>/data.pkl entry, so it is not a torch.save checkpoint"
                : $"the zip archive has {pickles.Count} <archive>/data.pkl entries");
        string root = pickles[0].FullName[..^"data.pkl".Length];

        var byteOrder = zip.GetEntry(root + "byteorder");
        if (byteOrder is not null)
        {
            string order = ReadSmallText(byteOrder);
            if (order == "big") throw new InvalidDataException("the checkpoint was written on a big-endian machine; only little-endian checkpoints are supported");
            if (order != "little") throw new InvalidDataException($"its byteorder entry says '{SafeTensors.Truncate(order)}' (expected 'little')");
        }
        var version = zip.GetEntry(root + "version") ?? zip.GetEntry(root + ".data/version");
        if (version is not null)
        {
            string v = ReadSmallText(version);
            if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                throw new InvalidDataException($"its version entry says '{SafeTensors.Truncate(v)}' (expected an integer)");
        }

        var pickleEntry = pickles[0];
        if (pickleEntry.Length > PyTorchPickleReader.MaxPickleBytes)
            throw new InvalidDataException($"data.pkl is {pickleEntry.Length} bytes, above the limit of {PyTorchPickleReader.MaxPickleBytes}");
        var pickle = ReadEntry(pickleEntry, (int)pickleEntry.Length);
        var root0 = PyTorchPickleReader.Read(pickle);
        if (root0 is not PyTorchPickleReader.PyDict dict)
            throw new InvalidDataException($"data.pkl holds {PyTorchPickleReader.Describe(root0)}, not a state_dict (a dict of tensors)");

        var refs = new List<(string Key, PyTorchPickleReader.TensorRef Ref)>(dict.Items.Count);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (k, v) in dict.Items)
        {
            if (k is not string key)
                throw new InvalidDataException($"the state_dict has a key that is {PyTorchPickleReader.Describe(k)}, not a string");
            if (!keys.Add(key))
                throw new InvalidDataException($"the state_dict has the key '{SafeTensors.Truncate(key)}' twice");
            if (v is not PyTorchPickleReader.TensorRef r)
                throw new InvalidDataException($"the state_dict's value for '{SafeTensors.Truncate(key)}' is {PyTorchPickleReader.Describe(v)}, not a tensor");
            refs.Add((key, r));
        }

        var storages = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var result = new List<KeyValuePair<string, Tensor>>(refs.Count);
        try
        {
            long storageBytes = 0, tensorBytes = 0;
            foreach (var (_, r) in refs)
            {
                if (storages.ContainsKey(r.Storage.Key)) continue;
                var s = ReadStorage(zip, root, r.Storage, contentLength);
                storages.Add(r.Storage.Key, s);
                storageBytes += s.numel() * SafeTensors.ElementSize(s.dtype);
            }
            foreach (var (key, r) in refs)
            {
                var t = Materialise(key, r, storages[r.Storage.Key]);
                result.Add(new(key, t));
                tensorBytes += t.numel() * SafeTensors.ElementSize(t.dtype);
                // Tensors may share a storage (tied weights); bound what sharing can multiply.
                if (tensorBytes > 4 * storageBytes + (1 << 20))
                    throw new InvalidDataException($"the tensors up to '{SafeTensors.Truncate(key)}' need {tensorBytes} bytes, more than 4 times their storages ({storageBytes} bytes)");
            }
            return new PyTorchStateDict(result);
        }
        catch
        {
            foreach (var (_, t) in result) t.Dispose();
            throw;
        }
        finally
        {
            foreach (var s in storages.Values) s.Dispose();
        }
    }

    private static Tensor ReadStorage(ZipArchive zip, string root, PyTorchPickleReader.StorageRef storage, long contentLength)
    {
        string name = root + "data/" + storage.Key;
        var entry = zip.GetEntry(name) ?? throw new InvalidDataException($"the storage entry '{name}' is missing");
        long bytes;
        try
        {
            bytes = checked(storage.Numel * SafeTensors.ElementSize(storage.DType));
        }
        catch (OverflowException e)
        {
            throw new InvalidDataException($"storage '{storage.Key}' claims {storage.Numel} elements, which overflows", e);
        }
        if (entry.Length != bytes)
            throw new InvalidDataException($"the storage entry '{name}' has {entry.Length} bytes but the pickle describes {storage.Numel} {storage.DType} elements ({bytes} bytes)");
        // PyTorch stores storages uncompressed; requiring that bounds every allocation by the file's size.
        if (entry.CompressedLength != entry.Length || entry.CompressedLength > contentLength)
            throw new InvalidDataException($"the storage entry '{name}' is compressed or larger than the file; PyTorch stores storages uncompressed");
        var t = empty(new[] { storage.Numel }, storage.DType);
        try
        {
            if (bytes > 0)
            {
                using var s = entry.Open();
                try
                {
                    // TorchSharp allocates a buffer of this size per call: no more than the storage needs.
                    t.ReadBytesFromStream(s, (int)Math.Min(1 << 20, bytes));
                }
                catch (EndOfStreamException e)
                {
                    throw new InvalidDataException($"the storage entry '{name}' ends early", e);
                }
                if (s.ReadByte() != -1) throw new InvalidDataException($"the storage entry '{name}' is longer than declared");
                uint crc = 0;
                const long chunk = 1 << 24;
                long elementsPerChunk = chunk / SafeTensors.ElementSize(storage.DType);
                for (long at = 0; at < storage.Numel; at += elementsPerChunk)
                {
                    using var part = t.narrow(0, at, Math.Min(elementsPerChunk, storage.Numel - at));
                    crc = Crc32.Append(crc, part.bytes);
                }
                CheckCrc(entry, crc);
            }
            if (storage.DType == ScalarType.Bool && !SafeTensors.IsBoolean(t))
                throw new InvalidDataException($"the boolean storage '{name}' holds bytes other than 0 and 1");
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    private static Tensor Materialise(string key, PyTorchPickleReader.TensorRef r, Tensor storage)
    {
        string Where() => $"tensor '{SafeTensors.Truncate(key)}'";
        if (r.Size.Length > SafeTensors.MaxRank) throw new InvalidDataException($"{Where()} has rank {r.Size.Length}, above the limit of {SafeTensors.MaxRank}");
        if (r.Offset < 0) throw new InvalidDataException($"{Where()} has the negative storage offset {r.Offset}");
        long numel = 1, last = r.Offset;
        try
        {
            for (int i = 0; i < r.Size.Length; i++)
            {
                if (r.Size[i] < 0 || r.Stride[i] < 0)
                    throw new InvalidDataException($"{Where()} has a negative size or stride (size [{string.Join(", ", r.Size)}], stride [{string.Join(", ", r.Stride)}])");
                numel = checked(numel * r.Size[i]);
                if (r.Size[i] > 0) last = checked(last + (r.Size[i] - 1) * r.Stride[i]);
            }
        }
        catch (OverflowException e)
        {
            throw new InvalidDataException($"{Where()} has a size or stride that overflows", e);
        }
        long available = storage.numel();
        if (numel > 0 && last >= available)
            throw new InvalidDataException($"{Where()} (offset {r.Offset}, size [{string.Join(", ", r.Size)}], stride [{string.Join(", ", r.Stride)}]) reaches element {last} of a storage of {available}");
        if (numel > available)
            throw new InvalidDataException($"{Where()} has {numel} elements, more than its storage's {available} (expanded views are not supported)");
        var t = empty(r.Size, storage.dtype);
        if (numel > 0)
        {
            using var view = storage.as_strided(r.Size, r.Stride, r.Offset);
            t.copy_(view);
        }
        return t.DetachFromDisposeScope();
    }

    private static string ReadSmallText(ZipArchiveEntry entry)
    {
        if (entry.Length > 64) throw new InvalidDataException($"the entry '{entry.FullName}' is {entry.Length} bytes, too long");
        var bytes = ReadEntry(entry, (int)entry.Length);
        try
        {
            return new UTF8Encoding(false, true).GetString(bytes).Trim();
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"the entry '{entry.FullName}' is not UTF-8 text", e);
        }
    }

    private static byte[] ReadEntry(ZipArchiveEntry entry, int length)
    {
        var buffer = new byte[length];
        using var s = entry.Open();
        try
        {
            s.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"the entry '{entry.FullName}' ends early", e);
        }
        if (s.ReadByte() != -1) throw new InvalidDataException($"the entry '{entry.FullName}' is longer than declared");
        CheckCrc(entry, Crc32.Append(0, buffer));
        return buffer;
    }

    private static void CheckCrc(ZipArchiveEntry entry, uint actual)
    {
        // A zero CRC means "not recorded" (torch.serialization.set_crc32_options(False)); anything else must match.
        if (entry.Crc32 != 0 && entry.Crc32 != actual)
            throw new InvalidDataException($"the entry '{entry.FullName}' is damaged (CRC-32 {actual:x8}, the archive records {entry.Crc32:x8})");
    }
}
