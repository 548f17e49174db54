namespace DiffusionClassifier.Serialization;

/// <summary>
/// The CRC-32 of zip archives (IEEE 802.3, reflected polynomial 0xEDB88320). System.IO.Compression does not check
/// it when reading, so the checkpoint reader does, to report damaged tensor data instead of loading it.
/// </summary>
internal static class Crc32
{
    private static readonly uint[] Table = CreateTable();

    private static uint[] CreateTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return table;
    }

    /// <summary>Continues a CRC over <paramref name="data"/>; start with 0.</summary>
    /// <param name="crc">The CRC of the preceding bytes (0 for none).</param>
    /// <param name="data">The next bytes.</param>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        uint c = ~crc;
        foreach (byte b in data) c = Table[(c ^ b) & 0xff] ^ (c >> 8);
        return ~c;
    }
}
