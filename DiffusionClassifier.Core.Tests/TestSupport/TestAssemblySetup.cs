using System.Runtime.CompilerServices;
using static TorchSharp.torch;

// TorchSharp 0.107 can finalize a temporary Scalar (e.g. the implicit alpha of `a + b`) in the middle of the native
// call when another thread triggers a garbage collection; the call then fails with "Expected false to be true".
// Test classes therefore run one at a time, so that allocation-heavy tests never overlap another test's tensor math.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace DiffusionClassifier.Tests.TestSupport;

/// <summary>Process-wide settings for the test run.</summary>
internal static class TestAssemblySetup
{
    /// <summary>
    /// One libtorch intra-op thread: the tests use tiny models, whose forwards are dominated by OpenMP
    /// synchronisation, and xunit already runs test classes in parallel. With two threads per forward the suite
    /// slowed several-fold on a loaded 2-core machine.
    /// </summary>
    [ModuleInitializer]
    internal static void Initialise() => set_num_threads(1);
}
