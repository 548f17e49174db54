using System.CommandLine;
using System.CommandLine.Invocation;
using DiffusionClassifier.Cli.Commands;
using DiffusionClassifier.Cli.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace DiffusionClassifier.Cli;

/// <summary>
/// Builds the command tree and runs one command line: parse errors and user mistakes become one red line on standard
/// error and a non-zero exit code (<see cref="ExitCodes"/>); a stack trace is printed only for unexpected errors
/// with <c>--verbose</c>.
/// </summary>
internal static class CliApp
{
    /// <summary>The global <c>--verbose</c> option (any command).</summary>
    internal static readonly Option<bool> VerboseOption = new("--verbose", "-v")
    {
        Description = "Log progress details and print stack traces of unexpected errors.",
        Recursive = true,
    };

    /// <summary>The global <c>--threads</c> option (any command).</summary>
    internal static readonly Option<int?> ThreadsOption = new("--threads")
    {
        Description = "CPU threads for libtorch (default: libtorch's choice, usually the number of cores).",
        Recursive = true,
        HelpName = "count",
    };

    /// <summary>Runs the tool for <paramref name="args"/>.</summary>
    /// <param name="args">The command line.</param>
    /// <param name="context">The consoles to write to.</param>
    /// <param name="cancellationToken">Ctrl+C.</param>
    /// <returns>The exit code.</returns>
    public static async Task<int> RunAsync(string[] args, CliContext context, CancellationToken cancellationToken)
    {
        var root = BuildRootCommand(context);
        var parseResult = root.Parse(args);
        if (parseResult.Action is ParseErrorAction)
        {
            var command = parseResult.CommandResult.Command;
            string name = command is RootCommand ? "diffusion-classifier" : $"diffusion-classifier {command.Name}";
            WriteError(context, $"{string.Join(" ", parseResult.Errors.Select(e => e.Message))} (see '{name} --help')");
            return ExitCodes.Usage;
        }
        context.Verbose = parseResult.GetValue(VerboseOption);
        var configuration = new InvocationConfiguration
        {
            Output = context.OutWriter,
            Error = context.ErrorWriter,
            EnableDefaultExceptionHandler = false,
            // Ctrl+C is turned into the cancellation token by Program; training needs time to write its checkpoint.
            ProcessTerminationTimeout = null,
        };
        var loggerFactory = context.LoggerFactoryProvider?.Invoke(context.Verbose);
        context.LoggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        try
        {
            if (parseResult.GetValue(ThreadsOption) is int threads)
            {
                if (threads < 1)
                    throw new CliException($"--threads must be at least 1 but is {threads}.");
                TorchSharp.torch.set_num_threads(threads);
            }
            return await parseResult.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            WriteError(context, "Interrupted.");
            return ExitCodes.Interrupted;
        }
        catch (Exception e) when (IsUserError(e))
        {
            WriteError(context, e.Message);
            if (context.Verbose)
                context.Error.WriteException(e);
            return ExitCodes.Failure;
        }
        catch (Exception e)
        {
            WriteError(context, $"unexpected {e.GetType().Name}: {e.Message}" + (context.Verbose ? "" : " (run with --verbose for details)"));
            if (context.Verbose)
                context.Error.WriteException(e);
            return ExitCodes.Failure;
        }
        finally
        {
            loggerFactory?.Dispose();
        }
    }

    /// <summary>The root command (which runs the demo) and every subcommand.</summary>
    public static RootCommand BuildRootCommand(CliContext context)
    {
        var root = new RootCommand(
            "Diffusion classifier: a class-conditional diffusion model (DDPM) used as a zero-shot Bayes classifier of MNIST digits. " +
            "Without a command, runs the demo on the built-in model and digits.");
        root.Options.Add(VerboseOption);
        root.Options.Add(ThreadsOption);
        DemoCommand.Configure(root, context);
        root.Subcommands.Add(DemoCommand.Create(context));
        root.Subcommands.Add(FetchMnistCommand.Create(context));
        root.Subcommands.Add(TrainCommand.Create(context));
        root.Subcommands.Add(EvaluateCommand.Create(context));
        root.Subcommands.Add(CompareCommand.Create(context));
        root.Subcommands.Add(CalibrateCommand.Create(context));
        root.Subcommands.Add(CurvesCommand.Create(context));
        root.Subcommands.Add(ClassifyCommand.Create(context));
        root.Subcommands.Add(SampleCommand.Create(context));
        root.Subcommands.Add(ImportPyTorchCommand.Create(context));
        root.Subcommands.Add(InfoCommand.Create(context));
        return root;
    }

    /// <summary>Writes the one-line error message (red on a terminal) to standard error, never wrapped.</summary>
    public static void WriteError(CliContext context, string message)
    {
        string oneLine = string.Join(" ", message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        string prefix = context.Error.Profile.Capabilities.Ansi ? "\u001b[31merror:\u001b[0m" : "error:";
        context.ErrorWriter.WriteLine($"{prefix} {oneLine}");
        context.ErrorWriter.Flush();
    }

    /// <summary>Exceptions Core documents for bad input (files, data, values): the user's mistake, not a bug.</summary>
    private static bool IsUserError(Exception e) => e is CliException or ArgumentException or IOException
        or InvalidDataException or UnauthorizedAccessException or NotSupportedException or TimeoutException
        or HttpRequestException or InvalidOperationException;
}
