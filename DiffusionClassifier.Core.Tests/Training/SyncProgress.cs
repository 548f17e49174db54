namespace DiffusionClassifier.Tests.Training;

/// <summary>An <see cref="IProgress{T}"/> that runs the handler synchronously on the reporting thread
/// (<see cref="Progress{T}"/> posts asynchronously, which would make step-exact cancellation racy).</summary>
internal sealed class SyncProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
