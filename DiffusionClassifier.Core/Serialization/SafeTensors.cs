using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace DiffusionClassifier.Serialization;

/// <summary>
/// Reads and writes the <a href="https://github.com/huggingface/safetensors">safetensors</a> format: an 8-byte
/// little-endian header length, a JSON header (dtype, shape and byte range of each tensor, plus an optional
/// string-to-string <c>__metadata__</c> map) and the raw little-endian tensor bytes. The format holds data only,
/// so loading never runs code. Every length and offset is checked against the file before anything is allocated.
/// </summary>
public static class SafeTensors
{
    /// <summary>The largest JSON header accepted (the reference implementation's limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>Writes the tensors and metadata to <paramref name="path"/> atomically.</summary>
    /// <param name="path">Target file.</param>
    /// <param name="tensors">Tensors by name; they are copied to the CPU, contiguous.</param>
    /// <param name="metadata">Optional string metadata.</param>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.Write(path, stream => Write(stream, tensors, metadata));

    /// <summary>Writes the tensors and metadata to a stream.</summary>
    /// <param name="stream">Destination.</param>
    /// <param name="tensors">Tensors by name.</param>
    /// <param name="metadata">Optional string metadata.</param>
    public static void Write(Stream stream, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        using var scope = NewDisposeScope();
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        var buffers = new List<byte[]>(names.Count);
        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
                    writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            long offset = 0;
            foreach (var name in names)
            {
                if (name == MetadataKey)
                    throw new ArgumentException($"'{MetadataKey}' is reserved and cannot name a tensor.", nameof(tensors));
                var t = tensors[name] ?? throw new ArgumentException($"Tensor '{name}' is null.", nameof(tensors));
                var bytes = t.detach().cpu().contiguous().bytes.ToArray();
                buffers.Add(bytes);
                writer.WriteStartObject(name);
                writer.WriteString("dtype", DTypeName(t.dtype));
                writer.WriteStartArray("shape");
                foreach (var d in t.shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + bytes.Length);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += bytes.Length;
            }
            writer.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so that the data is aligned, as the reference writer does.
        int pad = (int)((8 - json.Length % 8) % 8);
        var header = new byte[json.Length + pad];
        json.ToArray().CopyTo(header, 0);
        header.AsSpan((int)json.Length).Fill((byte)' ');
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        stream.Write(len);
        stream.Write(header);
        foreach (var b in buffers) stream.Write(b);
    }

    /// <summary>Reads a safetensors file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The tensors (CPU) and metadata; dispose the result to free the tensors.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid safetensors file.</exception>
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
    /// <exception cref="InvalidDataException">The content is not valid safetensors.</exception>
    public static SafeTensorsContent Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek) throw new ArgumentException("The stream must be seekable.", nameof(stream));
        long available = stream.Length - stream.Position;
        if (available < 8) throw new InvalidDataException($"The content is {available} bytes long, too short for the 8-byte header length.");
        Span<byte> len = stackalloc byte[8];
        stream.ReadExactly(len);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (headerLength > (ulong)MaxHeaderBytes || headerLength > (ulong)(available - 8))
            throw new InvalidDataException($"The header claims {headerLength} bytes but only {available - 8} follow (limit {MaxHeaderBytes}).");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        long dataLength = available - 8 - (long)headerLength;

        var entries = ParseHeader(header, dataLength, out var metadata);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        long dataStart = stream.Position;
        try
        {
            foreach (var e in entries)
            {
                var bytes = new byte[e.End - e.Begin];
                stream.Position = dataStart + e.Begin;
                stream.ReadExactly(bytes);
                var t = empty(e.Shape, e.DType);
                if (bytes.Length > 0) t.bytes = bytes;
                t.DetachFromDisposeScope();
                tensors.Add(e.Name, t);
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return new SafeTensorsContent(tensors, metadata);
    }

    private sealed record Entry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

    private static List<Entry> ParseHeader(byte[] header, long dataLength, out Dictionary<string, string> metadata)
    {
        metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<Entry>();
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The header is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException("The header is not a JSON object.");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw new InvalidDataException($"The header names '{prop.Name}' twice.");
                if (prop.Name == MetadataKey)
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new InvalidDataException("__metadata__ is not an object.");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"Metadata '{m.Name}' is not a string.");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(prop));
            }
        }
        // The byte ranges must tile the data buffer exactly: no gaps, overlaps or bytes past the end.
        long expected = 0;
        foreach (var e in entries.OrderBy(e => e.Begin))
        {
            if (e.Begin != expected)
                throw new InvalidDataException($"Tensor '{e.Name}' starts at byte {e.Begin} but {expected} was expected (gap or overlap).");
            expected = e.End;
        }
        if (expected != dataLength)
            throw new InvalidDataException($"The tensors cover {expected} bytes but the data section has {dataLength} (truncated or trailing bytes).");
        return entries;
    }

    private static Entry ParseEntry(JsonProperty prop)
    {
        string name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object
            || !v.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String
            || !v.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array
            || !v.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new InvalidDataException($"Tensor '{name}' lacks a valid dtype, shape or data_offsets.");
        var dtype = ParseDType(dtypeEl.GetString()!, name);
        var shape = new long[shapeEl.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new InvalidDataException($"Tensor '{name}' has an invalid dimension.");
            shape[i++] = dim;
            try { count = checked(count * dim); }
            catch (OverflowException) { throw new InvalidDataException($"Tensor '{name}' has a shape whose size overflows."); }
        }
        var offsets = offEl.EnumerateArray().ToArray();
        if (!offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new InvalidDataException($"Tensor '{name}' has invalid data_offsets.");
        long bytes;
        try { bytes = checked(count * ElementSize(dtype)); }
        catch (OverflowException) { throw new InvalidDataException($"Tensor '{name}' has a shape whose size overflows."); }
        if (end - begin != bytes)
            throw new InvalidDataException($"Tensor '{name}' has {end - begin} bytes but its dtype and shape need {bytes}.");
        return new Entry(name, dtype, shape, begin, end);
    }

    private static string DTypeName(ScalarType t) => t switch
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
        _ => throw new ArgumentException($"Tensors of dtype {t} cannot be stored in safetensors.", nameof(t)),
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
        _ => throw new InvalidDataException($"Tensor '{name}' has the unsupported dtype '{s}'."),
    };

    private static long ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };
}
