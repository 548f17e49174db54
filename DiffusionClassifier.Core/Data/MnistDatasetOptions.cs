namespace DiffusionClassifier.Data;

/// <summary>How <see cref="MnistDataset"/> loads and validates a pair of idx files.</summary>
/// <remarks>Thread safety: a mutable settings object without synchronisation: do not change it while a load that uses it runs.</remarks>
public sealed record MnistDatasetOptions
{
    /// <summary>The number of classes; every label must be below it. Default 10.</summary>
    public int Classes { get; init; } = 10;

    /// <summary>The required image height, or null to accept any. Default 28.</summary>
    public int? Height { get; init; } = 28;

    /// <summary>The required image width, or null to accept any. Default 28.</summary>
    public int? Width { get; init; } = 28;

    /// <summary>Keep only the first this many items (after validating the whole files and skipping <see cref="Offset"/>), or null for all. Default null.</summary>
    public int? Limit { get; init; }

    /// <summary>
    /// Skip this many items from the start of the split (or of the files) before <see cref="Limit"/> applies, e.g. to
    /// fine-tune on items that an earlier run did not see. Default 0.
    /// </summary>
    public int Offset { get; init; }

    /// <summary>The largest payload an idx file may declare; see <see cref="IdxFile.DefaultMaxPayloadBytes"/>.</summary>
    public long MaxPayloadBytes { get; init; } = IdxFile.DefaultMaxPayloadBytes;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when a value is out of range.</summary>
    public void Validate()
    {
        if (Classes is < 1 or > 256)
            throw new ArgumentOutOfRangeException(nameof(Classes), Classes, "Classes must lie in 1..256 (labels are bytes).");
        if (Height is < 1)
            throw new ArgumentOutOfRangeException(nameof(Height), Height, "Height must be positive or null.");
        if (Width is < 1)
            throw new ArgumentOutOfRangeException(nameof(Width), Width, "Width must be positive or null.");
        if (Limit is < 1)
            throw new ArgumentOutOfRangeException(nameof(Limit), Limit, "Limit must be positive or null.");
        if (Offset < 0)
            throw new ArgumentOutOfRangeException(nameof(Offset), Offset, "Offset must not be negative.");
        if (MaxPayloadBytes < 1 || MaxPayloadBytes > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(MaxPayloadBytes), MaxPayloadBytes, $"MaxPayloadBytes must lie in 1..{Array.MaxLength}.");
    }
}
