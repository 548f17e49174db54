using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace DiffusionClassifier.Tests.Serialization;

/// <summary>Writes pickle opcodes by hand, to craft checkpoints (valid and hostile) without Python.</summary>
internal sealed class PickleBuilder
{
    private readonly MemoryStream bytes = new();

    public PickleBuilder Op(byte op) { bytes.WriteByte(op); return this; }
    public PickleBuilder Raw(params byte[] b) { bytes.Write(b); return this; }
    public PickleBuilder Proto(byte version = 2) => Op(0x80).Raw(version);
    public PickleBuilder Mark() => Op((byte)'(');
    public PickleBuilder EmptyDict() => Op((byte)'}');
    public PickleBuilder EmptyTuple() => Op((byte)')');
    public PickleBuilder Tuple() => Op((byte)'t');
    public PickleBuilder Reduce() => Op((byte)'R');
    public PickleBuilder SetItems() => Op((byte)'u');
    public PickleBuilder PersId() => Op((byte)'Q');
    public PickleBuilder False() => Op(0x89);
    public PickleBuilder Stop() => Op((byte)'.');

    public PickleBuilder Global(string module, string name) =>
        Op((byte)'c').Raw(Encoding.UTF8.GetBytes(module + "\n" + name + "\n"));

    public PickleBuilder Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        var len = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(len, b.Length);
        return Op((byte)'X').Raw(len).Raw(b);
    }

    public PickleBuilder Int(long v)
    {
        if (v is >= 0 and < 256) return Op((byte)'K').Raw((byte)v);
        if (v is >= int.MinValue and <= int.MaxValue)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(b, (int)v);
            return Op((byte)'J').Raw(b);
        }
        var l = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(l, v);
        return Op(0x8a).Raw(8).Raw(l);
    }

    public PickleBuilder Ints(params long[] values)
    {
        Mark();
        foreach (var v in values) Int(v);
        return Tuple();
    }

    /// <summary>_rebuild_tensor_v2(('storage', torch.&lt;type&gt;, key, 'cpu', numel), offset, size, stride, False, OrderedDict()).</summary>
    public PickleBuilder Tensor(string storageType, string key, long numel, long offset, long[] size, long[] stride)
    {
        Global("torch._utils", "_rebuild_tensor_v2").Mark();
        Mark().Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(numel).Tuple().PersId();
        Int(offset).Ints(size).Ints(stride).False().Global("collections", "OrderedDict").EmptyTuple().Reduce();
        return Tuple().Reduce();
    }

    public byte[] ToArray() => bytes.ToArray();
}

/// <summary>Lays out a torch.save-style zip around a data.pkl and storage blobs.</summary>
internal static class CheckpointZip
{
    public static byte[] Create(byte[] dataPkl, IReadOnlyDictionary<string, byte[]>? storages = null, string root = "archive",
        string? byteOrder = null, CompressionLevel storageCompression = CompressionLevel.NoCompression)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            Add(zip, root + "/data.pkl", dataPkl, CompressionLevel.NoCompression);
            if (byteOrder is not null) Add(zip, root + "/byteorder", Encoding.ASCII.GetBytes(byteOrder), CompressionLevel.NoCompression);
            foreach (var (k, v) in storages ?? new Dictionary<string, byte[]>())
                Add(zip, root + "/data/" + k, v, storageCompression);
            Add(zip, root + "/version", Encoding.ASCII.GetBytes("3\n"), CompressionLevel.NoCompression);
        }
        return ms.ToArray();
    }

    /// <summary>Rewrites a zip, replacing (or removing, when the function returns null) entries.</summary>
    public static byte[] Rewrite(byte[] zipBytes, Func<string, byte[], byte[]?> edit, IReadOnlyDictionary<string, byte[]>? add = null)
    {
        using var input = new ZipArchive(new MemoryStream(zipBytes), ZipArchiveMode.Read);
        using var ms = new MemoryStream();
        using (var output = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var e in input.Entries)
            {
                using var s = e.Open();
                using var copy = new MemoryStream();
                s.CopyTo(copy);
                var data = edit(e.FullName, copy.ToArray());
                if (data is not null) Add(output, e.FullName, data, CompressionLevel.NoCompression);
            }
            foreach (var (k, v) in add ?? new Dictionary<string, byte[]>())
                Add(output, k, v, CompressionLevel.NoCompression);
        }
        return ms.ToArray();
    }

    private static void Add(ZipArchive zip, string name, byte[] data, CompressionLevel level)
    {
        var entry = zip.CreateEntry(name, level);
        using var s = entry.Open();
        s.Write(data);
    }
}
