namespace DiffusionClassifier.Data;

/// <summary>
/// A read-only stream that yields a few already-consumed bytes and then the rest of an inner stream. It lets the
/// idx reader sniff the gzip magic on streams that cannot seek. It does not own the inner stream.
/// </summary>
internal sealed class PrefixedReadStream(byte[] prefix, Stream inner) : ForwardOnlyReadStream
{
    private int prefixPosition;

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
            return 0;
        if (prefixPosition < prefix.Length)
        {
            int n = Math.Min(buffer.Length, prefix.Length - prefixPosition);
            prefix.AsSpan(prefixPosition, n).CopyTo(buffer);
            prefixPosition += n;
            return n;
        }
        return inner.Read(buffer);
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (prefixPosition < prefix.Length || buffer.IsEmpty)
            return ValueTask.FromResult(Read(buffer.Span));
        return inner.ReadAsync(buffer, cancellationToken);
    }
}
