using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace DiffusionClassifier.Tests.Reliability;

/// <summary>A running child and what it has said.</summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process process;
    private readonly BlockingCollection<string> lines = new();
    private readonly List<string> seen = new();
    private readonly System.Text.StringBuilder errors = new();

    private ChildProcess(Process process)
    {
        this.process = process;
    }

    /// <summary>Everything the child wrote to standard output so far.</summary>
    public IReadOnlyList<string> Lines => seen;

    /// <summary>How many SAVED lines the child wrote.</summary>
    public int SavedCount { get; private set; }

    /// <summary>Losses the child reported, by global step.</summary>
    public Dictionary<long, float> Losses { get; } = new();

    /// <summary>The step of the last checkpoint the child reported renamed into place.</summary>
    public long? LastSaved { get; private set; }

    /// <summary>Starts <c>dotnet DiffusionClassifier.Core.Tests.dll args...</c> (see Program).</summary>
    public static ChildProcess Start(params string[] args)
    {
        string dll = typeof(CrashChild).Assembly.Location;
        string host = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var info = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var a in args)
            info.ArgumentList.Add(a);
        var child = new ChildProcess(new Process { StartInfo = info });
        child.process.OutputDataReceived += (_, e) => { if (e.Data is not null) child.lines.Add(e.Data); };
        child.process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (child.errors) child.errors.AppendLine(e.Data); };
        child.process.Start();
        child.process.BeginOutputReadLine();
        child.process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Reads lines until one matches; fails with the child's output on a time-out or an early exit.</summary>
    public string WaitFor(Func<string, bool> match)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            if (lines.TryTake(out var line, TimeSpan.FromMilliseconds(100)))
            {
                Record(line);
                if (match(line))
                    return line;
            }
            else if (process.HasExited && lines.Count == 0)
            {
                break;
            }
        }
        lock (errors)
            throw new Xunit.Sdk.XunitException($"The child did not say what was expected. Output:\n{string.Join("\n", seen)}\nErrors:\n{errors}");
    }

    /// <summary>Waits for the child to exit (failing after <paramref name="timeout"/>) and returns its exit code.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!process.WaitForExit(timeout))
            throw new Xunit.Sdk.XunitException($"The child did not exit within {timeout}. Output so far:\n{string.Join("\n", seen)}");
        process.WaitForExit(); // the end of the redirected output
        while (lines.TryTake(out var line))
            Record(line);
        return process.ExitCode;
    }

    /// <summary>What the child wrote to standard error so far.</summary>
    public string Errors
    {
        get
        {
            lock (errors)
                return errors.ToString();
        }
    }

    /// <summary>SIGKILL, then collect everything it wrote.</summary>
    public void Kill()
    {
        process.Kill();
        process.WaitForExit(); // also waits for the end of the redirected output
        while (lines.TryTake(out var line))
            Record(line);
    }

    private void Record(string line)
    {
        seen.Add(line);
        var parts = line.Split(' ');
        if (parts[0] == "STEP")
            Losses[long.Parse(parts[1], CultureInfo.InvariantCulture)] = float.Parse(parts[2], CultureInfo.InvariantCulture);
        else if (parts[0] == "SAVED")
        {
            SavedCount++;
            if (parts.Length > 1)
                LastSaved = long.Parse(parts[1], CultureInfo.InvariantCulture);
        }
    }

    public void Dispose()
    {
        if (!process.HasExited)
        {
            process.Kill();
            process.WaitForExit();
        }
        process.Dispose();
        lines.Dispose();
    }
}
