using System.Globalization;

namespace DiffusionClassifier.Tests.TestSupport;

/// <summary>The process's resident memory, from /proc/self/status (Linux).</summary>
internal static class ProcessMemory
{
    /// <summary>VmRSS now, in bytes.</summary>
    public static long Rss() => Read("VmRSS:");

    /// <summary>VmRSS after a full collection with the finalizers run, so that garbage awaiting the collector (and the
    /// native memory its finalizers free) does not count.</summary>
    public static long SettledRss()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return Rss();
    }

    /// <summary>Restarts the peak (VmHWM) at the current RSS; false where the kernel refuses.</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The peak RSS (VmHWM) since the process started or since <see cref="ResetPeak"/>, in bytes.</summary>
    public static long PeakRss() => Read("VmHWM:");

    private static long Read(string field) =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
}
