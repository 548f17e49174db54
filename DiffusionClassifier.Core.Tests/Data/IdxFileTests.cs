using DiffusionClassifier.Data;

namespace DiffusionClassifier.Tests.Data;

public sealed class IdxFileTests : IDisposable
{
    private readonly TempFolder temp = new();

    public void Dispose() => temp.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ImagesRoundTrip(bool gzip)
    {
        var pixels = IdxBytes.Random(7 * 5 * 3, seed: 11);
        string path = temp.File("images");
        IdxFile.WriteImages(path, pixels, 7, 5, 3, gzip);

        var bytes = File.ReadAllBytes(path);
        Assert.Equal(gzip, bytes[0] == 0x1f && bytes[1] == 0x8b);
        if (!gzip)
            Assert.Equal(IdxBytes.ImagesFile(pixels, 7, 5, 3), bytes); // the exact layout, built independently

        var (count, rows, cols, read) = IdxFile.ReadImages(path);
        Assert.Equal((7, 5, 3), (count, rows, cols));
        Assert.Equal(pixels, read);
        Assert.Equal([path.Split('/')[^1]], temp.Entries()); // no temporary files left
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LabelsRoundTrip(bool gzip)
    {
        var labels = IdxBytes.Labels(33, 10, seed: 5);
        string path = temp.File("labels.gz");
        IdxFile.WriteLabels(path, labels, gzip);
        if (!gzip)
            Assert.Equal(IdxBytes.LabelsFile(labels), File.ReadAllBytes(path));
        Assert.Equal(labels, IdxFile.ReadLabels(path));
    }

    [Fact]
    public void GzipIsDetectedByContentNotByName()
    {
        var labels = IdxBytes.Labels(9, 10, seed: 2);
        File.WriteAllBytes(temp.File("compressed.idx"), IdxBytes.Gzip(IdxBytes.LabelsFile(labels)));
        File.WriteAllBytes(temp.File("plain.gz"), IdxBytes.LabelsFile(labels));
        Assert.Equal(labels, IdxFile.ReadLabels(temp.File("compressed.idx")));
        Assert.Equal(labels, IdxFile.ReadLabels(temp.File("plain.gz")));
    }

    [Fact]
    public void OtherRanksAreReadGenerically()
    {
        var payload = IdxBytes.Random(2 * 3 * 4 * 5, seed: 3);
        var content = IdxBytes.Concat(IdxBytes.Header(0x804, 2, 3, 4, 5), payload);
        var data = IdxFile.Read(new MemoryStream(content), "rank4");
        Assert.Equal([2, 3, 4, 5], data.Dimensions);
        Assert.Equal(0x804, data.Magic);
        Assert.Equal(payload, data.Data);

        string path = temp.File("rank4");
        IdxFile.Write(path, data);
        Assert.Equal(content, File.ReadAllBytes(path));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void UnseekableStreamsWithShortReadsWork(bool gzip)
    {
        var pixels = IdxBytes.Random(3 * 28 * 28, seed: 4);
        var content = IdxBytes.ImagesFile(pixels, 3, 28, 28);
        if (gzip)
            content = IdxBytes.Gzip(content);
        var images = IdxFile.ReadImages(new UnseekableStream(new MemoryStream(content)), "pipe");
        Assert.Equal(pixels, images.Pixels);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void TruncatedPayloadNamesFileExpectedAndActualLength(bool gzip, bool unseekable)
    {
        var content = IdxBytes.Concat(IdxBytes.Header(0x803, 10, 4, 4), IdxBytes.Random(150, 1)); // 160 declared
        var e = AssertInvalid(content, gzip, unseekable, "short-file");
        Assert.Contains("short-file", e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("160", e.Message);
        Assert.Contains("150", e.Message);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void TrailingGarbageIsRefused(bool gzip, bool unseekable)
    {
        var content = IdxBytes.Concat(IdxBytes.Header(0x801, 20), IdxBytes.Labels(20, 10, 1), [1, 2, 3, 4, 5]);
        var e = AssertInvalid(content, gzip, unseekable, "long-file");
        Assert.Contains("long-file", e.Message);
        Assert.Contains("trailing", e.Message);
        Assert.Contains("20", e.Message);
        Assert.Contains("25", e.Message);
    }

    [Theory]
    [InlineData(0x12345678u)]
    [InlineData(0x504B0304u)] // a zip file
    [InlineData(0x00010803u)]
    public void WrongMagicIsRefused(uint magic)
    {
        var e = AssertInvalid(IdxBytes.Concat(IdxBytes.Header(magic, 1, 1, 1), [0]), false, false, "magic");
        Assert.Contains("not an idx file", e.Message);
        Assert.Contains($"0x{magic:X8}", e.Message);
    }

    [Theory]
    [InlineData(0x00000D03u, "0x0D")] // float32
    [InlineData(0x00000903u, "0x09")] // signed byte
    public void OtherElementTypesAreRefused(uint magic, string type)
    {
        var e = AssertInvalid(IdxBytes.Concat(IdxBytes.Header(magic, 1, 1, 1), [0, 0, 0, 0]), false, false, "typed");
        Assert.Contains($"element type {type}", e.Message);
    }

    [Fact]
    public void ZeroRankIsRefused()
    {
        var e = AssertInvalid(IdxBytes.Header(0x800), false, false, "rank0");
        Assert.Contains("0 dimensions", e.Message);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(0x80000000u)]
    [InlineData(0xFFFFFFFFu)]
    public void NonPositiveDimensionsAreRefused(uint size)
    {
        var e = AssertInvalid(IdxBytes.Header(0x803, 2, size, 3), true, false, "dims");
        Assert.Contains("dimension 1", e.Message);
        Assert.Contains(((int)size).ToString(), e.Message);
    }

    [Fact]
    public void OverflowingDimensionsAreRefusedBeforeAllocating()
    {
        File.WriteAllBytes(temp.File("overflow"), IdxBytes.Header(0x803, 0x7fffffff, 0x7fffffff, 0x7fffffff));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(temp.File("overflow")));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated a large buffer");
        Assert.Contains("multiply to more than", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DimensionsAboveTheLimitAreRefusedBeforeAllocating(bool gzip)
    {
        var content = IdxBytes.Header(0x802, 0x7fffffff, 0x7fffffff); // 2^62 bytes: fits a long, not a limit
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = AssertInvalid(content, gzip, false, "huge");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated a large buffer");
        Assert.Contains("more than the limit", e.Message);

        var small = IdxBytes.Concat(IdxBytes.Header(0x801, 100), new byte[100]);
        var limited = Assert.Throws<InvalidDataException>(() => IdxFile.Read(new MemoryStream(small), "limited", maxPayloadBytes: 99));
        Assert.Contains("limit of 99", limited.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DeclaredSizeLargerThanTheFileIsRefusedWithoutAllocatingIt(bool gzip)
    {
        // 100 MB declared, 16 bytes present: the reader must not allocate the declared size.
        var content = IdxBytes.Concat(IdxBytes.Header(0x803, 1000, 1000, 100), new byte[16]);
        File.WriteAllBytes(temp.File("liar"), gzip ? IdxBytes.Gzip(content) : content);
        IdxFile.ReadLabels(WriteLabelsFile()); // warm up code paths so their one-time allocations do not count
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(temp.File("liar")));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 4 << 20, $"allocated {allocated} bytes");
        Assert.Contains("100000000", e.Message);
        Assert.Contains(" 16 ", e.Message);
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0, 0 })]
    [InlineData(new byte[] { 0, 0, 8, 3, 0, 0, 0, 1, 0, 0 })]
    public void ShortHeadersAreRefused(byte[] content)
    {
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(new MemoryStream(content), "tiny"));
        Assert.Contains("tiny", e.Message);
    }

    [Fact]
    public void TypedReadersCheckTheRank()
    {
        string labels = WriteLabelsFile();
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.ReadImages(labels));
        Assert.Contains("0x00000803", e.Message);
        Assert.Contains("0x00000801", e.Message);

        IdxFile.WriteImages(temp.File("img"), new byte[8], 2, 2, 2);
        Assert.Throws<InvalidDataException>(() => IdxFile.ReadLabels(temp.File("img")));
    }

    [Fact]
    public void CorruptGzipIsAnInvalidDataException()
    {
        var gz = IdxBytes.Gzip(IdxBytes.LabelsFile(IdxBytes.Labels(1000, 10, 1)));
        for (int i = 12; i < gz.Length - 8; i++)
            gz[i] ^= 0x5A;
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(new MemoryStream(gz), "bad.gz"));
        Assert.Contains("bad.gz", e.Message);

        var cut = IdxBytes.Gzip(IdxBytes.LabelsFile(IdxBytes.Labels(5000, 10, 2)));
        Assert.Throws<InvalidDataException>(() => IdxFile.Read(new MemoryStream(cut[..(cut.Length / 2)]), "cut.gz"));
    }

    [Fact]
    public void BadArgumentsThrow()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => IdxFile.Read(new MemoryStream(), "x", maxPayloadBytes: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => IdxFile.Read(new MemoryStream(), "x", maxPayloadBytes: long.MaxValue));
        Assert.Throws<FileNotFoundException>(() => IdxFile.Read(temp.File("missing")));
        var e = Assert.Throws<ArgumentException>(() => IdxFile.WriteImages(temp.File("w"), new byte[10], 2, 2, 2));
        Assert.Contains("8 bytes", e.Message);
        Assert.Throws<ArgumentException>(() => IdxFile.WriteImages(temp.File("w"), [], 0, 2, 2));
        Assert.Throws<ArgumentException>(() => IdxFile.WriteLabels(temp.File("w"), []));
        Assert.Empty(temp.Entries());
    }

