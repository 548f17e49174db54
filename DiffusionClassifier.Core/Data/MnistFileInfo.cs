namespace DiffusionClassifier.Data;

/// <summary>An expected data file: its name, the SHA-256 of its uncompressed content and that content's length.</summary>
/// <param name="Name">The file name (without <c>.gz</c>), e.g. <c>train-images-idx3-ubyte</c>.</param>
/// <param name="Sha256">The SHA-256 of the uncompressed content, 64 lower-case hex digits.</param>
/// <param name="Length">The uncompressed length in bytes.</param>
/// <remarks>Thread safety: an immutable record; safe to share.</remarks>
internal sealed record MnistFileInfo(string Name, string Sha256, long Length)
{
    /// <summary>Throws <see cref="ArgumentException"/> when the name is not a plain file name, the hash is not
    /// 64 hex digits or the length is not positive.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name) || Name != Path.GetFileName(Name) || Name is "." or "..")
            throw new ArgumentException($"'{Name}' is not a plain file name.", nameof(Name));
        if (Sha256 is null || Sha256.Length != 64 || !Sha256.All(Uri.IsHexDigit))
            throw new ArgumentException($"The SHA-256 of '{Name}' must be 64 hex digits, not '{Sha256}'.", nameof(Sha256));
        if (Length < 1)
            throw new ArgumentOutOfRangeException(nameof(Length), Length, $"The length of '{Name}' must be positive.");
    }
}
