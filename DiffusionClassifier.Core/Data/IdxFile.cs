using System.Buffers.Binary;
using System.IO.Compression;
using DiffusionClassifier.IO;

namespace DiffusionClassifier.Data;

/// <summary>
/// Reads and writes idx files (the MNIST format): a big-endian int32 magic <c>0x0000_TT_RR</c> (TT the element
/// type, RR the number of dimensions), RR big-endian int32 dimension sizes, then the elements. Only unsigned-byte
/// elements (TT = 0x08) are supported. Files may be raw or gzip-compressed; gzip is recognised by its magic bytes
/// (1f 8b), not by the file name.
/// </summary>
/// <remarks>
/// Reading validates everything before trusting it: the magic, the element type, the rank, that every dimension
/// is positive, that their product does not overflow and is at most a caller-set limit, and that the payload has
/// exactly that many bytes (a shorter or a longer payload is an <see cref="InvalidDataException"/> naming the
/// source, the expected and the actual length). A raw file whose declared size differs from its length is refused
/// before the payload is allocated; a compressed or unseekable source is read in growing chunks, so a header that
/// lies costs at most about twice the bytes that really arrive. Writing is atomic (temporary file, flush,
/// rename). All members are thread-safe.
/// </remarks>
internal static class IdxFile
{
    /// <summary>The magic number of an image file (unsigned bytes, 3 dimensions: count, rows, columns).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>The magic number of a label file (unsigned bytes, 1 dimension: count).</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>The element-type byte of unsigned bytes, the only type supported.</summary>
    public const byte UnsignedByteType = 0x08;

    /// <summary>The largest number of dimensions the format can express (one byte).</summary>
    public const int MaxRank = 255;

    /// <summary>The default limit on a payload's declared size: 1 GiB (MNIST's largest file is 47 MB).</summary>
    public const long DefaultMaxPayloadBytes = 1L << 30;

    private const int InitialChunk = 1 << 20;
    private const int TrailingProbe = 1 << 16;

    /// <summary>Reads an idx file of any rank.</summary>
    /// <param name="path">The file, raw or gzip-compressed.</param>
    /// <param name="maxPayloadBytes">Refuse files declaring a larger payload (1 to <see cref="Array.MaxLength"/>).</param>
    /// <exception cref="InvalidDataException">The file is not a valid unsigned-byte idx file.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static IdxData Read(string path, long maxPayloadBytes = DefaultMaxPayloadBytes) =>
        ReadPath(path, expectedRank: null, maxPayloadBytes);

    /// <summary>Reads an idx file of any rank from the current position of <paramref name="stream"/> to its end.</summary>
    /// <param name="stream">A readable stream, raw or gzip-compressed; it is not disposed.</param>
    /// <param name="sourceName">A name for error messages.</param>
    /// <param name="maxPayloadBytes">Refuse sources declaring a larger payload (1 to <see cref="Array.MaxLength"/>).</param>
    /// <exception cref="InvalidDataException">The content is not a valid unsigned-byte idx file.</exception>
    public static IdxData Read(Stream stream, string sourceName = "<stream>", long maxPayloadBytes = DefaultMaxPayloadBytes) =>
        ReadStream(stream, sourceName, expectedRank: null, maxPayloadBytes);

    /// <summary>Reads an idx3 image file (magic 0x00000803).</summary>
    /// <param name="path">The file, raw or gzip-compressed.</param>
    /// <param name="maxPayloadBytes">Refuse files declaring a larger payload.</param>
    /// <exception cref="InvalidDataException">The file is not a valid unsigned-byte idx3 file.</exception>
    public static IdxImages ReadImages(string path, long maxPayloadBytes = DefaultMaxPayloadBytes) =>
        ToImages(ReadPath(path, expectedRank: 3, maxPayloadBytes));

    /// <summary>Reads an idx3 image file (magic 0x00000803) from a stream; see <see cref="Read(Stream, string, long)"/>.</summary>
    /// <param name="stream">A readable stream, raw or gzip-compressed; it is not disposed.</param>
    /// <param name="sourceName">A name for error messages.</param>
    /// <param name="maxPayloadBytes">Refuse sources declaring a larger payload.</param>
    /// <exception cref="InvalidDataException">The content is not a valid unsigned-byte idx3 file.</exception>
    public static IdxImages ReadImages(Stream stream, string sourceName = "<stream>", long maxPayloadBytes = DefaultMaxPayloadBytes) =>
        ToImages(ReadStream(stream, sourceName, expectedRank: 3, maxPayloadBytes));