    [Fact]
    public void WritesReplaceAtomically()
    {
        string path = temp.File("labels");
        IdxFile.WriteLabels(path, [1, 2, 3]);
        IdxFile.WriteLabels(path, [4, 5]);
        Assert.Equal(new byte[] { 4, 5 }, IdxFile.ReadLabels(path));
        Assert.Equal(["labels"], temp.Entries());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RandomMutationsGiveDataOrAnInvalidDataExceptionOnly(bool gzip)
    {
        var valid = IdxBytes.ImagesFile(IdxBytes.Random(6 * 5 * 5, 8), 6, 5, 5);
        if (gzip)
            valid = IdxBytes.Gzip(valid);
        var random = new Random(2024);
        int refused = 0;
        for (int iteration = 0; iteration < 2000; iteration++)
        {
            var bytes = (byte[])valid.Clone();
            switch (random.Next(3))
            {
                case 0: // flip a few bytes
                    for (int k = random.Next(1, 4); k > 0; k--)
                        bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                    break;
                case 1: // truncate
                    bytes = bytes[..random.Next(bytes.Length)];
                    break;
                default: // append
                    bytes = [.. bytes, .. IdxBytes.Random(random.Next(1, 40), iteration)];
                    break;
            }
            try
            {
                var data = IdxFile.Read(new MemoryStream(bytes), "mutant");
                Assert.Equal(data.Dimensions.Aggregate(1L, (a, d) => a * d), data.Data.LongLength);
            }
            catch (InvalidDataException)
            {
                refused++;
            }
        }
        Assert.True(refused > 1000, $"only {refused} of 2000 mutants refused");
    }

    private string WriteLabelsFile()
    {
        string path = temp.File("some-labels");
        IdxFile.WriteLabels(path, IdxBytes.Labels(10, 10, 9));
        return path;
    }

    private InvalidDataException AssertInvalid(byte[] content, bool gzip, bool unseekable, string name)
    {
        var bytes = gzip ? IdxBytes.Gzip(content) : content;
        if (unseekable)
            return Assert.Throws<InvalidDataException>(() => IdxFile.Read(new UnseekableStream(new MemoryStream(bytes)), name));
        File.WriteAllBytes(temp.File(name), bytes);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(temp.File(name)));
        Assert.Contains(temp.File(name), e.Message);
        return e;
    }
}
