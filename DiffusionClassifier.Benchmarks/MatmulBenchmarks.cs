using BenchmarkDotNet.Attributes;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// The arithmetic ceiling: a float32 n x n matrix product through libtorch, to read the network's GFLOP/s against.
/// </summary>
[Config(typeof(ThroughputConfig))]
public class MatmulBenchmarks : IWorkloadBenchmark
{
    private Tensor? a, b;

    /// <summary>Matrix size.</summary>
    [Params(2048)]
    public int Size { get; set; } = 2048;

    /// <summary>Allocates the operands.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchmarkEnvironment.Initialize();
        long n = BenchmarkEnvironment.Smoke ? 64 : Size;
        using var gen = new Generator(3);
        a = randn(new[] { n, n }, generator: gen).to(BenchmarkEnvironment.Device);
        b = randn(new[] { n, n }, generator: gen).to(BenchmarkEnvironment.Device);
        a.DetachFromDisposeScope(); b.DetachFromDisposeScope();
    }

    /// <summary>One product.</summary>
    [Benchmark]
    public void Matmul()
    {
        using var mode = inference_mode();
        using var product = a!.mm(b!);
        BenchmarkEnvironment.Synchronize();
    }

    /// <summary>Releases the operands.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        a?.Dispose(); b?.Dispose();
        a = b = null;
    }

    /// <inheritdoc />
    public Workload Describe(string benchmarkMethod) => new(0, 0, FlopCounter.Matmul(BenchmarkEnvironment.Smoke ? 64 : Size));
}
