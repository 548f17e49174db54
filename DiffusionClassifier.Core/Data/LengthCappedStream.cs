namespace DiffusionClassifier.Data;

/// <summary>
/// A read-only view of an inner stream that ends after at most a given number of bytes and counts what it passed
/// on. It bounds the work spent on a source that may be larger than promised (a hostile gzip stream, say). It does
/// not own the inner stream.
/// </summary>
internal sealed class LengthCappedStream(Stream inner, long cap) : ForwardOnlyReadStream
{
    /// <summary>The bytes passed on so far.</summary>
    public long BytesRead { get; private set; }

    public override int Read(Span<byte> buffer)
    {
        long left = cap - BytesRead;
        if (left <= 0 || buffer.IsEmpty)
            return 0;
        int n = inner.Read(buffer[..(int)Math.Min(buffer.Length, left)]);
        BytesRead += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        long left = cap - BytesRead;
        if (left <= 0 || buffer.IsEmpty)
            return 0;
        int n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, left)], cancellationToken).ConfigureAwait(false);
        BytesRead += n;
        return n;
    }
}
