using System.Buffers.Binary;
using System.Text;
using DiffusionClassifier.Serialization;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Serialization;

[Collection(SerializationCollection.Name)]
public class SafeTensorsTests
{
    public static TheoryData<ScalarType> AllDTypes() => new()
    {
        ScalarType.Float64, ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Int64,
        ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
    };

    private static Tensor Sample(ScalarType dtype, long[] shape, long seed)
    {
        var g = new Generator((ulong)seed);
        return dtype switch
        {
            ScalarType.Bool => randint(0, 2, shape, ScalarType.Int64, generator: g).to(ScalarType.Bool),
            ScalarType.Byte => randint(0, 256, shape, ScalarType.Int64, generator: g).to(dtype),
            ScalarType.Int8 => randint(-128, 128, shape, ScalarType.Int64, generator: g).to(dtype),
            ScalarType.Int16 => randint(-32768, 32768, shape, ScalarType.Int64, generator: g).to(dtype),
            ScalarType.Int32 => randint(int.MinValue, int.MaxValue, shape, ScalarType.Int64, generator: g).to(dtype),
            ScalarType.Int64 => randint(long.MinValue / 2, long.MaxValue / 2, shape, ScalarType.Int64, generator: g),
            _ => (randn(shape, ScalarType.Float64, generator: g) * 1e3).to(dtype),
        };
    }

    private static byte[] Serialize(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? meta = null)
    {
        using var ms = new MemoryStream();
        SafeTensors.Write(ms, tensors, meta);
        return ms.ToArray();
    }

    private static SafeTensorsContent Parse(byte[] bytes) => SafeTensors.Read(new MemoryStream(bytes));

