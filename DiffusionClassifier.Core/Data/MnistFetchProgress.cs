namespace DiffusionClassifier.Data;

/// <summary>Progress of one file during a fetch.</summary>
/// <param name="FileName">The file being written (without <c>.gz</c>).</param>
/// <param name="Source">Where it comes from (a URL or the npm tarball).</param>
/// <param name="BytesWritten">Uncompressed bytes written and hashed so far.</param>
/// <param name="TotalBytes">The expected uncompressed length.</param>
/// <remarks>Thread safety: an immutable value; safe to share.</remarks>
internal readonly record struct MnistFetchProgress(string FileName, string Source, long BytesWritten, long TotalBytes);
