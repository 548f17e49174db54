using Microsoft.Extensions.Logging;

namespace DiffusionClassifier.Tests.TestSupport;

/// <summary>An <see cref="ILogger{T}"/> that keeps every entry (level and formatted message), for tests of what a
/// component logs.</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    private readonly List<(LogLevel Level, string Message)> entries = [];
    private readonly Lock gate = new();

    /// <summary>A copy of the entries logged so far, in order.</summary>
    public IReadOnlyList<(LogLevel Level, string Message)> Entries
    {
        get { lock (gate) return entries.ToArray(); }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (gate) entries.Add((logLevel, formatter(state, exception)));
    }
}
