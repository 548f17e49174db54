using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using DiffusionClassifier.Data;

namespace DiffusionClassifier.Tests.Data;

/// <summary>A temporary folder removed on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder() => Path = Directory.CreateTempSubdirectory("dc-data-test-").FullName;

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Names of everything in the folder (files and folders, hidden ones included), sorted.</summary>
    public string[] Entries(string? sub = null) =>
        Directory.Exists(sub ?? Path)
            ? Directory.EnumerateFileSystemEntries(sub ?? Path).Select(p => System.IO.Path.GetFileName(p)).OrderBy(n => n, StringComparer.Ordinal).ToArray()
            : [];

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}

/// <summary>Builds idx content by hand (independently of <see cref="IdxFile"/>'s writer) and small fake datasets.</summary>
internal static class IdxBytes
{
    /// <summary>A big-endian header: magic, then the dimension sizes.</summary>
    public static byte[] Header(uint magic, params uint[] dims)
    {
        var header = new byte[4 + 4 * dims.Length];
        BinaryPrimitives.WriteUInt32BigEndian(header, magic);
        for (int i = 0; i < dims.Length; i++)
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4 + 4 * i), dims[i]);
        return header;
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    public static byte[] Gzip(byte[] content)
    {
        using var memory = new MemoryStream();
        using (var zip = new GZipStream(memory, CompressionLevel.Fastest, leaveOpen: true))
            zip.Write(content);
        return memory.ToArray();
    }

    public static byte[] Random(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static byte[] Labels(int count, int classes, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (byte)random.Next(classes)).ToArray();
    }

    /// <summary>Raw idx3 bytes of <paramref name="count"/> images.</summary>
    public static byte[] ImagesFile(byte[] pixels, int count, int rows, int cols) =>
        Concat(Header(0x803, (uint)count, (uint)rows, (uint)cols), pixels);

    public static byte[] LabelsFile(byte[] labels) => Concat(Header(0x801, (uint)labels.Length), labels);

    public static string Sha256(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));

    /// <summary>Four small fake MNIST files (raw idx content) and their <see cref="MnistFileInfo"/>s.</summary>
    public static (Dictionary<string, byte[]> Content, MnistFileInfo[] Infos) FakeMnist(int train = 12, int test = 5, int side = 4, int seed = 1)
    {
        var content = new Dictionary<string, byte[]>
        {
            [MnistFiles.TrainImages] = ImagesFile(Random(train * side * side, seed), train, side, side),
            [MnistFiles.TrainLabels] = LabelsFile(Labels(train, 10, seed + 1)),
            [MnistFiles.TestImages] = ImagesFile(Random(test * side * side, seed + 2), test, side, side),
            [MnistFiles.TestLabels] = LabelsFile(Labels(test, 10, seed + 3)),
        };
        var infos = content.Select(kv => new MnistFileInfo(kv.Key, Sha256(kv.Value), kv.Value.Length)).ToArray();
        return (content, infos);
    }
}

/// <summary>A read-only stream that cannot seek (like a network or pipe stream).</summary>
internal sealed class UnseekableStream(Stream inner) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 7));
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
