using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using DiffusionClassifier.IO;
using static TorchSharp.torch;

namespace DiffusionClassifier.Serialization;

/// <summary>
/// Reads and writes the <a href="https://github.com/huggingface/safetensors">safetensors</a> format: an 8-byte
/// little-endian header length, a JSON header (dtype, shape and byte range of each tensor, plus an optional
/// string-to-string <c>__metadata__</c> map) and the raw little-endian tensor bytes. The format holds data only,
/// so loading never runs code.
/// </summary>
/// <remarks>
/// The reader trusts nothing: the header length is checked against the content and <see cref="MaxHeaderBytes"/>
/// before it is allocated; the header must be strict UTF-8 JSON (depth at most 8, no duplicate names); every
/// tensor's dtype, shape and byte range must agree, and the byte ranges must tile the data section exactly (no
/// gaps, overlaps or trailing bytes), so no tensor is allocated that the content does not hold. Booleans must be
/// 0 or 1. Every violation is an <see cref="InvalidDataException"/> saying what is wrong.
/// <para>Thread safety: static and stateless; all members may be called from several threads (writes to one path: the last complete file wins, see <see cref="AtomicFile"/>).</para>
/// </remarks>
internal static class SafeTensors
{
    /// <summary>The largest JSON header accepted (the reference implementation's limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The largest number of tensors accepted in one file.</summary>
    public const int MaxTensors = 100_000;

    /// <summary>The largest tensor rank accepted.</summary>
    public const int MaxRank = 64;

