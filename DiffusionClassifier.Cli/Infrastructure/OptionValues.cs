using System.CommandLine.Parsing;

namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>
/// Reading an option's value inside a System.CommandLine validator. Shared as source with the benchmarks' argument
/// parsing (DiffusionClassifier.Benchmarks links this file), so both executables validate the same way.
/// </summary>
internal static class OptionValues
{
    /// <summary>The option's value, or false when it did not parse (that error is already reported).</summary>
    public static bool TryGetValue<T>(OptionResult result, out T value)
    {
        try
        {
            value = result.GetValueOrDefault<T>();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default!;
            return false;
        }
    }
}
