using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>
/// Progress display for long work: Spectre's live progress bars on an interactive terminal; on redirected output
/// (logs, CI, tests) one plain line per task every 10%, at least every <see cref="DefaultHeartbeat"/> while it advances,
/// and at the end instead.
/// </summary>
internal static class ConsoleProgress
{
    /// <summary>On redirected output, the longest time between two lines of a task that advances: a long run's log
    /// (a 50-epoch training run takes hours per 10%) must not look idle.</summary>
    public static readonly TimeSpan DefaultHeartbeat = TimeSpan.FromMinutes(1);

    /// <summary>Runs <paramref name="work"/> with a progress display on <paramref name="console"/>.</summary>
    public static void Run(IAnsiConsole console, Action<ProgressScope> work, bool showRemaining = true, TimeSpan? heartbeat = null)
    {
        if (!IsLive(console))
        {
            var scope = new ProgressScope(console, null, heartbeat ?? DefaultHeartbeat);
            try
            {
                work(scope);
            }
            finally
            {
                scope.Finish();
            }
            return;
        }
        Create(console, showRemaining).Start(ctx => work(new ProgressScope(console, ctx, DefaultHeartbeat)));
    }

    /// <summary>Runs asynchronous <paramref name="work"/> with a progress display on <paramref name="console"/>.</summary>
    public static async Task RunAsync(IAnsiConsole console, Func<ProgressScope, Task> work)
    {
        if (!IsLive(console))
        {
            var scope = new ProgressScope(console, null, DefaultHeartbeat);
            try
            {
                await work(scope).ConfigureAwait(false);
            }
            finally
            {
                scope.Finish();
            }
            return;
        }
        await Create(console, true).StartAsync(ctx => work(new ProgressScope(console, ctx, DefaultHeartbeat))).ConfigureAwait(false);
    }

    private static bool IsLive(IAnsiConsole console) => console.Profile.Capabilities.Interactive && console.Profile.Capabilities.Ansi;

    private static Progress Create(IAnsiConsole console, bool showRemaining)
    {
        var columns = new List<ProgressColumn>
        {
            new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(),
        };
        if (showRemaining)
            columns.Add(new RemainingTimeColumn());
        columns.Add(new SpinnerColumn());
        return console.Progress().AutoClear(false).HideCompleted(false).Columns(columns.ToArray());
    }
}

/// <summary>The tasks of one progress display.</summary>
internal sealed class ProgressScope
{
    private readonly IAnsiConsole console;
    private readonly ProgressContext? live;
    private readonly TimeSpan heartbeat;
    private readonly List<ProgressHandle> tasks = [];

    internal ProgressScope(IAnsiConsole console, ProgressContext? live, TimeSpan heartbeat)
    {
        this.console = console;
        this.live = live;
        this.heartbeat = heartbeat;
    }

    /// <summary>Adds a task with a description and the value at which it is complete.</summary>
    public ProgressHandle AddTask(string description, double maxValue)
    {
        lock (tasks)
        {
            var handle = new ProgressHandle(console, live?.AddTask(Markup.Escape(description), maxValue: maxValue), description, maxValue, heartbeat);
            tasks.Add(handle);
            return handle;
        }
    }

    internal void Finish()
    {
        lock (tasks)
            foreach (var task in tasks)
                task.Finish();
    }
}

/// <summary>One task of a <see cref="ProgressScope"/>; thread-safe.</summary>
internal sealed class ProgressHandle
{
    private readonly IAnsiConsole console;
    private readonly ProgressTask? live;
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly object gate = new();
    private readonly TimeSpan heartbeat;
    private string description;
    private double value, maxValue;
    private int lastDecile;
    private TimeSpan lastLine;
    private double lastLineValue;
    private bool finished;

    internal ProgressHandle(IAnsiConsole console, ProgressTask? live, string description, double maxValue, TimeSpan heartbeat)
    {
        this.console = console;
        this.live = live;
        this.heartbeat = heartbeat;
        this.description = description;
        this.maxValue = Math.Max(maxValue, 1e-9);
    }

    /// <summary>The text shown (plain text, not markup).</summary>
    public string Description
    {
        set
        {
            lock (gate)
            {
                description = value;
                if (live is not null) live.Description = Markup.Escape(value);
            }
        }
    }

    /// <summary>The value at which the task is complete.</summary>
    public double MaxValue
    {
        set
        {
            lock (gate)
            {
                maxValue = Math.Max(value, 1e-9);
                if (live is not null) live.MaxValue = value;
            }
        }
    }

    /// <summary>The current value.</summary>
    public double Value
    {
        set
        {
            lock (gate)
            {
                this.value = value;
                if (live is not null)
                {
                    live.Value = value;
                    return;
                }
                double fraction = Math.Min(value / maxValue, 1);
                int decile = (int)Math.Floor(10 * fraction);
                var now = clock.Elapsed;
                if (decile > lastDecile && decile < 10)
                {
                    lastDecile = decile;
                    lastLine = now;
                    lastLineValue = value;
                    console.WriteLine(Line($"{10 * decile}%"));
                }
                else if (fraction is > 0 and < 1 && value > lastLineValue && now - lastLine >= heartbeat)
                {
                    lastLine = now;
                    lastLineValue = value;
                    // Rounded down, so that a heartbeat never shows the next tenth or 100% before its own line.
                    console.WriteLine(Line(string.Create(CultureInfo.InvariantCulture, $"{Math.Floor(1000 * fraction) / 10:F1}%")));
                }
            }
        }
    }

    /// <summary>Adds to the current value.</summary>
    public void Increment(double amount)
    {
        lock (gate)
            Value = value + amount;
    }

    internal void Finish()
    {
        lock (gate)
        {
            if (finished || live is not null)
                return;
            finished = true;
            console.WriteLine(Line(value >= maxValue ? "done" : string.Create(CultureInfo.InvariantCulture, $"stopped at {100 * value / maxValue:F0}%")));
        }
    }

    private string Line(string state) =>
        string.Create(CultureInfo.InvariantCulture, $"{description}: {state} ({clock.Elapsed.TotalSeconds:F1} s)");
}
