using System.Diagnostics;

namespace DiffusionClassifier.Benchmarks.Comparison;

/// <summary>
/// The timing method of the side-by-side comparison, identical to <c>measure()</c> in
/// tools/pytorch/reference_benchmark.py: untimed warm-up runs (at least <c>warmup</c> of them and at least
/// <c>warmupSeconds</c> of them), then <c>repeats</c> timed runs, and the median.
/// </summary>
/// <remarks>The time-based warm-up matters for .NET: tiered JIT compilation and dynamic PGO need a few dozen calls
/// of each method before the code is final (measured here: the first 10 forwards at F = 32 took twice the CPU time of
/// the later ones), and the same rule is applied to PyTorch.</remarks>
public static class Timing
{
    /// <summary>
    /// Runs <paramref name="run"/> and returns the median wall-clock seconds of the timed runs, all samples, and the
    /// median process CPU seconds (user + system, all threads) of the timed runs.
    /// </summary>
    /// <param name="run">One run (it must synchronise on CUDA before returning).</param>
    /// <param name="warmup">Untimed runs first (at least this many).</param>
    /// <param name="repeats">Timed runs; at least 1.</param>
    /// <param name="warmupSeconds">Keep warming up until this much wall time has passed (after the
    /// <paramref name="warmup"/> runs).</param>
    /// <remarks>On a loaded machine the wall time grows with the competition for the cores while the CPU time stays
    /// closer to the work done, so the CPU-time median is reported next to the wall-clock median.</remarks>
    public static Measurement Measure(Action run, int warmup, int repeats, double warmupSeconds = 0)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentOutOfRangeException.ThrowIfNegative(warmup);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSeconds);
        long warmupStart = Stopwatch.GetTimestamp();
        for (int i = 0; i < warmup || Stopwatch.GetElapsedTime(warmupStart).TotalSeconds < warmupSeconds; i++)
            run();
        var samples = new double[repeats];
        var cpu = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            var cpuStart = Environment.CpuUsage.TotalTime;
            long start = Stopwatch.GetTimestamp();
            run();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            cpu[i] = (Environment.CpuUsage.TotalTime - cpuStart).TotalSeconds;
        }
        return new Measurement(Median(samples), samples, Median(cpu), cpu);
    }

    /// <summary>The median (mean of the two middle values for an even count), as Python's statistics.median.</summary>
    /// <param name="values">At least one value.</param>
    public static double Median(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
            throw new ArgumentException("The median of no values is undefined.", nameof(values));
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>The 1-minute load average from /proc/loadavg, or null where there is none.</summary>
    public static double? LoadAverage()
    {
        try
        {
            var text = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}

/// <summary>The result of <see cref="Timing.Measure"/>.</summary>
/// <param name="Median">Median wall-clock seconds of the timed runs.</param>
/// <param name="Samples">Wall-clock seconds of every timed run.</param>
/// <param name="CpuMedian">Median process CPU seconds (user + system, all threads) of the timed runs.</param>
/// <param name="CpuSamples">CPU seconds of every timed run.</param>
public sealed record Measurement(double Median, double[] Samples, double CpuMedian, double[] CpuSamples);
