using DiffusionClassifier.Guards;
using static TorchSharp.torch;

namespace DiffusionClassifier.Training;

/// <summary>
/// <see cref="ITrainingData"/> over tensors already in memory (<see cref="ITrainingData.FromTensors"/>): images float32 [N, C, H, W] in [0, 1] and labels
/// int64 [N]. It keeps references to the tensors and does not own them: the caller keeps them alive while training
/// and disposes them afterwards. Safe for concurrent reads.
/// </summary>
/// <remarks>Thread safety: <see cref="GetBatch"/> may be called from several threads at once (it only reads the tensors); disposing the tensors must not race with it.</remarks>
internal sealed class TensorTrainingData : ITrainingData
{
    private readonly Tensor images;
    private readonly Tensor labels;

    /// <summary>Wraps the tensors after checking shapes, dtypes and value ranges.</summary>
    /// <param name="images">float32 [N, C, H, W], values in [0, 1], N &gt;= 1.</param>
    /// <param name="labels">int64 [N], values &gt;= 0.</param>
    /// <exception cref="ArgumentException">A shape, dtype or value is wrong; the message says which.</exception>
    public TensorTrainingData(Tensor images, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        TensorGuard.Shape(images, nameof(images), [-1, -1, -1, -1]);
        if (images.shape[0] < 1)
            throw TensorGuard.Mismatch(nameof(images), "at least one image", "an empty batch");
        TensorGuard.DType(images, nameof(images), ScalarType.Float32);
        TensorGuard.Shape(labels, nameof(labels), [images.shape[0]]);
        TensorGuard.DType(labels, nameof(labels), ScalarType.Int64);
        TensorGuard.UnitRange(images, nameof(images));
        using (var scope = NewDisposeScope())
        {
            long minLabel = labels.min().item<long>();
            if (minLabel < 0)
                throw new ArgumentException($"Labels must not be negative but the smallest is {minLabel}.", nameof(labels));
        }
        this.images = images;
        this.labels = labels;
    }

    /// <inheritdoc />
    public long Count => images.shape[0];

    /// <inheritdoc />
    public (Tensor Images, Tensor Labels) GetBatch(long[] indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        long n = Count;
        foreach (var i in indices)
            if (i < 0 || i >= n)
                throw new ArgumentOutOfRangeException(nameof(indices), i, $"Index {i} is outside [0, {n}).");
        using var scope = NewDisposeScope();
        var idx = tensor(indices, ScalarType.Int64, images.device);
        var x = images.index_select(0, idx);
        var y = labels.index_select(0, idx.to(labels.device));
        return (x.MoveToOuterDisposeScope(), y.MoveToOuterDisposeScope());
    }
}
