namespace DiffusionClassifier.Tests.TestSupport;

/// <summary>An <see cref="IProgress{T}"/> that runs the handler synchronously on the reporting thread
/// (<see cref="Progress{T}"/> posts to the thread pool, which would race the assertions and make step-exact
/// cancellation racy).</summary>
internal sealed class SyncProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
