using BenchmarkDotNet.Running;
using DiffusionClassifier.Benchmarks.Comparison;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// Entry point. <c>dotnet run -c Release -- --filter '*Forward*'</c> runs BenchmarkDotNet benchmarks (any
/// BenchmarkDotNet argument, e.g. <c>--job short</c> or <c>--job dry</c>); <c>dotnet run -c Release -- compare</c>
/// runs the side-by-side comparison with PyTorch.
/// </summary>
public static class Program
{
    /// <summary>Runs the comparison or the benchmarks selected on the command line.</summary>
    /// <param name="args">BenchmarkDotNet arguments, or <c>compare</c> followed by its options.</param>
    /// <returns>The exit code.</returns>
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length > 0 && args[0] == "compare")
            return CompareCommand.Run(args.Skip(1).ToArray(), Console.Out);
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}
