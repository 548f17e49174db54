using System.Buffers.Binary;
using System.Text;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Serialization;

/// <summary>
/// Damaged and hostile model files, one row each: every one must be refused with an
/// <see cref="InvalidDataException"/> that names the file, quickly and without allocating what the file claims.
/// (Safetensors has no checksum: a flipped bit inside the tensor data loads as a changed weight; that case is
/// checked to load, not to be refused.)
/// </summary>
public sealed class DamagedModelFileTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("dc-damaged-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private static readonly Lazy<byte[]> Valid = new(() =>
    {
        using var net = TinyModels.Create(seed: 5);
        using var ms = new MemoryStream();
        string path = Path.Combine(Path.GetTempPath(), $"dc-valid-{Guid.NewGuid():N}.safetensors");
        try
        {
            ModelFile.Save(path, net, new DdpmScheduler());
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    });

    private static int HeaderLength(byte[] file) => (int)BinaryPrimitives.ReadUInt64LittleEndian(file);

    private static byte[] WithHeaderLength(byte[] file, ulong length)
    {
        var copy = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(copy, length);
        return copy;
    }

    /// <summary>A file whose tensors are the tiny network's state_dict changed by <paramref name="change"/>.</summary>
    private static byte[] WithTensors(Action<Dictionary<string, Tensor>> change)
    {
        using var scope = NewDisposeScope();
        using var net = TinyModels.Create(seed: 5);
        var tensors = net.state_dict().ToDictionary(p => p.Key, p => p.Value);
        change(tensors);
        var meta = new Dictionary<string, string>
        {
            [ModelFile.FormatKey] = ModelFile.FormatName,
            [ModelFile.FormatVersionKey] = "1",
            [ModelFile.ConfigKey] = """{"in_channels":1,"features":8,"classes":10,"height":8,"width":8}""",
            [ModelFile.ScheduleKey] = """{"num_train_timesteps":400,"beta_start":0.0001,"beta_end":0.02}""",
        };
        using var ms = new MemoryStream();
        SafeTensors.Write(ms, tensors, meta);
        return ms.ToArray();
    }

    private static byte[] ReplaceInHeader(byte[] file, string from, string to)
    {
        int length = HeaderLength(file);
        string header = Encoding.UTF8.GetString(file, 8, length);
        Assert.Contains(from, header);
        byte[] newHeader = Encoding.UTF8.GetBytes(header.Replace(from, to));
        var result = new byte[8 + newHeader.Length + file.Length - 8 - length];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)newHeader.Length);
        newHeader.CopyTo(result, 8);
        file.AsSpan(8 + length).CopyTo(result.AsSpan(8 + newHeader.Length));
        return result;
    }

    public static TheoryData<string> Kinds() => new()
    {
        "empty", "7 bytes", "header cut in half", "last byte missing", "half the data missing", "trailing garbage",
        "header length 2^40", "header length 3 GB", "header length past the end", "header length 0",
        "header not JSON", "header JSON unbalanced", "offsets past the data", "overlapping offsets", "negative dimension",
        "shape of 2^62 elements", "unknown dtype", "missing tensor", "extra tensor", "wrong shape", "float64 weights",
        "int64 counter stored as float32", "no config metadata", "config of a petabyte network", "schedule with T = 0",
        "not a model file (format)", "a PNG", "text",
    };

    private static byte[] Make(string kind)
    {
        var valid = Valid.Value;
        int h = HeaderLength(valid);
        return kind switch
        {
            "empty" => Array.Empty<byte>(),
            "7 bytes" => valid[..7],
            "header cut in half" => valid[..(8 + h / 2)],
            "last byte missing" => valid[..^1],
            "half the data missing" => valid[..(8 + h + (valid.Length - 8 - h) / 2)],
            "trailing garbage" => [.. valid, 1, 2, 3],
            "header length 2^40" => WithHeaderLength(valid, 1UL << 40),
            "header length 3 GB" => WithHeaderLength(valid, 3UL << 30),
            "header length past the end" => WithHeaderLength(valid, (ulong)valid.Length),
            "header length 0" => WithHeaderLength(valid, 0),
            "header not JSON" => ReplaceInHeader(valid, "{", "x"),
            "header JSON unbalanced" => ReplaceInHeader(valid, "{\"__metadata__\"", "[{\"__metadata__\""),
            "offsets past the data" => ReplaceInHeader(valid, "\"data_offsets\":[0,", "\"data_offsets\":[100000000,"),
            "overlapping offsets" => ReplaceInHeader(valid, "\"data_offsets\":[0,", "\"data_offsets\":[4,"),
            "negative dimension" => ReplaceInHeader(valid, "\"shape\":[", "\"shape\":[-1,"),
            "shape of 2^62 elements" => ReplaceInHeader(valid, "\"shape\":[", "\"shape\":[4611686018427387904,"),
            "unknown dtype" => ReplaceInHeader(valid, "\"dtype\":\"F32\"", "\"dtype\":\"F99\""),
            "missing tensor" => WithTensors(t => t.Remove("up1.model.0.weight")),
            "extra tensor" => WithTensors(t => t["up9.weight"] = zeros(2)),
            "wrong shape" => WithTensors(t => t["out.3.weight"] = zeros(3, 3)),
            "float64 weights" => WithTensors(t => t["down2.model.0.conv1.0.weight"] = t["down2.model.0.conv1.0.weight"].to(ScalarType.Float64)),
            "int64 counter stored as float32" => WithTensors(t => t["init_conv.conv1.1.num_batches_tracked"] = t["init_conv.conv1.1.num_batches_tracked"].to(ScalarType.Float32)),
            "no config metadata" => ReplaceInHeader(valid, "\"config\":", "\"konfig\":"),
            "config of a petabyte network" => ReplaceInHeader(valid, "\\\"features\\\":8", "\\\"features\\\":1048576"),
            "schedule with T = 0" => ReplaceInHeader(valid, "\\\"num_train_timesteps\\\":400", "\\\"num_train_timesteps\\\":0"),
            "not a model file (format)" => ReplaceInHeader(valid, "diffusion-classifier", "something-else"),
            "a PNG" => Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="),
            "text" => "this is not a model"u8.ToArray(),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void IsRefusedWithInvalidDataExceptionNamingTheFile(string kind)
    {
        string path = Path.Combine(folder, "damaged.safetensors");
        File.WriteAllBytes(path, Make(kind));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => ModelFile.Load(path));
        Assert.Contains("damaged.safetensors", error.Message);
        // A hang detector: the files are small, so refusing one takes milliseconds even on a slow, loaded machine
        // (the allocation bound below catches reading what a header claims).
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"{kind}: took {clock.Elapsed}");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocated < 64L << 20, $"{kind}: allocated {(GC.GetAllocatedBytesForCurrentThread() - allocated) >> 20} MB");
    }

    [Fact]
    public void TheUndamagedFileAndAFlippedDataBitLoad()
    {
        string path = Path.Combine(folder, "ok.safetensors");
        File.WriteAllBytes(path, Valid.Value);
        using (var loaded = ModelFile.Load(path))
            Assert.Equal(8, loaded.Model.Config.Features);
        var flipped = (byte[])Valid.Value.Clone();
        flipped[^3] ^= 0x10; // inside the last tensor's data: no checksum in safetensors, so this loads
        File.WriteAllBytes(path, flipped);
        using (var loaded = ModelFile.Load(path))
            Assert.Equal(8, loaded.Model.Config.Features);
    }
}
