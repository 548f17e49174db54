using System.Numerics;
using DiffusionClassifier.Cli.Evaluation;

namespace DiffusionClassifier.Tests.Cli;

public class RunComparisonTests
{
    private static ImageResult Result(int index, bool correct, double seconds = 1, long evaluations = 78) =>
        new("k", index, 20, index % 10, correct ? index % 10 : (index + 1) % 10, 0.9, evaluations, evaluations * 0.7, seconds);

    [Theory]
    [InlineData(0, 0, 1.0)]
    [InlineData(0, 5, 0.0625)]           // 2 (1/2)^5
    [InlineData(9, 1, 0.021484375)]      // 2 (1 + 10) / 1024
    [InlineData(1, 9, 0.021484375)]
    [InlineData(3, 3, 1.0)]              // 2 (42/64) > 1
    public void McNemarMatchesSmallCasesByHand(int b, int c, double expected) =>
        Assert.Equal(expected, RunComparison.McNemarExactP(b, c), 12);

    [Theory]
    [InlineData(1000, 1100)]
    [InlineData(40, 70)]
    [InlineData(700, 500)]
    public void McNemarMatchesAnExactBigIntegerSum(int b, int c)
    {
        int n = b + c, k = Math.Min(b, c);
        BigInteger tail = 0, binomial = 1;
        for (int i = 0; i <= k; i++)
        {
            tail += binomial;
            binomial = binomial * (n - i) / (i + 1);
        }
        // 2 tail / 2^n with 30 significant digits kept.
        var scale = BigInteger.Pow(10, 30);
        double expected = Math.Min(1, (double)(2 * tail * scale / BigInteger.Pow(2, n)) / 1e30);

        Assert.Equal(expected, RunComparison.McNemarExactP(b, c), 1e-12 * Math.Max(expected, 1e-300));
    }

    [Fact]
    public void McNemarDoesNotUnderflowToNaNAndRefusesNegativeCounts()
    {
        double p = RunComparison.McNemarExactP(0, 5000);
        Assert.True(p >= 0 && p < 1e-300, $"{p}");
        Assert.Throws<ArgumentOutOfRangeException>(() => RunComparison.McNemarExactP(-1, 3));
    }

    [Fact]
    public void ComparesOnTheCommonItemsOnly()
    {
        // Baseline: items 0..9, right on 0..7. Run: items 0..11, right on 0..5 and 8..11, slower.
        var baseline = Enumerable.Range(0, 10).Select(i => Result(i, i < 8)).ToList();
        var run = Enumerable.Range(0, 12).Select(i => Result(i, i is < 6 or >= 8, seconds: i, evaluations: 200)).ToList();

        var c = RunComparison.Compare("run", baseline, run);

        Assert.Equal(10, c.Items);
        Assert.Equal(8, c.Correct);
        Assert.Equal(8, c.BaselineCorrect);
        Assert.Equal(2, c.OnlyThisCorrect);          // 8, 9
        Assert.Equal(2, c.OnlyBaselineCorrect);      // 6, 7
        Assert.Equal(6, c.SameLabel);
        Assert.Equal(1.0, c.McNemarP);
        Assert.Equal(200, c.EvaluationsPerImage);
        Assert.Equal(4.5, c.MedianSecondsPerImage);  // items 0..9, not 10 and 11
        Assert.Equal(0.8, c.Accuracy);

        var self = RunComparison.Compare("baseline", baseline, baseline);
        Assert.Equal((10, 0, 0, 10, 1.0), (self.Items, self.OnlyThisCorrect, self.OnlyBaselineCorrect, self.SameLabel, self.McNemarP));
        Assert.Equal(0, RunComparison.Compare("none", baseline, [Result(50, true)]).Items);
    }

    [Fact]
    public void RefusesRunsOnDifferentData()
    {
        var baseline = new[] { Result(0, true) };
        var other = new[] { Result(0, true) with { Label = 3, Predicted = 3 } };

        var e = Assert.Throws<ArgumentException>(() => RunComparison.Compare("other", baseline, other));
        Assert.Contains("item 0", e.Message);
    }
}
