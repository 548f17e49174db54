using System.Runtime.InteropServices;

namespace DiffusionClassifier.Devices;

/// <summary>
/// Pins glibc's malloc thresholds once per process, before the network first runs. With glibc's defaults, libtorch's
/// activation buffers (a few MB each) go back and forth between mmap and the heap, and freed heap tops are trimmed and
/// faulted in again: on the project's machines that doubled the wall time of a bfloat16 evaluation, a third of it in
/// the kernel (docs/performance.md, "The allocator"). The values are the top of glibc's own dynamic range, so large
/// buffers are reused from the heap instead of being mapped and unmapped on every chunk.
/// </summary>
/// <remarks>Linux with glibc only; elsewhere, or when the environment sets malloc options itself
/// (<c>MALLOC_MMAP_THRESHOLD_</c>, <c>MALLOC_TRIM_THRESHOLD_</c>, <c>GLIBC_TUNABLES</c>) or sets
/// <see cref="OptOutVariable"/> to <c>0</c>, nothing changes.</remarks>
internal static partial class NativeAllocator
{
    /// <summary>Allocations up to this size come from the heap: glibc's maximum on 64-bit (half its 64 MiB heap size).</summary>
    public const int MmapThresholdBytes = 32 << 20;

    /// <summary>Free memory at the heap's top is returned to the system only above this. A training step at F = 32,
    /// batch 128 frees and re-allocates a few hundred MB at the top every step: 64 and 256 MiB still trimmed and
    /// re-faulted it (half the time in the kernel), 512 MiB and 1 GiB did not (docs/performance.md). The cost is
    /// that up to this much freed memory stays mapped between calls.</summary>
    public const int TrimThresholdBytes = 1 << 30;

    /// <summary>Set it to 0 to keep glibc's defaults.</summary>
    public const string OptOutVariable = "DIFFUSION_CLASSIFIER_TUNE_MALLOC";

    private const int MTrimThreshold = -1, MMmapThreshold = -3; // malloc.h

    private static readonly Lazy<string> Outcome = new(() => Apply(Environment.GetEnvironmentVariable, SetThresholds));

    /// <summary>Applies the thresholds the first time it is called; returns what happened, for logs.</summary>
    public static string EnsureTuned() => Outcome.Value;

    /// <summary>The decision, with the environment and the native call passed in so that tests can drive it.</summary>
    /// <param name="environment">Reads an environment variable.</param>
    /// <param name="setThresholds">Sets both thresholds; false when the C library refuses.</param>
    internal static string Apply(Func<string, string?> environment, Func<bool> setThresholds)
    {
        if (!OperatingSystem.IsLinux())
            return "glibc's malloc thresholds: left alone (not Linux)";
        if (environment(OptOutVariable) is "0")
            return $"glibc's malloc thresholds: left alone ({OptOutVariable}=0)";
        if (environment("MALLOC_MMAP_THRESHOLD_") is not null || environment("MALLOC_TRIM_THRESHOLD_") is not null
            || environment("GLIBC_TUNABLES")?.Contains("glibc.malloc", StringComparison.Ordinal) == true)
            return "glibc's malloc thresholds: left to the environment's settings";
        try
        {
            return setThresholds()
                ? $"glibc's malloc thresholds: mmap {MmapThresholdBytes >> 20} MiB, trim {TrimThresholdBytes >> 20} MiB"
                : "glibc's malloc thresholds: left alone (mallopt refused them)";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return "glibc's malloc thresholds: left alone (no glibc)";
        }
    }

    private static bool SetThresholds() =>
        MallOpt(MMmapThreshold, MmapThresholdBytes) == 1 && MallOpt(MTrimThreshold, TrimThresholdBytes) == 1;

    [LibraryImport("libc.so.6", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);
}
