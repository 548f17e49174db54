using System.Diagnostics;
using System.Globalization;

namespace DiffusionClassifier.IO;

/// <summary>
/// Writes files so that a reader, or a crash at any moment, sees either the old complete file or the new complete
/// file, never a mixture: the content goes to a temporary file in the same folder, is flushed to disk, and is then
/// renamed over the target (an atomic replace on the same file system).
/// </summary>
/// <remarks>
/// <para>The temporary file is <c>.{name}.{process id}.{guid}.tmp</c> next to the target. A process killed while
/// writing leaves it behind; it is never read, and the next write to the same target deletes such leftovers whose
/// process is no longer running (those of live processes, including this one, are left alone, so concurrent writers
/// do not disturb each other). Killing the process at any point (tested with SIGKILL at several points, see
/// docs/reliability.md) leaves the previous file complete. The rename is not followed by a directory sync, so after a
/// power failure the old file may reappear, complete.</para>
/// <para>Thread safety: all members may be called from several threads; concurrent writes to one target end with
/// one of the contents complete (the last rename wins).</para>
/// </remarks>
internal static class AtomicFile
{
    /// <summary>
    /// Test seam: when set, called with the phase (<c>"written"</c>: content handed to the stream but not flushed;
    /// <c>"flushed"</c>: flushed to disk and closed, not yet renamed; <c>"renamed"</c>) and the temporary path.
    /// Null in production; the crash tests set it in a child process to stop there and be killed.
    /// </summary>
    internal static Action<string, string>? PhaseHook;

    /// <summary>Writes <paramref name="path"/> atomically with the content that <paramref name="write"/> produces.</summary>
    /// <param name="path">The target file; its folder is created if missing.</param>
    /// <param name="write">Writes the whole content to the stream it is given.</param>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no folder.", nameof(path));
        Directory.CreateDirectory(folder);
        DeleteStaleTemporaries(folder, Path.GetFileName(full));
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                PhaseHook?.Invoke("written", temp);
                stream.Flush(flushToDisk: true);
            }
            PhaseHook?.Invoke("flushed", temp);
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        PhaseHook?.Invoke("renamed", temp);
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="bytes">The whole content.</param>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>
    /// Deletes <c>.{fileName}.{pid}.{32 hex digits}.tmp</c> files in <paramref name="folder"/> left by processes that
    /// are no longer running. Best effort: failures are ignored.
    /// </summary>
    internal static void DeleteStaleTemporaries(string folder, string fileName)
    {
        string prefix = "." + fileName + ".";
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateFiles(folder, "*.tmp").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (var candidate in candidates)
        {
            string name = Path.GetFileName(candidate);
            if (!name.StartsWith(prefix, StringComparison.Ordinal))
                continue;
            // What follows the prefix must be exactly "{pid}.{guid:N}.tmp".
            var parts = name[prefix.Length..].Split('.');
            if (parts.Length != 3 || parts[2] != "tmp" || parts[1].Length != 32 || !Guid.TryParseExact(parts[1], "N", out _)
                || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                continue;
            if (pid == Environment.ProcessId || IsRunning(pid))
                continue;
            TryDelete(candidate);
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false; // no such process
        }
        catch (InvalidOperationException)
        {
            return false;
        }
        catch (Exception)
        {
            return true; // cannot tell: keep the file
        }
    }

    /// <summary>Deletes a file, ignoring I/O failures (cleanup paths only).</summary>
    internal static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
