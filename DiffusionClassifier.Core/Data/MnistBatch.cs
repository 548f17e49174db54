using static TorchSharp.torch;

namespace DiffusionClassifier.Data;

/// <summary>
/// One batch drawn from a <see cref="MnistDataset"/>. It owns its two tensors: dispose it (or let an enclosing
/// dispose scope do so) when done.
/// </summary>
/// <remarks>Thread safety: the properties may be read from several threads; <see cref="Dispose"/> must not race with users of the tensors.</remarks>
public sealed class MnistBatch : IDisposable
{
    internal MnistBatch(Tensor images, Tensor labels, long[] indices)
    {
        Images = images;
        Labels = labels;
        Indices = indices;
    }

    /// <summary>The images, float32 [B, 1, H, W] in [0, 1]; owned by this batch.</summary>
    public Tensor Images { get; }

    /// <summary>The labels, int64 [B]; owned by this batch.</summary>
    public Tensor Labels { get; }

    /// <summary>The dataset indices of the items, in batch order.</summary>
    public IReadOnlyList<long> Indices { get; }

    /// <summary>The batch size B.</summary>
    public int Count => Indices.Count;

    /// <summary>Deconstructs into the images and labels (still owned by this batch).</summary>
    /// <param name="images">The images tensor.</param>
    /// <param name="labels">The labels tensor.</param>
    public void Deconstruct(out Tensor images, out Tensor labels)
    {
        images = Images;
        labels = Labels;
    }

    /// <summary>Disposes both tensors.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}
