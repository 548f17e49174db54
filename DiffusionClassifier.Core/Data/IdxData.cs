namespace DiffusionClassifier.Data;

/// <summary>
/// The content of an idx file with unsigned-byte elements: its dimension sizes and its payload in row-major order
/// (the last dimension varies fastest).
/// </summary>
/// <remarks>The instance holds managed memory only. <see cref="Data"/> is the array passed in (not a copy). <para>Thread safety: safe to read from several threads as long as nobody writes to <see cref="Data"/> (the array is not copied).</para></remarks>
internal sealed class IdxData
{
    private readonly int[] dimensions;

    /// <summary>Wraps a payload and its dimension sizes.</summary>
    /// <param name="dimensions">One to 255 positive sizes; their product must equal <paramref name="data"/>'s length.</param>
    /// <param name="data">The payload, not copied.</param>
    /// <exception cref="ArgumentException">The dimensions are empty, too many, not positive, or do not match the length.</exception>
    public IdxData(IReadOnlyList<int> dimensions, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(dimensions);
        ArgumentNullException.ThrowIfNull(data);
        if (dimensions.Count is < 1 or > IdxFile.MaxRank)
            throw new ArgumentException($"An idx file has 1 to {IdxFile.MaxRank} dimensions, not {dimensions.Count}.", nameof(dimensions));
        long product = 1;
        for (int i = 0; i < dimensions.Count; i++)
        {
            if (dimensions[i] <= 0)
                throw new ArgumentException($"Dimension {i} is {dimensions[i]}; every dimension size must be positive.", nameof(dimensions));
            product = product > long.MaxValue / dimensions[i] ? long.MaxValue : product * dimensions[i];
        }
        if (product != data.LongLength)
            throw new ArgumentException(
                $"The dimensions [{string.Join(", ", dimensions)}] describe {product} bytes but the payload has {data.LongLength}.", nameof(data));
        this.dimensions = [.. dimensions];
        Data = data;
    }

    /// <summary>The dimension sizes, outermost first (for images: count, rows, columns).</summary>
    public IReadOnlyList<int> Dimensions => dimensions;

    /// <summary>The number of dimensions (the last byte of the magic number).</summary>
    public int Rank => dimensions.Length;

    /// <summary>The size of the first dimension: the number of items.</summary>
    public int Count => dimensions[0];

    /// <summary>The payload: one unsigned byte per element, row-major.</summary>
    public byte[] Data { get; }

    /// <summary>The idx magic number of this content: 0x0000_08_rr for unsigned bytes of rank rr.</summary>
    public int Magic => (IdxFile.UnsignedByteType << 8) | Rank;
}
