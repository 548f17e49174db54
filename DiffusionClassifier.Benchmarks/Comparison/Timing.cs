using System.Diagnostics;

namespace DiffusionClassifier.Benchmarks.Comparison;

/// <summary>
/// The timing method of the side-by-side comparison, identical to <c>measure()</c> in
/// tools/pytorch/reference_benchmark.py: <c>warmup</c> untimed runs, then <c>repeats</c> timed runs, and the median.
/// </summary>
public static class Timing
{
    /// <summary>Runs <paramref name="run"/> and returns the median of the timed runs in seconds, and all samples.</summary>
    /// <param name="run">One run (it must synchronise on CUDA before returning).</param>
    /// <param name="warmup">Untimed runs first.</param>
    /// <param name="repeats">Timed runs; at least 1.</param>
    public static (double Median, double[] Samples) Measure(Action run, int warmup, int repeats)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentOutOfRangeException.ThrowIfNegative(warmup);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        for (int i = 0; i < warmup; i++)
            run();
        var samples = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            long start = Stopwatch.GetTimestamp();
            run();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        return (Median(samples), samples);
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
