using System.IO.Compression;
using System.Security.Cryptography;

namespace DiffusionClassifier.Data;

/// <summary>
/// The four official MNIST files (LeCun, Cortes, Burges; CC BY-SA 3.0) with the SHA-256 and length of their
/// uncompressed content, and verification of a folder against them.
/// </summary>
/// <remarks>Thread safety: static and stateless (the file list is immutable); all members are thread-safe.</remarks>
internal static class MnistFiles
{
    /// <summary>The training images file name.</summary>
    public const string TrainImages = "train-images-idx3-ubyte";

    /// <summary>The training labels file name.</summary>
    public const string TrainLabels = "train-labels-idx1-ubyte";

    /// <summary>The test images file name.</summary>
    public const string TestImages = "t10k-images-idx3-ubyte";

    /// <summary>The test labels file name.</summary>
    public const string TestLabels = "t10k-labels-idx1-ubyte";

    /// <summary>SHA-256 of the uncompressed <see cref="TrainImages"/>.</summary>
    public const string TrainImagesSha256 = "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db";

    /// <summary>SHA-256 of the uncompressed <see cref="TrainLabels"/>.</summary>
    public const string TrainLabelsSha256 = "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5";

    /// <summary>SHA-256 of the uncompressed <see cref="TestImages"/>.</summary>
    public const string TestImagesSha256 = "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7";

    /// <summary>SHA-256 of the uncompressed <see cref="TestLabels"/>.</summary>
    public const string TestLabelsSha256 = "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2";

    /// <summary>The four official files with hashes and lengths (47,040,016 + 60,008 + 7,840,016 + 10,008 bytes).</summary>
    public static IReadOnlyList<MnistFileInfo> Official { get; } =
    [
        new(TrainImages, TrainImagesSha256, 47_040_016),
        new(TrainLabels, TrainLabelsSha256, 60_008),
        new(TestImages, TestImagesSha256, 7_840_016),
        new(TestLabels, TestLabelsSha256, 10_008),
    ];

    /// <summary>
    /// Checks that <paramref name="folder"/> holds every expected file with the expected length and SHA-256. A file
    /// may be present raw or as <c>name.gz</c> (then its decompressed content is checked); raw wins if both exist.
    /// </summary>
    /// <param name="folder">The folder.</param>
    /// <param name="files">The expected files; null for <see cref="Official"/>.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="InvalidDataException">A file has the wrong length or hash (the message names the file and
    /// both hashes).</exception>
    public static void Verify(string folder, IReadOnlyList<MnistFileInfo>? files = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        files ??= Official;
        foreach (var f in files)
            f.Validate();
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"The MNIST folder '{folder}' does not exist.");
        foreach (var file in files)
        {
            string raw = Path.Combine(folder, file.Name);
            string gz = raw + ".gz";
            if (File.Exists(raw))
                VerifyFile(raw, file, gzip: false);
            else if (File.Exists(gz))
                VerifyFile(gz, file, gzip: true);
            else
                throw new FileNotFoundException($"'{file.Name}' (or '{file.Name}.gz') is missing from '{folder}'.", raw);
        }
    }

    /// <summary>Like <see cref="Verify"/> but returns false instead of throwing for missing or wrong files.</summary>
    /// <param name="folder">The folder.</param>
    /// <param name="files">The expected files; null for <see cref="Official"/>.</param>
    public static bool IsValid(string folder, IReadOnlyList<MnistFileInfo>? files = null)
    {
        try
        {
            Verify(folder, files);
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The SHA-256 of a stream's remaining content as 64 lower-case hex digits.</summary>
    /// <param name="stream">A readable stream; it is not disposed.</param>
    public static string ComputeSha256(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Checks one file's (decompressed) length and hash against <paramref name="expected"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="expected">The expected name, hash and length.</param>
    /// <param name="gzip">The file is gzip-compressed; its decompressed content is checked.</param>
    /// <exception cref="InvalidDataException">Wrong length or hash.</exception>
    public static void VerifyFile(string path, MnistFileInfo expected, bool gzip = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(expected);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        Stream content = file;
        GZipStream? zip = null;
        if (gzip)
            content = zip = new GZipStream(file, CompressionMode.Decompress, leaveOpen: true);
        try
        {
            // Count while hashing; stop one byte past the expected length so a huge or endless stream costs little.
            using var limited = new LengthCappedStream(content, expected.Length + 1);
            string actual;
            try
            {
                actual = ComputeSha256(limited);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"'{path}': the gzip stream is corrupt: {e.Message}", e);
            }
            if (limited.BytesRead != expected.Length)
                throw new InvalidDataException(
                    $"'{path}' ({expected.Name}{(gzip ? ", decompressed" : "")}) has {(limited.BytesRead > expected.Length ? "more than " + expected.Length : limited.BytesRead.ToString())} bytes, expected {expected.Length}.");
            if (!string.Equals(actual, expected.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException(
                    $"'{path}' ({expected.Name}{(gzip ? ", decompressed" : "")}) has SHA-256 {actual}, expected {expected.Sha256.ToLowerInvariant()}.");
        }
        finally
        {
            zip?.Dispose();
        }
    }
}
