using System.Collections;
using static TorchSharp.torch;

namespace DiffusionClassifier.Serialization;

/// <summary>
/// The tensors of a PyTorch <c>state_dict</c> checkpoint, by key, in the checkpoint's order, on the CPU. Owns the
/// tensors: dispose it (or take tensors out with <c>clone()</c> first). Reading it from several threads is safe;
/// disposing it while others read is not.
/// </summary>
internal sealed class PyTorchStateDict : IReadOnlyDictionary<string, Tensor>, IDisposable
{
    private readonly Dictionary<string, Tensor> tensors;
    private readonly List<string> order;
    private bool disposed;

    internal PyTorchStateDict(List<KeyValuePair<string, Tensor>> items)
    {
        tensors = new Dictionary<string, Tensor>(items.Count, StringComparer.Ordinal);
        order = new List<string>(items.Count);
        foreach (var (k, v) in items)
        {
            tensors.Add(k, v);
            order.Add(k);
        }
    }

    /// <summary>Element type and shape of every entry, for messages and inspection.</summary>
    public IEnumerable<(string Key, ScalarType DType, long[] Shape)> Describe()
    {
        foreach (var k in order) yield return (k, tensors[k].dtype, tensors[k].shape);
    }

    /// <inheritdoc />
    public Tensor this[string key] => Live().tensors[key];

    /// <inheritdoc />
    public IEnumerable<string> Keys => Live().order;

    /// <inheritdoc />
    public IEnumerable<Tensor> Values => Live().order.Select(k => tensors[k]);

    /// <inheritdoc />
    public int Count => order.Count;

    /// <inheritdoc />
    public bool ContainsKey(string key) => Live().tensors.ContainsKey(key);

    /// <inheritdoc />
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out Tensor value) =>
        Live().tensors.TryGetValue(key, out value);

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator()
    {
        foreach (var k in Live().order) yield return new(k, tensors[k]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Disposes all tensors.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var t in tensors.Values) t.Dispose();
    }

    private PyTorchStateDict Live() => disposed ? throw new ObjectDisposedException(nameof(PyTorchStateDict)) : this;
}
