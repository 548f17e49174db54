using DiffusionClassifier.Cli.Evaluation;

namespace DiffusionClassifier.Tests.Cli;

public class EvaluationSummaryTests
{
    private static (ImageResult, bool) Result(int index, int label, int predicted, double seconds, bool cached = false) =>
        (new ImageResult("k", index, 20, label, predicted, 0.9, 78, 55.8, seconds), cached);

    [Fact]
    public void TotalsAccuracyAndTheMedianTimeAreComputedFromTheResults()
    {
        // One paused batch (100 s) moves the mean time per image, not the median.
        var summary = EvaluationSummary.From(20, 3, [Result(0, 1, 1, 3), Result(1, 2, 0, 1, cached: true), Result(2, 0, 0, 2), Result(3, 1, 1, 100)]);
        Assert.Equal(4, summary.Images);
        Assert.Equal(3, summary.Correct);
        Assert.Equal(0.75, summary.Accuracy);
        Assert.Equal(106, summary.Seconds);
        Assert.Equal(2.5, summary.MedianSecondsPerImage);
        Assert.Equal(78, summary.EvaluationsPerImage);
        Assert.Equal(1, summary.Cached);
        Assert.Equal(3, summary.Computed);
        Assert.Equal(1, summary.Confusion[2][0]);
        Assert.Equal(2.0, EvaluationSummary.From(20, 3, [Result(0, 1, 1, 3), Result(1, 2, 0, 1), Result(2, 0, 0, 2)]).MedianSecondsPerImage);
    }
}
