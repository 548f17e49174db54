using DiffusionClassifier.Tests.Reliability;

namespace DiffusionClassifier.Tests;

/// <summary>
/// Entry point of the test assembly when it is run as a program (<c>dotnet DiffusionClassifier.Core.Tests.dll ...</c>):
/// the crash tests start it as a child process that trains and is then killed, and <see cref="GcStress"/> is a
/// diagnostic run by hand. Replaces the empty Main that
/// Microsoft.NET.Test.Sdk would generate; test runners never call it.
/// </summary>
public static class Program
{
    /// <summary>Runs the command-line tool in this process (for tests that need several real processes).</summary>
    public const string CliVerb = "cli";

    /// <summary>Runs a child mode named by the first argument.</summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == CrashChild.Verb)
            return CrashChild.Run(args[1..]);
        if (args.Length > 1 && args[0] == CrashChild.CliVerb)
            return CrashChild.RunCli(args[1], args[2..]);
        if (args.Length > 0 && args[0] == CliVerb)
            return DiffusionClassifier.Cli.Program.Main(args[1..]).GetAwaiter().GetResult();
        if (args.Length > 0 && args[0] == GcStress.Verb)
            return GcStress.Run(args[1..]);
        Console.Error.WriteLine($"Usage: {CrashChild.Verb} <checkpoint> <spin | pause:written|flushed|renamed:N>");
        Console.Error.WriteLine($"       {CrashChild.CliVerb} <spin | pause:written|flushed|renamed:N> <tool arguments...>");
        Console.Error.WriteLine($"       {CliVerb} <tool arguments...>");
        Console.Error.WriteLine($"       {GcStress.Verb} [predicts per thread] [threads] [l2|huber]");
        return 2;
    }
}
