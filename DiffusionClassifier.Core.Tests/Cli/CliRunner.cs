using DiffusionClassifier.Cli;
using DiffusionClassifier.Cli.Infrastructure;

namespace DiffusionClassifier.Tests.Cli;

/// <summary>The outcome of one in-process run of the tool.</summary>
internal sealed record CliRun(int ExitCode, string Out, string Error)
{
    /// <summary>The non-empty lines of standard error.</summary>
    public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Out}\n--- stderr ---\n{Error}";
}

/// <summary>Runs the tool's entry point in-process with captured, plain-text output.</summary>
internal static class CliRunner
{
    public static CliRun Run(params string[] args) => Run(CancellationToken.None, null, args);

    /// <summary>Runs with a cancellation token; <paramref name="onOutput"/> sees standard output as it is written.</summary>
    public static CliRun Run(CancellationToken cancellationToken, Action<string>? onOutput, params string[] args)
    {
        var output = new ObservedWriter(onOutput);
        var error = new StringWriter();
        var context = CliContext.ForWriters(output, error);
        int code = CliApp.RunAsync(args, context, cancellationToken).GetAwaiter().GetResult();
        return new CliRun(code, output.ToString(), error.ToString());
    }

    private sealed class ObservedWriter(Action<string>? onOutput) : StringWriter
    {
        public override void Write(char value)
        {
            base.Write(value);
            onOutput?.Invoke(ToString());
        }

        public override void Write(string? value)
        {
            base.Write(value);
            onOutput?.Invoke(ToString());
        }
    }
}
