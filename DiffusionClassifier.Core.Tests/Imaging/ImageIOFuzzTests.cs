using System.Buffers.Binary;
using System.Diagnostics;
using DiffusionClassifier.Imaging;
using DiffusionClassifier.Tests.TestSupport;
using SkiaSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Imaging;

/// <summary>
/// Seeded random mutations of valid PNG (and JPEG) files read with <see cref="ImageIO.LoadImage(Stream, int, int, bool, string?)"/>:
/// only an <see cref="InvalidDataException"/> or a correct [1, 1, 28, 28] tensor in [0, 1] may come out. Half of the
/// PNG mutants get their chunk CRCs recomputed, so that the damage reaches the header fields and the zlib stream
/// instead of stopping at the CRC check. Iterations per file: <c>DC_FUZZ_ITERATIONS</c> (default
/// <see cref="DefaultIterations"/>); seed: <c>DC_FUZZ_SEED</c> (default fixed). Each mutant's seed depends only on the
/// seed, the file kind and the iteration, so a failure replays in any process.
/// </summary>
public sealed class ImageIOFuzzTests(ITestOutputHelper output)
{
    private const int DefaultIterations = 3000;

    private static int Iterations =>
        int.TryParse(Environment.GetEnvironmentVariable("DC_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : DefaultIterations;

    private static int Seed =>
        int.TryParse(Environment.GetEnvironmentVariable("DC_FUZZ_SEED"), out int s) ? s : 20261130;

    public static TheoryData<string> Files() => new() { "gray png", "rgb png", "jpeg" };

    private static byte[] Valid(string kind)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(11);
        switch (kind)
        {
            case "gray png":
                return ImageIO.EncodePng(rand(new long[] { 1, 28, 28 }, generator: g));
            case "rgb png":
                return ImageIO.EncodePng(rand(new long[] { 3, 20, 12 }, generator: g));
            default:
                using (var bitmap = SKBitmap.Decode(ImageIO.EncodePng(rand(new long[] { 3, 16, 16 }, generator: g))))
                using (var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90))
                    return data.ToArray();
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void MutatedImagesGiveAnImageOrInvalidDataExceptionOnly(string kind)
    {
        var valid = Valid(kind);
        int iterations = Iterations, decoded = 0, refused = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++)
        {
            var rng = new Random(StableSeed.For(Seed, kind, i));
            var (bytes, what) = Mutate(valid, rng);
            if (kind != "jpeg" && rng.Next(2) == 0)
            {
                FixPngCrcs(bytes);
                what += ", CRCs fixed";
            }
            try
            {
                using var image = ImageIO.LoadImage(new MemoryStream(bytes), 28, 28, sourceName: "mutant");
                Assert.Equal(new long[] { 1, 1, 28, 28 }, image.shape);
                Assert.Equal(ScalarType.Float32, image.dtype);
                double min = image.min().item<float>(), max = image.max().item<float>();
                Assert.True(min >= 0 && max <= 1, $"iteration {i} ({what}): values from {min} to {max}");
                decoded++;
            }
            catch (InvalidDataException e)
            {
                Assert.Contains("mutant", e.Message);
                refused++;
            }
            catch (Exception e)
            {
                string saved = Path.Combine(Path.GetTempPath(), $"dc-image-fuzz-{kind.Replace(' ', '-')}-{i}.bin");
                File.WriteAllBytes(saved, bytes);
                throw new Xunit.Sdk.XunitException($"{kind} iteration {i} (DC_FUZZ_SEED={Seed}; {what}) threw {e.GetType().Name}: {e.Message}; input saved to {saved}\n{e}");
            }
        }
        output.WriteLine($"{kind} (DC_FUZZ_SEED={Seed}): {iterations} mutants in {clock.Elapsed.TotalSeconds:F2} s: {decoded} decoded, {refused} refused (InvalidDataException).");
        Assert.True(refused > iterations / 10, $"only {refused} of {iterations} refused (DC_FUZZ_SEED={Seed}): the mutations are too mild");
    }

    /// <summary>1-3 of: bit flips, byte overwrites, truncation, insertion, deletion, duplication of a range.</summary>
    private static (byte[] Bytes, string What) Mutate(byte[] original, Random rng)
    {
        var bytes = new List<byte>(original);
        var what = new List<string>();
        int count = 1 + rng.Next(3);
        for (int m = 0; m < count && bytes.Count > 1; m++)
        {
            // Favour the first 64 bytes: signature, IHDR and the start of the compressed data.
            int Pos() => rng.Next(2) == 0 ? rng.Next(Math.Min(64, bytes.Count)) : rng.Next(bytes.Count);
            switch (rng.Next(6))
            {
                case 0:
                    {
                        int p = Pos(), bit = rng.Next(8);
                        bytes[p] ^= (byte)(1 << bit);
                        what.Add($"flip {p}.{bit}");
                        break;
                    }
                case 1:
                    {
                        int p = Pos();
                        byte v = (byte)(rng.Next(3) switch { 0 => 0, 1 => 0xFF, _ => rng.Next(256) });
                        bytes[p] = v;
                        what.Add($"set {p}={v}");
                        break;
                    }
                case 2:
                    {
                        int len = rng.Next(bytes.Count);
                        bytes.RemoveRange(len, bytes.Count - len);
                        what.Add($"truncate {len}");
                        break;
                    }
                case 3:
                    {
                        int p = Pos();
                        var insert = new byte[1 + rng.Next(16)];
                        rng.NextBytes(insert);
                        bytes.InsertRange(p, insert);
                        what.Add($"insert {insert.Length} at {p}");
                        break;
                    }
                case 4:
                    {
                        int p = Pos(), n = Math.Min(1 + rng.Next(16), bytes.Count - p);
                        bytes.RemoveRange(p, n);
                        what.Add($"delete {n} at {p}");
                        break;
                    }
                default:
                    {
                        int p = rng.Next(bytes.Count), n = Math.Min(1 + rng.Next(64), bytes.Count - p), at = Pos();
                        bytes.InsertRange(at, bytes.GetRange(p, n));
                        what.Add($"copy {n} from {p} to {at}");
                        break;
                    }
            }
        }
        return (bytes.ToArray(), string.Join(", ", what));
    }

    /// <summary>Recomputes the CRC of every complete chunk after the 8-byte signature.</summary>
    private static void FixPngCrcs(byte[] png)
    {
        int at = 8;
        while (at + 12 <= png.Length)
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at));
            if (at + 12 + length > png.Length)
                break;
            uint crc = Crc32(png.AsSpan(at + 4, 4 + (int)length));
            BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(at + 8 + (int)length), crc);
            at += 12 + (int)length;
        }
    }

    private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data)
            c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    [Fact]
    public void TheCrcFixerProducesValidCrcs()
    {
        // The PNG writer's own CRCs must be reproduced exactly, or "CRCs fixed" mutants would be refused for the CRC.
        var png = Valid("gray png");
        var copy = (byte[])png.Clone();
        FixPngCrcs(copy);
        Assert.Equal(png, copy);
    }
}
