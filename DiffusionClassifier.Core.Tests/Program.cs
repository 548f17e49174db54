using DiffusionClassifier.Tests.Reliability;

namespace DiffusionClassifier.Tests;

/// <summary>
/// Entry point of the test assembly when it is run as a program (<c>dotnet DiffusionClassifier.Core.Tests.dll ...</c>):
/// the crash tests start it as a child process that trains and is then killed. Replaces the empty Main that
/// Microsoft.NET.Test.Sdk would generate; test runners never call it.
/// </summary>
public static class Program
{
    /// <summary>Runs a child mode named by the first argument.</summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == CrashChild.Verb)
            return CrashChild.Run(args[1..]);
        Console.Error.WriteLine($"Usage: {CrashChild.Verb} <checkpoint> <spin | pause:written|flushed|renamed:N>");
        return 2;
    }
}
