using static TorchSharp.torch;

namespace DiffusionClassifier.Serialization;

/// <summary>Tensors and metadata read from a safetensors file. Owns the tensors: dispose it.</summary>
/// <remarks>Thread safety: reading from several threads is safe; <see cref="Dispose"/> must not race with readers.</remarks>
internal sealed class SafeTensorsContent : IDisposable
{
    internal SafeTensorsContent(Dictionary<string, Tensor> tensors, Dictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The tensors by name, on the CPU.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>The <c>__metadata__</c> entries (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}
