using DiffusionClassifier.Cli.Evaluation;

namespace DiffusionClassifier.Tests.Cli;

public class CalibrationMetricsTests
{
    /// <summary>Items with scores drawn so that the true class is usually, not always, the lowest.</summary>
    private static List<(double[] Scores, int Label)> Items(int count, int seed)
    {
        var random = new Random(seed);
        var items = new List<(double[], int)>();
        for (int i = 0; i < count; i++)
        {
            int label = random.Next(10);
            var scores = Enumerable.Range(0, 10).Select(c => 100 + 3 * random.NextDouble() - (c == label ? 2.5 : 0)).ToArray();
            items.Add((scores, label));
        }
        return items;
    }

    /// <summary>-mean log p(label) from explicitly normalised probabilities (no log-sum-exp shortcut).</summary>
    private static double DirectNll(List<(double[] Scores, int Label)> items, double t) =>
        items.Average(item =>
        {
            var e = item.Scores.Select(s => Math.Exp(-(s - item.Scores.Min()) / t)).ToArray();
            return -Math.Log(e[item.Label] / e.Sum());
        });

    [Fact]
    public void TheNegativeLogLikelihoodMatchesADirectComputation()
    {
        var items = Items(200, 1);
        foreach (double t in new[] { 0.3, 1.0, 4.0 })
            Assert.Equal(DirectNll(items, t), CalibrationMetrics.NegativeLogLikelihood(items, t), 1e-10);
    }

    [Fact]
    public void TheFittedTemperatureIsTheLikelihoodMinimumOfAFineGrid()
    {
        var items = Items(500, 2);
        double fitted = CalibrationMetrics.FitTemperature(items);
        var grid = Enumerable.Range(0, 4001).Select(i => Math.Exp(-4 + 8.0 * i / 4000)).ToArray();
        double best = grid.MinBy(t => DirectNll(items, t));
        Assert.InRange(fitted / best, 0.998, 1.002);
        Assert.True(DirectNll(items, fitted) <= DirectNll(items, best) + 1e-9);
    }

    [Fact]
    public void TheExpectedCalibrationErrorWeighsEachBinsGap()
    {
        // Bin (0.6, 0.667]: confidences 0.62 and 0.64, one right: |0.5 - 0.63| = 0.13 on 2 of 4 items.
        // Bin (0.933, 1]: 0.95 and 1.0, both right: |1 - 0.975| = 0.025 on 2 of 4 items.
        (double, bool)[] outcomes = [(0.62, true), (0.64, false), (0.95, true), (1.0, true)];
        Assert.Equal((2 * 0.13 + 2 * 0.025) / 4, CalibrationMetrics.ExpectedCalibrationError(outcomes), 1e-12);
        var bins = CalibrationMetrics.Bins(outcomes);
        Assert.Equal(15, bins.Length);
        Assert.Equal(2, bins[9].Count);
        Assert.Equal(2, bins[14].Count);
        Assert.Equal(0.5, bins[9].Accuracy);
        Assert.Equal(1.0 / 15 * 9, bins[9].Lower, 1e-12);
    }

    [Fact]
    public void TopOneGivesThePredictedClassAndItsProbability()
    {
        var outcome = CalibrationMetrics.TopOne([([3.0, 1.0, 2.0], 1, 1), ([3.0, 1.0, 2.0], 2, 1)], 1);
        double expected = 1 / (1 + Math.Exp(-1) + Math.Exp(-2));
        Assert.Equal(expected, outcome[0].Confidence, 1e-12);
        Assert.True(outcome[0].Correct);
        Assert.False(outcome[1].Correct);
        Assert.Equal(expected, outcome[1].Confidence, 1e-12);
    }

    [Fact]
    public void TopOneKeepsTheClassifiersLabelOnATie()
    {
        // Class 3 was pruned with a score equal to the label's (7): an argmax of the scores would pick class 3 and
        // count a right prediction wrong. Items 294 and 368 of the validation split had this pattern in a cache.
        double[] scores = [9.0, 8.0, 9.5, 7.0, 10.0, 10.0, 10.0, 7.0, 11.0, 12.0];
        var outcome = CalibrationMetrics.TopOne([(scores, 7, 7)], 2);
        double sum = scores.Sum(s => Math.Exp((7.0 - s) / 2));
        Assert.True(outcome[0].Correct);
        Assert.Equal(1 / sum, outcome[0].Confidence, 1e-12);
        Assert.Throws<ArgumentException>(() => CalibrationMetrics.TopOne([(scores, 7, 10)], 1));
    }

    [Fact]
    public void FittingRefusesNoItemsAndLabelsOutsideTheScores()
    {
        Assert.Throws<ArgumentException>(() => CalibrationMetrics.FitTemperature([]));
        Assert.Throws<ArgumentException>(() => CalibrationMetrics.FitTemperature([([1.0, 2.0], 2)]));
    }
}
