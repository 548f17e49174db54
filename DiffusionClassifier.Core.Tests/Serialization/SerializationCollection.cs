namespace DiffusionClassifier.Tests.Serialization;

/// <summary>
/// The serialization tests parse thousands of damaged files, so they allocate heavily and make the GC run often.
/// They run alone, after the parallel tests. TorchSharp 0.107 has a race with garbage collections on other threads:
/// <c>add</c> / <c>add_</c> without an explicit alpha, and calls with a temporary <c>Scalar</c>, can be finalized in
/// the middle of the native call. The native call then fails with "Expected false to be true" or "Unknown scalar
/// type". This separation keeps that GC pressure away from the other tests' training steps.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerializationCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Serialization (allocation-heavy, runs alone)";
}
