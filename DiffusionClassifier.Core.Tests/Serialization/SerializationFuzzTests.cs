using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using Xunit.Abstractions;

namespace DiffusionClassifier.Tests.Serialization;

/// <summary>
/// Seeded random mutations (bit flips, byte overwrites, truncations, insertions, deletions, length-field edits) of
/// valid files, loaded from memory: only <see cref="InvalidDataException"/> or a successful load may come out.
/// The iteration count per test is <c>DC_FUZZ_ITERATIONS</c> (default <see cref="DefaultIterations"/>); the seed is
/// <c>DC_FUZZ_SEED</c> (default fixed), and each failure names the iteration and mutation so it can be replayed.
/// </summary>
[Collection(SerializationCollection.Name)]
public class SerializationFuzzTests(ITestOutputHelper output)
{
    private const int DefaultIterations = 2000;
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "TestData", "pytorch");

    private static int Iterations =>
        int.TryParse(Environment.GetEnvironmentVariable("DC_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : DefaultIterations;

    private static int Seed =>
        int.TryParse(Environment.GetEnvironmentVariable("DC_FUZZ_SEED"), out int s) ? s : 20261129;

    // Bytes that matter to JSON, pickles and length fields.
    private const string Interesting = "\0\u0001\u00ff\u007f\u0080{}[]\",:0123456789-e.\\qhrjXKMJtR}u(.";

    /// <summary>
    /// Applies 1-3 random mutations; a fraction <paramref name="hot"/> of them falls before <paramref name="hotEnd"/>
    /// (the header, where damage changes the parse; damage to tensor data only changes values).
    /// </summary>
    internal static (byte[] Bytes, string What) Mutate(byte[] original, int hotEnd, double hot, Random rng)
    {
        var bytes = new List<byte>(original);
        var what = new List<string>();
        int count = 1 + rng.Next(3);
        for (int m = 0; m < count && bytes.Count > 0; m++)
        {
            int Pos() => rng.NextDouble() < hot ? rng.Next(Math.Min(hotEnd, bytes.Count)) : rng.Next(bytes.Count);
            switch (rng.Next(7))
            {
                case 0:
                case 1:
                    {
                        int p = Pos(), bit = rng.Next(8);
                        bytes[p] ^= (byte)(1 << bit);
                        what.Add($"flip {p}.{bit}");
                        break;
                    }
                case 2:
                    {
                        int p = Pos();
                        byte v = (byte)Interesting[rng.Next(Interesting.Length)];
                        bytes[p] = v;
                        what.Add($"set {p}={v}");
                        break;
                    }
                case 3:
                    {
                        int len = rng.Next(bytes.Count);
                        bytes.RemoveRange(len, bytes.Count - len);
                        what.Add($"truncate {len}");
                        break;
                    }
                case 4:
                    {
                        int p = Pos(), n = 1 + rng.Next(16);
                        var ins = new byte[n];
                        rng.NextBytes(ins);
                        bytes.InsertRange(p, ins);
                        what.Add($"insert {n} at {p}");
                        break;
                    }
                case 5:
                    {
                        int p = Pos(), n = Math.Min(1 + rng.Next(16), bytes.Count - p);
                        bytes.RemoveRange(p, n);
                        what.Add($"delete {n} at {p}");
                        break;
                    }
                default:
                    {
                        // Overwrite a little-endian 64-bit field (the safetensors length, a zip size...) with an extreme value.
                        int p = Pos();
                        if (p + 8 > bytes.Count) break;
                        ulong v = rng.Next(4) switch { 0 => ulong.MaxValue, 1 => (ulong)rng.NextInt64(), 2 => 1UL << rng.Next(64), _ => (ulong)rng.Next(1 << 20) };
                        var b = new byte[8];
                        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
                        for (int i = 0; i < 8; i++) bytes[p + i] = b[i];
                        what.Add($"u64 {p}={v}");
                        break;
                    }
            }
        }
        return (bytes.ToArray(), string.Join(", ", what));
    }

    private (int Loaded, int Refused) Run(string name, byte[] original, int hotEnd, double hot, Action<byte[]> load)
    {
        int loaded = 0, refused = 0, iterations = Iterations;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++)
        {
            var rng = new Random(StableSeed.For(Seed, name, i));
            var (bytes, what) = Mutate(original, hotEnd, hot, rng);
            try
            {
                load(bytes);
                loaded++;
            }
            catch (InvalidDataException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                refused++;
            }
            catch (Exception e)
            {
                string saved = Path.Combine(Path.GetTempPath(), $"dc-fuzz-{name.Replace(' ', '-')}-{Seed}-{i}.bin");
                File.WriteAllBytes(saved, bytes);
                Assert.Fail($"{name} iteration {i} (DC_FUZZ_SEED={Seed}; {what}; input saved to {saved}) threw {e}");
            }
        }
        output.WriteLine($"{name} (DC_FUZZ_SEED={Seed}): {iterations} mutations in {sw.Elapsed.TotalSeconds:F1} s: {loaded} loaded, {refused} refused (InvalidDataException)");
        return (loaded, refused);
    }

    [Fact]
    public void MutatedModelFilesGiveOnlyInvalidDataOrAModel()
    {
        using var net = TinyModels.Create();
        using var ms = new MemoryStream();
        ModelFile.Write(ms, net, new DdpmScheduler(20, 1e-3, 0.05), new Dictionary<string, string> { ["note"] = "fuzz" });
        var original = ms.ToArray();
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        var (loaded, refused) = Run("model file", original, headerEnd, 0.9, bytes =>
        {
            using var model = ModelFile.Read(new MemoryStream(bytes), sourceName: "fuzz.safetensors");
        });
        Assert.True(refused > Iterations / 2, $"only {refused} refused (DC_FUZZ_SEED={Seed})");
        Assert.True(loaded > 0, $"no mutation kept a loadable file (mutations of tensor data should; DC_FUZZ_SEED={Seed})");
    }

    [Fact]
    public void MutatedPyTorchCheckpointsGiveOnlyInvalidDataOrAStateDict()
    {
        var original = File.ReadAllBytes(Path.Combine(Dir, "views.pth"));
        var (loaded, refused) = Run("pth bytes", original, original.Length, 1.0, bytes =>
        {
            using var sd = PyTorchCheckpoint.ReadStateDict(new MemoryStream(bytes), "fuzz.pth");
        });
        Assert.True(refused > Iterations / 2, $"only {refused} refused (DC_FUZZ_SEED={Seed})");
        _ = loaded;
    }

    [Fact]
    public void MutatedPicklesInAValidZipGiveOnlyInvalidDataOrAStateDict()
    {
        // Mutating data.pkl inside a rebuilt zip (valid CRC) reaches the pickle interpreter itself.
        var checkpoint = File.ReadAllBytes(Path.Combine(Dir, "views.pth"));
        byte[] pickle = [];
        var storages = new Dictionary<string, byte[]>();
        using (var zip = new ZipArchive(new MemoryStream(checkpoint)))
        {
            foreach (var e in zip.Entries)
            {
                using var s = e.Open();
                using var copy = new MemoryStream();
                s.CopyTo(copy);
                if (e.FullName.EndsWith("data.pkl", StringComparison.Ordinal)) pickle = copy.ToArray();
                else if (e.FullName.Contains("/data/", StringComparison.Ordinal)) storages[e.FullName[(e.FullName.LastIndexOf('/') + 1)..]] = copy.ToArray();
            }
        }
        Assert.NotEmpty(pickle);
        var (loaded, refused) = Run("pickle", pickle, pickle.Length, 1.0, bytes =>
        {
            using var sd = PyTorchCheckpoint.ReadStateDict(new MemoryStream(CheckpointZip.Create(bytes, storages, root: "views")), "fuzz.pth");
        });
        Assert.True(refused > Iterations / 2, $"only {refused} refused (DC_FUZZ_SEED={Seed})");
        Assert.True(loaded > 0, $"no mutation kept a readable pickle (e.g. a changed key letter should; DC_FUZZ_SEED={Seed})");
    }
}
