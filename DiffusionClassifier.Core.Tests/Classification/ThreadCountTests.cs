using DiffusionClassifier.Classification;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Tests.TestSupport;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Classification;

/// <summary>
/// The suite pins one libtorch thread (<see cref="TestAssemblySetup"/>), but the CLI runs with the machine's thread
/// count: classification must not depend on it beyond float rounding, and must repeat exactly at a given count.
/// </summary>
[Collection(SingleThreadedTorchCollection.Name)]
public sealed class ThreadCountTests(ITestOutputHelper output) : IDisposable
{
    private readonly SingleThreadedTorch threads = new();

    public void Dispose() => threads.Dispose();

    [Fact]
    public void PredictAtTwoThreadsRepeatsAndAgreesWithOneThreadUpToRounding()
    {
        using var model = TinyModels.Loud(TinyModels.Create());
        // Float32: Auto may pick bfloat16, whose rounding is not what this compares. No pruning: a rounding-level tie
        // at a pruning stage could keep another class at the other thread count; this way every class is compared.
        var options = BayesClassifierOptions.Default with { Precision = InferencePrecision.Float32, Pruning = null };
        using var classifier = new BayesClassifier(model, new DdpmScheduler(50), options);
        using var images = rand(new long[] { 4, 1, 8, 8 }, generator: new Generator(8));
        const int N = 12;

        var one = classifier.PredictBatch(images, N);
        IReadOnlyList<ClassPrediction> first, second;
        try
        {
            set_num_threads(2);
            Assert.Equal(2, get_num_threads());
            first = classifier.PredictBatch(images, N);
            second = classifier.PredictBatch(images, N);
        }
        finally
        {
            set_num_threads(1);
        }

        double largest = 0;
        for (int i = 0; i < one.Count; i++)
        {
            // Same thread count: the same partition of the work, so the same bits.
            Assert.Equal(first[i].MeanErrors, second[i].MeanErrors);
            Assert.Equal(first[i].Label, second[i].Label);

            for (int c = 0; c < one[i].MeanErrors.Count; c++)
            {
                double relative = Math.Abs(first[i].MeanErrors[c] / one[i].MeanErrors[c] - 1);
                largest = Math.Max(largest, relative);
                Assert.True(relative < 1e-5, $"image {i} class {c}: {one[i].MeanErrors[c]:R} at 1 thread, {first[i].MeanErrors[c]:R} at 2");
            }
            // The label may differ only if the best two classes are within rounding of each other.
            var sorted = one[i].MeanErrors.Order().ToArray();
            if (sorted[1] - sorted[0] > 1e-4 * sorted[0])
                Assert.Equal(one[i].Label, first[i].Label);
        }
        output.WriteLine($"largest relative difference of a mean error, 2 threads vs 1: {largest:E2}");
    }
}