    /// <summary>Reads an idx1 label file (magic 0x00000801).</summary>
    /// <param name="path">The file, raw or gzip-compressed.</param>
    /// <param name="maxPayloadBytes">Refuse files declaring a larger payload.</param>
    /// <returns>One byte per item.</returns>
    /// <exception cref="InvalidDataException">The file is not a valid unsigned-byte idx1 file.</exception>
    public static byte[] ReadLabels(string path, long maxPayloadBytes = DefaultMaxPayloadBytes) =>
        ReadPath(path, expectedRank: 1, maxPayloadBytes).Data;

    /// <summary>Reads an idx1 label file (magic 0x00000801) from a stream.</summary>
    /// <param name="stream">A readable stream, raw or gzip-compressed; it is not disposed.</param>
    /// <param name="sourceName">A name for error messages.</param>
    /// <param name="maxPayloadBytes">Refuse sources declaring a larger payload.</param>
    /// <returns>One byte per item.</returns>
    /// <exception cref="InvalidDataException">The content is not a valid unsigned-byte idx1 file.</exception>
    public static byte[] ReadLabels(Stream stream, string sourceName = "<stream>", long maxPayloadBytes = DefaultMaxPayloadBytes) =>
        ReadStream(stream, sourceName, expectedRank: 1, maxPayloadBytes).Data;

