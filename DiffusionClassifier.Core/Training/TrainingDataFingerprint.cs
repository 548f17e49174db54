using System.Runtime.InteropServices;
using System.Security.Cryptography;
using static TorchSharp.torch;

namespace DiffusionClassifier.Training;

/// <summary>
/// A short hash of a training set: its count and the pixels and labels of <see cref="Probes"/> evenly spaced items.
/// A checkpoint stores it so that a resume on other items of the same count (another subset, offset or source) is
/// refused instead of silently training on them; the count alone cannot tell those apart.
/// </summary>
internal static class TrainingDataFingerprint
{
    /// <summary>Items read: enough to tell shifted or other subsets apart, few enough to cost nothing.</summary>
    internal const int Probes = 64;

    /// <summary>The fingerprint of <paramref name="data"/>: 16 hex digits.</summary>
    internal static string Compute(ITrainingData data)
    {
        long n = data.Count;
        int k = (int)Math.Min(n, Probes);
        var indices = new long[k];
        for (int i = 0; i < k; i++)
            indices[i] = k == 1 ? 0 : i * (n - 1) / (k - 1);
        using var scope = NewDisposeScope();
        var (images, labels) = data.GetBatch(indices);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(BitConverter.GetBytes(n));
        hash.AppendData(MemoryMarshal.AsBytes(images.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray().AsSpan()));
        hash.AppendData(MemoryMarshal.AsBytes(labels.to(ScalarType.Int64).cpu().contiguous().data<long>().ToArray().AsSpan()));
        return Convert.ToHexString(hash.GetHashAndReset(), 0, 8).ToLowerInvariant();
    }
}
