using BenchmarkDotNet.Running;
using DiffusionClassifier.Benchmarks.Comparison;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// Entry point. <c>dotnet run -c Release -- --filter '*Forward*'</c> runs BenchmarkDotNet benchmarks (any
/// BenchmarkDotNet argument, e.g. <c>--job short</c> or <c>--job dry</c>); <c>dotnet run -c Release -- compare</c>
/// runs the side-by-side comparison with PyTorch; <c>dotnet run -c Release -- variants ...</c> an A/B comparison of
/// forward variants (<see cref="VariantsCommand"/>); <c>-- profile ...</c> the time per module type
/// (<see cref="ProfileCommand"/>); <c>-- flops</c> the FLOP counts (<see cref="FlopsCommand"/>).
/// </summary>
/// <remarks>
/// Benchmarks run in-process by default (<c>--inProcess</c> is added): BenchmarkDotNet's out-of-process toolchain
/// builds a generated project that does not import this repository's build targets, so on Debian 12 / Ubuntu 22.04
/// its copy of libLibTorchSharp.so is not patched for the system libstdc++ and TorchSharp cannot load. Pass
/// <c>--outOfProcess</c> to use BenchmarkDotNet's default toolchain where the host libstdc++ is new enough.
/// </remarks>
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
        if (args.Length > 0 && args[0] == "variants")
            return VariantsCommand.Run(args.Skip(1).ToArray(), Console.Out);
        if (args.Length > 0 && args[0] == "profile")
            return ProfileCommand.Run(args.Skip(1).ToArray(), Console.Out);
        if (args.Length > 0 && args[0] == "flops")
            return FlopsCommand.Run(Console.Out);
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(BenchmarkArguments(args));
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }

    /// <summary>The BenchmarkDotNet arguments: <c>--inProcess</c> added unless <c>--outOfProcess</c> (removed) is given.</summary>
    /// <param name="args">The command line.</param>
    public static string[] BenchmarkArguments(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        bool outOfProcess = args.Contains("--outOfProcess", StringComparer.OrdinalIgnoreCase);
        var result = args.Where(a => !string.Equals(a, "--outOfProcess", StringComparison.OrdinalIgnoreCase)).ToList();
        bool hasInProcess = result.Any(a => a is "--inProcess" or "-i");
        if (!outOfProcess && !hasInProcess)
            result.Add("--inProcess");
        return result.ToArray();
    }
}
