using DiffusionClassifier.Guards;
using static TorchSharp.torch;

namespace DiffusionClassifier.Modules;

/// <summary>
/// The label-independent activations of a <see cref="ConditionalUNet"/> for a batch of noisy images: the output of
/// <c>init_conv</c> (<see cref="H"/>), <c>down1</c> (<see cref="D1"/>), <c>down2</c> (<see cref="D2"/>) and <c>up0</c>
/// (<see cref="U1"/>). Compute it once with <see cref="ConditionalUNet.Trunk"/> and run
/// <see cref="ConditionalUNet.Head"/> for as many labels as needed.
/// </summary>
/// <remarks>Owns its four tensors; disposing it disposes them. Not thread-safe.</remarks>
internal sealed class UNetTrunk : IDisposable
{
    /// <summary>Creates a trunk from its four activations; it takes ownership of them.</summary>
    /// <param name="h">Output of <c>init_conv</c>, [B, F, H, W].</param>
    /// <param name="d1">Output of <c>down1</c>, [B, F, H/2, W/2].</param>
    /// <param name="d2">Output of <c>down2</c>, [B, 2F, H/4, W/4].</param>
    /// <param name="u1">Output of <c>up0</c>, [B, 2F, H/4, W/4].</param>
    /// <exception cref="ArgumentException">The four tensors do not share one batch size.</exception>
    public UNetTrunk(Tensor h, Tensor d1, Tensor d2, Tensor u1)
    {
        ArgumentNullException.ThrowIfNull(h);
        ArgumentNullException.ThrowIfNull(d1);
        ArgumentNullException.ThrowIfNull(d2);
        ArgumentNullException.ThrowIfNull(u1);
        foreach (var (t, name) in new[] { (h, nameof(h)), (d1, nameof(d1)), (d2, nameof(d2)), (u1, nameof(u1)) })
        {
            TensorGuard.Shape(t, name, [h.dim() > 0 ? h.shape[0] : 0, -1, -1, -1]);
        }
        H = h; D1 = d1; D2 = d2; U1 = u1;
    }

    /// <summary>Output of <c>init_conv</c>.</summary>
    public Tensor H { get; }
    /// <summary>Output of <c>down1</c>.</summary>
    public Tensor D1 { get; }
    /// <summary>Output of <c>down2</c>.</summary>
    public Tensor D2 { get; }
    /// <summary>Output of <c>up0</c>.</summary>
    public Tensor U1 { get; }

    /// <summary>The four tensors in the constructor's order: <see cref="H"/>, <see cref="D1"/>, <see cref="D2"/>, <see cref="U1"/>.</summary>
    public IReadOnlyList<Tensor> Tensors => [H, D1, D2, U1];

    /// <summary>Batch size.</summary>
    public long BatchSize => H.shape[0];

    /// <summary>
    /// A new trunk whose rows are the rows of this one picked by <paramref name="index"/> (an int64 vector), e.g.
    /// each image repeated once per candidate label. The caller owns the result.
    /// </summary>
    /// <param name="index">Row indices into this batch, int64 [N], each in [0, <see cref="BatchSize"/>).</param>
    /// <exception cref="ArgumentException"><paramref name="index"/> is not an int64 vector.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An index lies outside the batch.</exception>
    public UNetTrunk Select(Tensor index)
    {
        ArgumentNullException.ThrowIfNull(index);
        TensorGuard.Shape(index, nameof(index), [-1]);
        TensorGuard.DType(index, nameof(index), ScalarType.Int64);
        if (index.numel() > 0)
        {
            long min = index.min().item<long>(), max = index.max().item<long>();
            if (min < 0 || max >= BatchSize)
                throw new ArgumentOutOfRangeException(nameof(index), min < 0 ? min : max,
                    $"Row indices must lie in [0, {BatchSize}); got values from {min} to {max}.");
        }
        bool elsewhere = index.device_type != H.device_type || index.device_index != H.device_index;
        using var moved = elsewhere ? index.to(H.device) : null;
        var i = moved ?? index;
        using var scope = NewDisposeScope();
        return new UNetTrunk(H.index_select(0, i), D1.index_select(0, i), D2.index_select(0, i), U1.index_select(0, i))
            .MoveToOuterDisposeScope();
    }

    /// <summary>Each row repeated <paramref name="times"/> times in place (row i becomes rows i*times..i*times+times-1).</summary>
    /// <param name="times">Repetitions of each row, at least 1.</param>
    /// <returns>A new trunk of batch <c>BatchSize * times</c>. The caller owns it.</returns>
    public UNetTrunk RepeatInterleave(long times)
    {
        if (times < 1)
            throw new ArgumentOutOfRangeException(nameof(times), times, "times must be at least 1.");
        return new(H.repeat_interleave(times, 0), D1.repeat_interleave(times, 0), D2.repeat_interleave(times, 0), U1.repeat_interleave(times, 0));
    }

    /// <summary>Moves the four tensors to the enclosing dispose scope (see TorchSharp's dispose scopes).</summary>
    public UNetTrunk MoveToOuterDisposeScope()
    {
        H.MoveToOuterDisposeScope(); D1.MoveToOuterDisposeScope(); D2.MoveToOuterDisposeScope(); U1.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Detaches the four tensors from every dispose scope; the caller then disposes this object.</summary>
    public UNetTrunk DetachFromDisposeScope()
    {
        H.DetachFromDisposeScope(); D1.DetachFromDisposeScope(); D2.DetachFromDisposeScope(); U1.DetachFromDisposeScope();
        return this;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        H.Dispose(); D1.Dispose(); D2.Dispose(); U1.Dispose();
    }
}
