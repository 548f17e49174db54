using BenchmarkDotNet.Running;

namespace DiffusionClassifier.Benchmarks;

/// <summary>Entry point: <c>dotnet run -c Release -- --filter '*'</c>.</summary>
public static class Program
{
    /// <summary>Runs the benchmarks selected on the command line.</summary>
    /// <param name="args">BenchmarkDotNet arguments.</param>
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
