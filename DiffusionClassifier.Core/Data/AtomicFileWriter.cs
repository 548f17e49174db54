namespace DiffusionClassifier.Data;

/// <summary>
/// Atomic file writes for the data layer: content goes to a temporary file in the target's folder, is flushed to
/// disk and then renamed over the target, so a reader or a crash sees the old file or the new one, never a part.
/// </summary>
/// <remarks>Kept here rather than shared with Serialization because Data sits below it in the layering.</remarks>
internal static class AtomicFileWriter
{
    /// <summary>Writes <paramref name="path"/> with the content <paramref name="write"/> produces.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no folder.", nameof(path));
        Directory.CreateDirectory(folder);
        string temp = TempPathFor(full);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>A unique hidden temporary name next to <paramref name="fullPath"/>.</summary>
    public static string TempPathFor(string fullPath) =>
        Path.Combine(Path.GetDirectoryName(fullPath)!, $".{Path.GetFileName(fullPath)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    /// <summary>Deletes a file, ignoring I/O failures (used on cleanup paths only).</summary>
    public static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
