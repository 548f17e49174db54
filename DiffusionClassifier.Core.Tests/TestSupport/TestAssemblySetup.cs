using System.Runtime.CompilerServices;
using static TorchSharp.torch;

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
