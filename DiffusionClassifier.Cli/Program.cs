using DiffusionClassifier.Cli.Infrastructure;
using Spectre.Console;

namespace DiffusionClassifier.Cli;

/// <summary>Entry point of the <c>diffusion-classifier</c> tool.</summary>
public static class Program
{
    /// <summary>Runs the tool: the first Ctrl+C cancels the running command (training writes a checkpoint), a second
    /// one ends the process at once.</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <returns>The process exit code (see <c>--help</c>): 0 success, 1 error, 2 bad command line, 130 interrupted.</returns>
    public static async Task<int> Main(string[] args)
    {
        var context = CliContext.ForSystemConsole();
        using var cancellation = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            if (cancellation.IsCancellationRequested)
                return; // second Ctrl+C: let the process end
            e.Cancel = true;
            context.Error.MarkupLine("[yellow]Stopping... (press Ctrl+C again to abort at once)[/]");
            cancellation.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            return await CliApp.RunAsync(args, context, cancellation.Token).ConfigureAwait(false);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}