    private const string MetadataKey = "__metadata__";
    private const int CopyBufferBytes = 1 << 20;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Writes the tensors and metadata to <paramref name="path"/> atomically.</summary>
    /// <param name="path">Target file.</param>
    /// <param name="tensors">Tensors by name; they are copied to the CPU, contiguous.</param>
    /// <param name="metadata">Optional string metadata.</param>
    /// <exception cref="ArgumentException">A name is reserved, a tensor or metadata value is null, or a dtype cannot be stored.</exception>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        AtomicFile.Write(path, stream => Write(stream, tensors, metadata));
    }

    /// <summary>Writes the tensors and metadata to a stream.</summary>
    /// <param name="stream">Destination.</param>
    /// <param name="tensors">Tensors by name; written in ordinal name order.</param>
    /// <param name="metadata">Optional string metadata.</param>
    /// <exception cref="ArgumentException">A name is reserved, a tensor or metadata value is null, or a dtype cannot be stored.</exception>
    public static void Write(Stream stream, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Count > MaxTensors)
            throw new ArgumentException($"{tensors.Count} tensors exceed the limit of {MaxTensors}.", nameof(tensors));
        using var scope = NewDisposeScope();
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        var data = new List<Tensor>(names.Count);
        using var json = new MemoryStream();
        // Relaxed escaping keeps the metadata's JSON readable (\" rather than \u0022); the header is not HTML.
        using (var writer = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
                    writer.WriteString(key, value ?? throw new ArgumentException($"Metadata '{Truncate(key)}' is null.", nameof(metadata)));
                writer.WriteEndObject();
            }
            long offset = 0;
            foreach (var name in names)
            {
                if (name == MetadataKey)
                    throw new ArgumentException($"'{MetadataKey}' is reserved and cannot name a tensor.", nameof(tensors));
                var t = tensors[name] ?? throw new ArgumentException($"Tensor '{Truncate(name)}' is null.", nameof(tensors));
                if (t.dim() > MaxRank)
                    throw new ArgumentException($"Tensor '{Truncate(name)}' has rank {t.dim()}, above the limit of {MaxRank}.", nameof(tensors));
                string dtype = DTypeName(t.dtype, name);
                var cpu = t.detach().cpu().contiguous();
                data.Add(cpu);
                long bytes = cpu.numel() * ElementSize(t.dtype);
                writer.WriteStartObject(name);
                writer.WriteString("dtype", dtype);
                writer.WriteStartArray("shape");
                foreach (var d in t.shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + bytes);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += bytes;
            }
            writer.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so that the data is aligned, as the reference writer does.
        int pad = (int)((8 - json.Length % 8) % 8);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)(json.Length + pad));
        stream.Write(len);
        stream.Write(json.GetBuffer().AsSpan(0, (int)json.Length));
        for (int i = 0; i < pad; i++) stream.WriteByte((byte)' ');
        foreach (var t in data)
            if (t.numel() > 0) t.WriteBytesToStream(stream, (int)Math.Min(CopyBufferBytes, t.numel() * t.ElementSize));
    }

    /// <summary>Reads a safetensors file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The tensors (CPU) and metadata; dispose the result to free the tensors.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid safetensors file; the message names the file and the problem.</exception>
    public static SafeTensorsContent Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"No safetensors file at '{path}'.", path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            return Read(stream);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid safetensors file: {e.Message}", e);
        }
    }

    /// <summary>Reads safetensors content from a seekable stream, from its current position to its end.</summary>
    /// <param name="stream">A readable, seekable stream.</param>
    /// <returns>The tensors (CPU) and metadata; dispose the result to free the tensors.</returns>
    /// <exception cref="ArgumentException">The stream cannot seek or read.</exception>
    /// <exception cref="InvalidDataException">The content is not valid safetensors.</exception>
    public static SafeTensorsContent Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek || !stream.CanRead) throw new ArgumentException("The stream must be readable and seekable.", nameof(stream));
        long start = stream.Position;
        long available = stream.Length - start;
        if (available < 8) throw new InvalidDataException($"The content is {available} bytes long, too short for the 8-byte header length.");
        Span<byte> len = stackalloc byte[8];
        ReadExactly(stream, len);
        if (len[0] == 'P' && len[1] == 'K' && len[2] == 3 && len[3] == 4)
            throw new InvalidDataException("The content is a zip archive (a PyTorch .pth checkpoint? import it with PyTorchCheckpoint), not safetensors.");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (headerLength > (ulong)(available - 8))
            throw new InvalidDataException($"The header length field claims {headerLength} bytes but only {available - 8} follow.");
        if (headerLength > (ulong)MaxHeaderBytes)
            throw new InvalidDataException($"The header length field claims {headerLength} bytes, above the limit of {MaxHeaderBytes}.");
        var header = new byte[headerLength];
        ReadExactly(stream, header);
        long dataStart = start + 8 + (long)headerLength;
        long dataLength = available - 8 - (long)headerLength;

        var entries = ParseHeader(header, dataLength, out var metadata);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var e in entries)
            {
                var t = empty(e.Shape, e.DType);
                tensors.Add(e.Name, t);
                t.DetachFromDisposeScope();
                if (e.End == e.Begin) continue;
                stream.Position = dataStart + e.Begin;
                try
                {
                    // TorchSharp allocates a fresh buffer of this size per call: never more than the tensor needs
                    // (a 1 MB buffer per tensor made every load of a 128-tensor network allocate 128 MB of garbage).
                    t.ReadBytesFromStream(stream, (int)Math.Min(CopyBufferBytes, e.End - e.Begin));
                }
                catch (EndOfStreamException ex)
                {
                    throw new InvalidDataException($"The data of tensor '{Truncate(e.Name)}' ends early.", ex);
                }
                if (e.DType == ScalarType.Bool && !IsBoolean(t))
                    throw new InvalidDataException($"Boolean tensor '{Truncate(e.Name)}' holds bytes other than 0 and 1.");
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return new SafeTensorsContent(tensors, metadata);
    }

    /// <summary>Whether every byte of a contiguous CPU bool tensor is 0 or 1 (conversions would hide other values).</summary>
    internal static bool IsBoolean(Tensor t)
    {
        foreach (byte b in t.bytes)
            if (b > 1) return false;
        return true;
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer)
    {
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("The content ends early.", e);
        }
    }

    private sealed record Entry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

    private static List<Entry> ParseHeader(byte[] header, long dataLength, out Dictionary<string, string> metadata)
    {
        metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<Entry>();
        try
        {
            // System.Text.Json accepts some malformed UTF-8 inside strings; the format requires valid UTF-8.
            StrictUtf8.GetCharCount(header);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"The header is not valid UTF-8 (at byte {e.Index}).", e);
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8, AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The header is not valid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            // Raised while comparing names for duplicates when a name is not valid UTF-16 (a lone surrogate escape).
            throw new InvalidDataException($"The header holds a name that is not valid UTF-16 text: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"The header is a JSON {doc.RootElement.ValueKind}, not an object.");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                string name = NameOf(prop, "A tensor name");
                if (!seen.Add(name)) throw new InvalidDataException($"The header names '{Truncate(name)}' twice.");
                if (name == MetadataKey)
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new InvalidDataException($"{MetadataKey} is a JSON {prop.Value.ValueKind}, not an object.");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        string key = NameOf(m, "A metadata key");
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new InvalidDataException($"Metadata '{Truncate(key)}' is a JSON {m.Value.ValueKind}, not a string.");
                        if (!metadata.TryAdd(key, StringOf(m.Value, $"Metadata '{Truncate(key)}'")))
                            throw new InvalidDataException($"The metadata names '{Truncate(key)}' twice.");
                    }
                    continue;
                }
                if (entries.Count == MaxTensors)
                    throw new InvalidDataException($"The header lists more than {MaxTensors} tensors.");
                entries.Add(ParseEntry(name, prop.Value));
            }
        }
        // The byte ranges must tile the data buffer exactly: no gaps, overlaps or bytes past the end.
        entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long expected = 0;
        foreach (var e in entries)
        {
            if (e.Begin != expected)
                throw new InvalidDataException(e.Begin < expected
                    ? $"Tensor '{Truncate(e.Name)}' starts at byte {e.Begin}, inside the previous tensor, which ends at {expected} (overlap)."
                    : $"Tensor '{Truncate(e.Name)}' starts at byte {e.Begin} but the previous tensor ends at {expected} (gap).");
            expected = e.End;
        }
        if (expected != dataLength)
            throw new InvalidDataException(expected > dataLength
                ? $"The tensors need {expected} data bytes but only {dataLength} are present (truncated)."
                : $"The tensors cover {expected} data bytes but {dataLength} are present ({dataLength - expected} trailing bytes).");
        return entries;
    }

    private static string NameOf(JsonProperty prop, string what)
    {
        try
        {
            return prop.Name;
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidDataException($"{what} is not valid UTF-16 text: {e.Message}", e);
        }
    }

    private static string StringOf(JsonElement element, string what)
    {
        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidDataException($"{what} is not valid UTF-16 text: {e.Message}", e);
        }
    }

    private static Entry ParseEntry(string name, JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"Tensor '{Truncate(name)}' is described by a JSON {v.ValueKind}, not an object.");
        if (!v.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"Tensor '{Truncate(name)}' lacks a string 'dtype'.");
        if (!v.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"Tensor '{Truncate(name)}' lacks a 'shape' array.");
        if (!v.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new InvalidDataException($"Tensor '{Truncate(name)}' lacks a two-element 'data_offsets' array.");
        var dtype = ParseDType(StringOf(dtypeEl, $"The dtype of tensor '{Truncate(name)}'"), name);
        int rank = shapeEl.GetArrayLength();
        if (rank > MaxRank)
            throw new InvalidDataException($"Tensor '{Truncate(name)}' has rank {rank}, above the limit of {MaxRank}.");
        var shape = new long[rank];
        long count = 1;
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new InvalidDataException($"Tensor '{Truncate(name)}' has the invalid dimension {Truncate(d.GetRawText())} (a non-negative integer is needed).");
            shape[i++] = dim;
            count = MultiplyOrThrow(count, dim, name);
        }
        long begin = 0, end = 0;
        int k = 0;
        foreach (var o in offEl.EnumerateArray())
        {
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out long value) || value < 0)
                throw new InvalidDataException($"Tensor '{Truncate(name)}' has the invalid data offset {Truncate(o.GetRawText())} (a non-negative integer is needed).");
            if (k++ == 0) begin = value; else end = value;
        }
        if (end < begin)
            throw new InvalidDataException($"Tensor '{Truncate(name)}' has data_offsets [{begin}, {end}] that end before they begin.");
        long bytes = MultiplyOrThrow(count, ElementSize(dtype), name);
        if (end - begin != bytes)
            throw new InvalidDataException($"Tensor '{Truncate(name)}' has {end - begin} bytes but its dtype {DTypeName(dtype, name)} and shape [{string.Join(", ", shape)}] need {bytes}.");
        return new Entry(name, dtype, shape, begin, end);
    }

    private static long MultiplyOrThrow(long a, long b, string name)
    {
        try
        {
            return checked(a * b);
        }
        catch (OverflowException e)
        {
            throw new InvalidDataException($"Tensor '{Truncate(name)}' has a shape whose size overflows 64 bits.", e);
        }
    }

    private static string DTypeName(ScalarType t, string name) => t switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new ArgumentException($"Tensor '{Truncate(name)}' has dtype {t}, which safetensors cannot store here.", nameof(t)),
    };

    private static ScalarType ParseDType(string s, string name) => s switch
    {
        "F64" => ScalarType.Float64,
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => throw new InvalidDataException($"Tensor '{Truncate(name)}' has the unsupported dtype '{Truncate(s)}'."),
    };

    internal static long ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    /// <summary>Shortens untrusted text before it goes into a message.</summary>
    internal static string Truncate(string s, int max = 80) => s.Length <= max ? s : s[..max] + "...";
}
