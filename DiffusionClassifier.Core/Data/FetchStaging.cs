using System.Security.Cryptography;
using DiffusionClassifier.IO;

namespace DiffusionClassifier.Data;

/// <summary>
/// A hidden staging folder inside the target folder. Files are written and verified there, then moved into the
/// target one by one (each move an atomic rename on the same file system) only once all of them verified. Disposing
/// removes the staging folder, and the target folder too if this staging created it and nothing was committed.
/// </summary>
internal sealed class FetchStaging : IDisposable
{
    private readonly bool createdTarget;
    private bool committed;

    public FetchStaging(string targetFolder)
    {
        Target = Path.GetFullPath(targetFolder);
        createdTarget = !Directory.Exists(Target);
        Directory.CreateDirectory(Target);
        Folder = Path.Combine(Target, $".fetch-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Folder);
    }

    public string Target { get; }

    public string Folder { get; }

    public string PathFor(string name) => Path.Combine(Folder, name);

    /// <summary>Moves the staged files into the target, replacing older copies (and a stale <c>name.gz</c>).</summary>
    public void Commit(IEnumerable<MnistFileInfo> files)
    {
        foreach (var file in files)
        {
            string destination = Path.Combine(Target, file.Name);
            File.Move(PathFor(file.Name), destination, overwrite: true);
            // A leftover compressed copy would be shadowed by the raw file anyway; drop it so the folder is unambiguous.
            if (File.Exists(destination + ".gz"))
                AtomicFile.TryDelete(destination + ".gz");
            committed = true;
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        if (createdTarget && !committed)
        {
            try
            {
                if (!Directory.EnumerateFileSystemEntries(Target).Any())
                    Directory.Delete(Target);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>
    /// Copies <paramref name="source"/> to <paramref name="path"/> while hashing it, reading at most one byte more
    /// than expected, and throws <see cref="InvalidDataException"/> unless length and SHA-256 match.
    /// </summary>
    public static async Task WriteVerifiedAsync(Stream source, string path, MnistFileInfo expected, string sourceName,
        IProgress<MnistFetchProgress>? progress, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        long written = 0, lastReport = 0;
        await using (var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            while (true)
            {
                int want = (int)Math.Min(buffer.Length, expected.Length + 1 - written);
                if (want <= 0)
                    break;
                int n;
                try
                {
                    n = await source.ReadAsync(buffer.AsMemory(0, want), cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
                {
                    // Decompression or archive errors from the BCL: say which source was damaged.
                    throw new InvalidDataException($"'{sourceName}' is damaged: {e.Message}", e);
                }
                if (n == 0)
                    break;
                hash.AppendData(buffer, 0, n);
                await output.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                written += n;
                if (progress is not null && (written - lastReport >= 1 << 20 || written >= expected.Length))
                {
                    lastReport = written;
                    progress.Report(new MnistFetchProgress(expected.Name, sourceName, Math.Min(written, expected.Length), expected.Length));
                }
            }
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            output.Flush(flushToDisk: true);
        }
        if (written != expected.Length)
            throw new InvalidDataException(
                $"'{sourceName}' gave {(written > expected.Length ? "more than " + expected.Length : written.ToString())} bytes for {expected.Name}, expected {expected.Length}.");
        string actual = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (!string.Equals(actual, expected.Sha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException(
                $"'{sourceName}' gave {expected.Name} with SHA-256 {actual}, expected {expected.Sha256.ToLowerInvariant()}.");
    }
}
