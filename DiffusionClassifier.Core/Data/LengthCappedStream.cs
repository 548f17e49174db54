namespace DiffusionClassifier.Data;

/// <summary>
/// A read-only view of an inner stream that ends after at most a given number of bytes and counts what it passed
/// on. It bounds the work spent on a source that may be larger than promised (a hostile gzip stream, say). It does
/// not own the inner stream.
/// </summary>
internal sealed class LengthCappedStream(Stream inner, long cap) : Stream
{
    /// <summary>The bytes passed on so far.</summary>
    public long BytesRead { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

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

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
