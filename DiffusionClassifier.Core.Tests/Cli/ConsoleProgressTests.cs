using DiffusionClassifier.Cli.Infrastructure;
using Spectre.Console;

namespace DiffusionClassifier.Tests.Cli;

/// <summary>The plain progress lines written when the output is redirected (logs, CI).</summary>
public sealed class ConsoleProgressTests
{
    private static (IAnsiConsole Console, StringWriter Text) Redirected()
    {
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(text),
        });
        return (console, text);
    }

    private static string[] Lines(StringWriter text) =>
        text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Each line without its elapsed time, e.g. "Work: 10%".</summary>
    private static string[] States(StringWriter text) =>
        Lines(text).Select(l => l[..l.IndexOf(" (", StringComparison.Ordinal)]).ToArray();

    [Fact]
    public void RedirectedOutputGetsALineEveryTenthAndAtTheEnd()
    {
        var (console, text) = Redirected();
        ConsoleProgress.Run(console, scope =>
        {
            var task = scope.AddTask("Work", 100);
            for (int i = 1; i <= 100; i++)
                task.Value = i;
        }, heartbeat: TimeSpan.FromHours(1));

        var lines = Lines(text);
        Assert.Equal(10, lines.Length);
        Assert.StartsWith("Work: 10% (", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("Work: 90% (", lines[8], StringComparison.Ordinal);
        Assert.StartsWith("Work: done (", lines[9], StringComparison.Ordinal);
    }

    [Fact]
    public void ASlowTaskGetsHeartbeatLinesBetweenTenths()
    {
        // 200 steps of a long run: with a zero heartbeat every update inside a tenth is written, with its percentage.
        var (console, text) = Redirected();
        ConsoleProgress.Run(console, scope =>
        {
            var task = scope.AddTask("Training", 200);
            task.Value = 1;
            task.Value = 2;
            task.Value = 20;
            task.Value = 22;
        }, heartbeat: TimeSpan.Zero);

        Assert.Equal(["Training: 0.5%", "Training: 1.0%", "Training: 10%", "Training: 11.0%", "Training: stopped at 11%"], States(text));
    }

    [Fact]
    public void HeartbeatsOnlyWhenTheTaskAdvancesAndRoundedDown()
    {
        var (console, text) = Redirected();
        ConsoleProgress.Run(console, scope =>
        {
            var task = scope.AddTask("Idle", 1000);
            task.Value = 0;
            task.Value = 0;
            task.Value = 3;
            task.Value = 3;
            task.Value = 99.96;
            task.Value = 950;
            task.Value = 999.96;
            task.Value = 1000;
        }, heartbeat: TimeSpan.Zero);

        Assert.Equal(["Idle: 0.3%", "Idle: 9.9%", "Idle: 90%", "Idle: 99.9%", "Idle: done"], States(text));
    }
}
