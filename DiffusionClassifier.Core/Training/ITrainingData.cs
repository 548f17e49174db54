using static TorchSharp.torch;

namespace DiffusionClassifier.Training;

/// <summary>
/// Labelled images a <see cref="DiffusionTrainer"/> can draw batches from. The trainer decides the order (a seeded
/// permutation per epoch); the data source only returns the requested items.
/// </summary>
/// <remarks>Thread safety: <see cref="DiffusionTrainer"/> calls the members from its training thread only, one call at a time; an implementation need not be thread-safe unless it is shared with other users.</remarks>
public interface ITrainingData
{
    /// <summary>Number of items; at least 1.</summary>
    long Count { get; }

    /// <summary>Returns the items at <paramref name="indices"/>, in that order.</summary>
    /// <param name="indices">Item indices, each in [0, <see cref="Count"/>).</param>
    /// <returns>Images float32 [B, C, H, W] with values in [0, 1] and labels int64 [B], B = indices.Length, as new
    /// tensors on any device. The caller owns and disposes them.</returns>
    (Tensor Images, Tensor Labels) GetBatch(long[] indices);

    /// <summary>
    /// Training data over tensors already in memory, after checking their shapes, dtypes and value ranges. It keeps
    /// references to the tensors and does not own them: keep them alive while training and dispose them afterwards.
    /// Its <see cref="GetBatch"/> may be called from several threads at once.
    /// </summary>
    /// <param name="images">float32 [N, C, H, W], values in [0, 1], N &gt;= 1.</param>
    /// <param name="labels">int64 [N], values &gt;= 0.</param>
    /// <exception cref="ArgumentNullException"><paramref name="images"/> or <paramref name="labels"/> is null.</exception>
    /// <exception cref="ArgumentException">A shape, dtype or value is wrong; the message says which.</exception>
    static ITrainingData FromTensors(Tensor images, Tensor labels) => new TensorTrainingData(images, labels);
}
