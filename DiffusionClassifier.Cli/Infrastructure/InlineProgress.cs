namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>
/// An <see cref="IProgress{T}"/> that runs the handler on the reporting thread at once (unlike
/// <see cref="Progress{T}"/>, which posts to the thread pool and may reorder or lag reports).
/// </summary>
internal sealed class InlineProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
