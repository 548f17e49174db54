using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>
/// Where a command writes and what it may use: the standard output and error consoles (Spectre), the plain writers
/// System.CommandLine writes help to, and the logger factory. Tests build one over string writers.
/// </summary>
internal sealed class CliContext
{
    public CliContext(IAnsiConsole output, IAnsiConsole error, TextWriter outputWriter, TextWriter errorWriter)
    {
        Out = output;
        Error = error;
        OutWriter = outputWriter;
        ErrorWriter = errorWriter;
    }

    /// <summary>Standard output: results, tables, progress bars.</summary>
    public IAnsiConsole Out { get; }

    /// <summary>Standard error: the one-line error message, warnings.</summary>
    public IAnsiConsole Error { get; }

    /// <summary>The writer behind <see cref="Out"/> (help text).</summary>
    public TextWriter OutWriter { get; }

    /// <summary>The writer behind <see cref="Error"/>.</summary>
    public TextWriter ErrorWriter { get; }

    /// <summary>Set from <c>--verbose</c> before a command runs.</summary>
    public bool Verbose { get; set; }

    /// <summary>Loggers handed to Core types; quiet unless <c>--verbose</c> (set by <see cref="CliApp"/>).</summary>
    public ILoggerFactory LoggerFactory { get; set; } = NullLoggerFactory.Instance;

    /// <summary>Builds loggers for a run: null keeps them silent (tests).</summary>
    public Func<bool, ILoggerFactory>? LoggerFactoryProvider { get; init; }

    /// <summary>The real terminal: colours and live progress when it is one.</summary>
    public static CliContext ForSystemConsole()
    {
        // Plain text when redirected (logs, CI, pipes); colours and live progress on a terminal.
        var output = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Out),
            Ansi = Console.IsOutputRedirected ? AnsiSupport.No : AnsiSupport.Detect,
        });
        var error = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Error),
            Ansi = Console.IsErrorRedirected ? AnsiSupport.No : AnsiSupport.Detect,
        });
        if (Console.IsOutputRedirected)
            output.Profile.Width = 160; // Spectre assumes 80 columns for a file: keep tables on one line
        return new CliContext(output, error, Console.Out, Console.Error)
        {
            // Logs go to standard error so that standard output stays the command's result.
            LoggerFactoryProvider = verbose => Microsoft.Extensions.Logging.LoggerFactory.Create(builder => builder
                .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Warning)
                .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
                .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })),
        };
    }

    /// <summary>Plain text on two writers, no colours, no live rendering, 160 columns (tests, redirection).</summary>
    public static CliContext ForWriters(TextWriter output, TextWriter error)
    {
        static IAnsiConsole Plain(TextWriter writer) => AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new FixedWidthOutput(writer, 160),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        return new CliContext(Plain(output), Plain(error), output, error);
    }

    private sealed class FixedWidthOutput(TextWriter writer, int width) : IAnsiConsoleOutput
    {
        public TextWriter Writer => writer;
        public bool IsTerminal => false;
        public int Width => width;
        public int Height => 50;
        public void SetEncoding(System.Text.Encoding encoding) { }
    }
}
