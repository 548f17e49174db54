using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.TestSupport;

/// <summary>
/// Test classes in this collection run alone (not in parallel with other classes) with one libtorch intra-op thread.
/// Tiny-model forwards are dominated by OpenMP synchronisation: on the shared 2-core machine under load, two
/// threads made a 12-step sampling run of 10 8x8 images take 10-14 s instead of 0.2-0.4 s with one thread.
/// <c>set_num_threads</c> is process-wide, hence the exclusive collection.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SingleThreadedTorchCollection
{
    /// <summary>The collection name for <c>[Collection(...)]</c>.</summary>
    public const string Name = "Single-threaded torch";
}

/// <summary>Sets one intra-op thread for its lifetime and restores the previous count (use in a test class of
/// <see cref="SingleThreadedTorchCollection"/>).</summary>
internal sealed class SingleThreadedTorch : IDisposable
{
    private readonly int previous = get_num_threads();

    public SingleThreadedTorch() => set_num_threads(1);

    public void Dispose() => set_num_threads(previous);
}