    /// <summary>A file with a hand-written header and data section.</summary>
    private static byte[] Raw(string header, int dataBytes = 0, long? declaredLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var result = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)(declaredLength ?? h.Length));
        h.CopyTo(result, 8);
        return result;
    }

    private static InvalidDataException Refused(byte[] bytes) => Assert.Throws<InvalidDataException>(() => Parse(bytes).Dispose());

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void RoundTripKeepsEveryDtypeBitForBit(ScalarType dtype)
    {
        using var a = Sample(dtype, [3, 5, 2], 1);
        using var scalar = Sample(dtype, [], 2);
        using var empty = zeros([0, 4], dtype);
        using var strided = Sample(dtype, [6, 4], 3);
        using var view = strided.t()[1..3]; // non-contiguous: written contiguous
        var bytes = Serialize(new Dictionary<string, Tensor> { ["a"] = a, ["scalar"] = scalar, ["empty"] = empty, ["view"] = view });
        using var content = Parse(bytes);
        foreach (var (name, expected) in new[] { ("a", a), ("scalar", scalar), ("empty", empty), ("view", view) })
        {
            var got = content.Tensors[name];
            Assert.Equal(dtype, got.dtype);
            Assert.Equal(expected.shape, got.shape);
            Assert.Equal(expected.contiguous().bytes.ToArray(), got.bytes.ToArray());
        }
    }

    [Fact]
    public void SpecialFloatsAndMetadataSurviveAFileRoundTrip()
    {
        string path = Path.Combine(Path.GetTempPath(), $"st-{Guid.NewGuid():N}.safetensors");
        try
        {
            using var special = tensor(new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f, float.Epsilon, float.MaxValue });
            var meta = new Dictionary<string, string> { ["format"] = "pt", ["unicode"] = "ünïcödé \u2603 \"quoted\"", ["empty"] = "" };
            SafeTensors.Save(path, new Dictionary<string, Tensor> { ["special"] = special }, meta);
            using var content = SafeTensors.Load(path);
            Assert.Equal(special.bytes.ToArray(), content.Tensors["special"].bytes.ToArray());
            Assert.Equal(meta, content.Metadata);
            var raw = File.ReadAllBytes(path);
            Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(raw) % 8); // header padded for alignment
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void WriterRefusesWhatItCannotStore()
    {
        using var t = ones(2);
        using var complex = zeros([2], ScalarType.ComplexFloat32);
        var ex = Assert.Throws<ArgumentException>(() => Serialize(new Dictionary<string, Tensor> { ["__metadata__"] = t }));
        Assert.Contains("__metadata__", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Serialize(new Dictionary<string, Tensor> { ["c"] = complex }));
        Assert.Contains("'c'", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Serialize(new Dictionary<string, Tensor> { ["n"] = null! }));
        Assert.Contains("'n'", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Serialize(new Dictionary<string, Tensor> { ["t"] = t }, new Dictionary<string, string> { ["k"] = null! }));
        Assert.Contains("'k'", ex.Message);
    }

    [Fact]
    public void MissingFileIsFileNotFoundAndDamagedFileMessageNamesTheFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"st-{Guid.NewGuid():N}.safetensors");
        Assert.Throws<FileNotFoundException>(() => SafeTensors.Load(path));
        try
        {
            File.WriteAllBytes(path, [1, 2, 3]);
            var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
            Assert.Contains(path, ex.Message);
            Assert.Contains("too short", ex.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void HeaderLengthPastTheEndIsRefusedBeforeAllocation()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Refused(Raw("{}", declaredLength: 1L << 40));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
        Assert.Contains("claims 1099511627776 bytes but only 2 follow", ex.Message);
        ex = Refused(Raw("{}", declaredLength: 3));
        Assert.Contains("claims 3 bytes", ex.Message);
        ex = Refused(Raw("{}", declaredLength: -1)); // 2^64 - 1
        Assert.Contains("18446744073709551615", ex.Message);
    }

    [Fact]
    public void HeaderAboveTheLimitIsRefusedBeforeItIsAllocated()
    {
        // A sparse 200 MB file whose header length (150 MB) fits in the file but exceeds the 100 MB limit.
        string path = Path.Combine(Path.GetTempPath(), $"st-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var fs = new FileStream(path, FileMode.CreateNew))
            {
                var len = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, 150_000_000UL);
                fs.Write(len);
                fs.SetLength(200_000_000L);
            }
            long before = GC.GetAllocatedBytesForCurrentThread();
            var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Contains("above the limit of 100000000", ex.Message);
            Assert.Contains(path, ex.Message);
            Assert.True(allocated < 10_000_000, $"{allocated} bytes were allocated before refusing");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TruncationAtEveryLengthIsRefused()
    {
        using var a = Sample(ScalarType.Float32, [4, 3], 5);
        using var b = Sample(ScalarType.Int64, [5], 6);
        var bytes = Serialize(new Dictionary<string, Tensor> { ["a"] = a, ["b"] = b }, new Dictionary<string, string> { ["m"] = "v" });
        for (int n = 0; n < bytes.Length; n++)
        {
            var ex = Refused(bytes[..n]);
            Assert.False(string.IsNullOrWhiteSpace(ex.Message));
        }
        using var whole = Parse(bytes);
        Assert.Equal(2, whole.Tensors.Count);
    }

    [Fact]
    public void EveryBitFlipInTheHeaderGivesOnlyInvalidDataOrAValidFile()
    {
        using var a = Sample(ScalarType.Float32, [2, 3], 7);
        using var b = Sample(ScalarType.Bool, [4], 8);
        var bytes = Serialize(new Dictionary<string, Tensor> { ["a"] = a, ["flag"] = b }, new Dictionary<string, string> { ["m"] = "v" });
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        int refused = 0, loaded = 0;
        for (int i = 0; i < headerEnd; i++)
        {
            for (int bit = 0; bit < 8; bit++)
            {
                var copy = (byte[])bytes.Clone();
                copy[i] ^= (byte)(1 << bit);
                try
                {
                    using var c = Parse(copy);
                    loaded++;
                }
                catch (InvalidDataException)
                {
                    refused++;
                }
            }
        }
        Assert.True(refused > headerEnd * 4, $"only {refused} of {headerEnd * 8} flips were refused");
        Assert.True(loaded > 0, "no flip kept the file valid (e.g. a changed letter of a name)");
    }

    [Theory]
    [InlineData("[]", "not an object")]
    [InlineData("\"x\"", "not an object")]
    [InlineData("{", "not valid JSON")]
    [InlineData("{} x", "not valid JSON")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "'a'")]
    [InlineData("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", "'k'")]
    [InlineData("{\"__metadata__\":[]}", "__metadata__ is a JSON Array")]
    [InlineData("{\"__metadata__\":{\"k\":1}}", "Metadata 'k' is a JSON Number")]
    [InlineData("{\"a\":1}", "Tensor 'a' is described by a JSON Number")]
    [InlineData("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "Tensor 'a' lacks a string 'dtype'")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "Tensor 'a' lacks a 'shape'")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "Tensor 'a' lacks a two-element 'data_offsets'")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", "two-element")]
    [InlineData("{\"a\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}", "unsupported dtype 'C64'")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "invalid dimension -1")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "invalid dimension 1.5")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", "invalid dimension")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", "invalid dimension")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", "overflows")]
    [InlineData("{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,4]}}", "overflows")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", "invalid data offset")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", "invalid data offset -4")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", "end before they begin")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "has 4 bytes but its dtype F32 and shape [2] need 8")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "need 4 data bytes but only 0")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "gap")]
    [InlineData("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "not valid UTF-16")]
    [InlineData("{\"__metadata__\":{\"k\":\"\\udc00\"}}", "not valid UTF-16")]
    public void MalformedHeadersAreRefusedWithAReason(string header, string expected)
    {
        var ex = Refused(Raw(header));
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void OverlappingAndGappedOffsetsAndTrailingBytesAreRefused()
    {
        const string two = "{{\"a\":{{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[{0},{1}]}},\"b\":{{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[{2},{3}]}}}}";
        Assert.Contains("overlap", Refused(Raw(string.Format(two, 0, 8, 4, 12), 12)).Message);
        Assert.Contains("overlap", Refused(Raw(string.Format(two, 0, 8, 0, 8), 16)).Message);
        Assert.Contains("gap", Refused(Raw(string.Format(two, 0, 8, 12, 20), 20)).Message);
        Assert.Contains("4 trailing bytes", Refused(Raw(string.Format(two, 0, 8, 8, 16), 20)).Message);
        using var ok = Parse(Raw(string.Format(two, 8, 16, 0, 8), 16)); // any order is fine
        Assert.Equal(2, ok.Tensors.Count);
    }

    [Fact]
    public void NonUtf8HeaderIsRefused()
    {
        var bytes = Raw("{\"__metadata__\":{\"k\":\"xx\"}}");
        int at = Array.IndexOf(bytes, (byte)'x');
        bytes[at] = 0xC3; // a lead byte followed by an ASCII byte: invalid UTF-8 inside a string
        Assert.Contains("not valid UTF-8", Refused(bytes).Message);
        bytes[at] = 0xFF;
        Assert.Contains("not valid UTF-8", Refused(bytes).Message);
    }

    [Fact]
    public void JsonNestingBombIsRefusedWithoutRecursion()
    {
        var bomb = "{\"__metadata__\":" + new string('[', 1_000_000) + new string(']', 1_000_000) + "}";
        Assert.Contains("not valid JSON", Refused(Raw(bomb)).Message);
        var objects = string.Concat(Enumerable.Repeat("{\"a\":", 100_000)) + "1" + new string('}', 100_000);
        Assert.Contains("not valid JSON", Refused(Raw(objects)).Message);
    }

    [Fact]
    public void InvalidBooleanBytesAreRefused()
    {
        var bytes = Raw("{\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}", 3);
        bytes[^1] = 1;
        using (var ok = Parse(bytes)) Assert.True(ok.Tensors["b"][2].item<bool>());
        bytes[^1] = 2;
        Assert.Contains("Boolean tensor 'b'", Refused(bytes).Message);
    }

    [Fact]
    public void ExcessiveRankAndTensorCountAreRefused()
    {
        string shape = string.Join(",", Enumerable.Repeat("1", SafeTensors.MaxRank + 1));
        Assert.Contains("rank 65", Refused(Raw($"{{\"a\":{{\"dtype\":\"F32\",\"shape\":[{shape}],\"data_offsets\":[0,4]}}}}", 4)).Message);
        var many = new StringBuilder("{");
        for (int i = 0; i <= SafeTensors.MaxTensors; i++)
            many.Append(i == 0 ? "" : ",").Append($"\"t{i}\":{{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}");
        many.Append('}');
        Assert.Contains($"more than {SafeTensors.MaxTensors} tensors", Refused(Raw(many.ToString())).Message);
    }

    [Fact]
    public void ReadsFromTheStreamsCurrentPosition()
    {
        using var a = Sample(ScalarType.Float32, [3], 9);
        var bytes = Serialize(new Dictionary<string, Tensor> { ["a"] = a });
        var prefixed = new byte[5].Concat(bytes).ToArray();
        using var ms = new MemoryStream(prefixed) { Position = 5 };
        using var content = SafeTensors.Read(ms);
        Assert.Equal(a.bytes.ToArray(), content.Tensors["a"].bytes.ToArray());
    }
}