    /// <summary>Writes <paramref name="data"/> in raw idx form (header and payload) to <paramref name="stream"/>.</summary>
    /// <param name="stream">A writable stream; it is not disposed.</param>
    /// <param name="data">The content.</param>
    public static void Write(Stream stream, IdxData data)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(data);
        var header = new byte[4 + 4 * data.Rank];
        BinaryPrimitives.WriteInt32BigEndian(header, data.Magic);
        for (int i = 0; i < data.Rank; i++)
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * i), data.Dimensions[i]);
        stream.Write(header);
        stream.Write(data.Data);
    }

    /// <summary>Writes <paramref name="data"/> to <paramref name="path"/> atomically.</summary>
    /// <param name="path">The target file; its folder is created if missing.</param>
    /// <param name="data">The content.</param>
    /// <param name="gzip">Compress with gzip (the usual <c>.gz</c> distribution form).</param>
    public static void Write(string path, IdxData data, bool gzip = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        AtomicFile.Write(path, stream =>
        {
            if (!gzip)
            {
                Write(stream, data);
                return;
            }
            using var zip = new GZipStream(stream, CompressionLevel.Optimal, leaveOpen: true);
            Write(zip, data);
        });
    }

    /// <summary>Writes an idx3 image file atomically.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="pixels"><paramref name="count"/> x <paramref name="rows"/> x <paramref name="columns"/> bytes.</param>
    /// <param name="count">Number of images (positive).</param>
    /// <param name="rows">Image height (positive).</param>
    /// <param name="columns">Image width (positive).</param>
    /// <param name="gzip">Compress with gzip.</param>
    /// <exception cref="ArgumentException">A size is not positive or the pixel count does not match.</exception>
    public static void WriteImages(string path, byte[] pixels, int count, int rows, int columns, bool gzip = false) =>
        Write(path, new IdxData([count, rows, columns], pixels), gzip);

    /// <summary>Writes an idx1 label file atomically.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="labels">One byte per item; at least one.</param>
    /// <param name="gzip">Compress with gzip.</param>
    public static void WriteLabels(string path, byte[] labels, bool gzip = false)
    {
        ArgumentNullException.ThrowIfNull(labels);
        Write(path, new IdxData([labels.Length], labels), gzip);
    }

    private static IdxImages ToImages(IdxData data) =>
        new(data.Dimensions[0], data.Dimensions[1], data.Dimensions[2], data.Data);

    private static IdxData ReadPath(string path, int? expectedRank, long maxPayloadBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return ReadStream(stream, path, expectedRank, maxPayloadBytes);
    }

    private static IdxData ReadStream(Stream stream, string sourceName, int? expectedRank, long maxPayloadBytes)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(sourceName);
        if (!stream.CanRead)
            throw new ArgumentException($"The stream for '{sourceName}' is not readable.", nameof(stream));
        if (maxPayloadBytes < 1 || maxPayloadBytes > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(maxPayloadBytes), maxPayloadBytes, $"The limit must lie in 1..{Array.MaxLength}.");

        var first = new byte[4];
        int got = ReadAtMost(stream, first, sourceName, gzip: false);
        if (got >= 2 && first[0] == 0x1f && first[1] == 0x8b)
        {
            using var zip = new GZipStream(new PrefixedReadStream(first[..got], stream), CompressionMode.Decompress, leaveOpen: true);
            return ReadContent(zip, sourceName, gzip: true, expectedRank, maxPayloadBytes, null);
        }
        return ReadContent(stream, sourceName, gzip: false, expectedRank, maxPayloadBytes, first.AsSpan(0, got).ToArray());
    }

    /// <summary>Parses the header and payload. <paramref name="consumed"/> holds magic bytes already read (raw only).</summary>
    private static IdxData ReadContent(Stream source, string name, bool gzip, int? expectedRank, long maxPayloadBytes, byte[]? consumed)
    {
        string what = gzip ? "decompressed content" : "file";
        var magicBytes = ReadMagic(source, name, gzip, what, consumed);
        int rank = CheckMagic(magicBytes, name, expectedRank);
        var (dims, declared) = ReadDimensions(source, name, gzip, what, rank, maxPayloadBytes);
        long headerLength = 4 + 4L * rank;
        var payload = !gzip && source.CanSeek
            ? ReadKnownLengthPayload(source, name, what, dims, declared, headerLength)
            : ReadGrowingPayload(source, name, gzip, what, dims, declared, headerLength);
        return new IdxData(dims, payload);
    }

    /// <summary>The 4 magic bytes: <paramref name="consumed"/>, then the rest from <paramref name="source"/>.</summary>
    private static byte[] ReadMagic(Stream source, string name, bool gzip, string what, byte[]? consumed)
    {
        var magicBytes = new byte[4];
        int have = 0;
        if (consumed is not null)
        {
            consumed.CopyTo(magicBytes, 0);
            have = consumed.Length;
        }
        have += ReadAtMost(source, magicBytes.AsSpan(have), name, gzip);
        if (have < 4)
            throw new InvalidDataException($"'{name}' is not an idx file: its {what} is only {have} bytes long, shorter than the 4-byte magic number.");
        return magicBytes;
    }

    /// <summary>Checks the magic (an idx file of unsigned bytes, of the expected rank if any) and returns its rank.</summary>
    private static int CheckMagic(byte[] magicBytes, string name, int? expectedRank)
    {
        int magic = BinaryPrimitives.ReadInt32BigEndian(magicBytes);
        if (magicBytes[0] != 0 || magicBytes[1] != 0)
            throw new InvalidDataException(
                $"'{name}' is not an idx file: magic number 0x{magic:X8}, expected 0x{ImagesMagic:X8} (images), 0x{LabelsMagic:X8} (labels) or another 0x0000_08_rr.");
        if (magicBytes[2] != UnsignedByteType)
            throw new InvalidDataException(
                $"'{name}': idx element type 0x{magicBytes[2]:X2} (magic 0x{magic:X8}) is not supported; only 0x{UnsignedByteType:X2} (unsigned byte) is.");
        int rank = magicBytes[3];
        if (rank == 0)
            throw new InvalidDataException($"'{name}': magic 0x{magic:X8} declares 0 dimensions; an idx file has at least one.");
        if (expectedRank is int want && rank != want)
            throw new InvalidDataException(
                $"'{name}': expected an idx{want} file (magic 0x{(UnsignedByteType << 8) | want:X8}) but found magic 0x{magic:X8} ({rank} dimension(s)).");
        return rank;
    }

    /// <summary>
    /// Reads the <paramref name="rank"/> dimension sizes and checks them; returns them with the payload size they
    /// declare, which is at most <paramref name="maxPayloadBytes"/>.
    /// </summary>
    private static (int[] Dims, long Declared) ReadDimensions(Stream source, string name, bool gzip, string what, int rank, long maxPayloadBytes)
    {
        var dimBytes = new byte[4 * rank];
        int dimHave = ReadAtMost(source, dimBytes, name, gzip);
        if (dimHave < dimBytes.Length)
            throw new InvalidDataException(
                $"'{name}': truncated idx header: {rank} dimension(s) need {dimBytes.Length} bytes after the magic, but the {what} ends after {dimHave}.");
        var dims = new int[rank];
        long declared = 1;
        for (int i = 0; i < rank; i++)
        {
            dims[i] = BinaryPrimitives.ReadInt32BigEndian(dimBytes.AsSpan(4 * i));
            if (dims[i] <= 0)
                throw new InvalidDataException($"'{name}': dimension {i} has size {dims[i]}; every idx dimension must be positive.");
            try
            {
                declared = checked(declared * dims[i]);
            }
            catch (OverflowException)
            {
                throw new InvalidDataException(
                    $"'{name}': the dimensions [{string.Join(", ", dims[..(i + 1)])}...] multiply to more than {long.MaxValue} bytes.");
            }
        }
        if (declared > maxPayloadBytes)
            throw new InvalidDataException(
                $"'{name}': the dimensions [{string.Join(", ", dims)}] declare {declared} bytes, more than the limit of {maxPayloadBytes} bytes.");
        return (dims, declared);
    }

    /// <summary>The payload of a raw, seekable source, whose exact length is known: a mismatch is refused before allocating anything.</summary>
    private static byte[] ReadKnownLengthPayload(Stream source, string name, string what, int[] dims, long declared, long headerLength)
    {
        long actual = source.Length - source.Position;
        if (actual != declared)
            throw LengthMismatch(name, what, dims, declared, actual, headerLength, atLeast: false);
        var exact = new byte[declared];
        int read = ReadAtMost(source, exact, name, gzip: false);
        if (read != declared)
            throw LengthMismatch(name, what, dims, declared, read, headerLength, atLeast: false);
        return exact;
    }

    /// <summary>
    /// The payload of a compressed or unseekable source: the buffer grows only as data really arrives, so a header that
    /// lies costs at most about twice the bytes received. Data after the payload is refused.
    /// </summary>
    private static byte[] ReadGrowingPayload(Stream source, string name, bool gzip, string what, int[] dims, long declared, long headerLength)
    {
        var buffer = new byte[Math.Min(declared, InitialChunk)];
        long filled = 0;
        while (filled < declared)
        {
            if (filled == buffer.Length)
                Array.Resize(ref buffer, (int)Math.Min(declared, 2L * buffer.Length));
            int n = ReadAtMost(source, buffer.AsSpan((int)filled), name, gzip);
            if (n == 0)
                throw LengthMismatch(name, what, dims, declared, filled, headerLength, atLeast: false);
            filled += n;
        }
        var probe = new byte[TrailingProbe];
        int extra = ReadAtMost(source, probe, name, gzip);
        if (extra > 0)
            throw LengthMismatch(name, what, dims, declared, declared + extra, headerLength, atLeast: extra == probe.Length);
        return buffer;
    }

    private static InvalidDataException LengthMismatch(string name, string what, int[] dims, long expected, long actual, long headerLength, bool atLeast)
    {
        string kind = actual < expected ? "truncated" : "has trailing data";
        return new InvalidDataException(
            $"'{name}' is {kind}: the dimensions [{string.Join(", ", dims)}] need exactly {expected} payload bytes after the " +
            $"{headerLength}-byte header, but {(atLeast ? "at least " : "")}{actual} follow it in the {what}.");
    }

    /// <summary>Fills <paramref name="buffer"/> as far as the source allows; returns the bytes read.</summary>
    private static int ReadAtMost(Stream source, Span<byte> buffer, string name, bool gzip)
    {
        int total = 0;
        try
        {
            while (total < buffer.Length)
            {
                int n = source.Read(buffer[total..]);
                if (n == 0)
                    break;
                total += n;
            }
        }
        catch (InvalidDataException e) when (gzip)
        {
            throw new InvalidDataException($"'{name}': the gzip stream is corrupt: {e.Message}", e);
        }
        return total;
    }
}
