using DiffusionClassifier.Classification;
using static DiffusionClassifier.Tests.Classification.PruningBoundaries;

namespace DiffusionClassifier.Tests.Classification;

public class StagedEvaluationTests
{
    /// <summary>Errors from a fixed matrix [image][sample][class]; checks the chunking contract on every call.</summary>
    private sealed class MatrixEvaluator(double[][][] errors, int chunkSize) : ISampleErrorEvaluator
    {
        public List<(int Image, int Sample, int Class)> Seen { get; } = new();

        public void Evaluate(IReadOnlyList<SampleRequest> requests, double[][] result)
        {
            int rows = requests.Sum(r => r.Classes.Length);
            Assert.True(requests.Count == 1 || rows <= chunkSize, $"chunk of {rows} rows exceeds {chunkSize}");
            for (int r = 0; r < requests.Count; r++)
                for (int k = 0; k < requests[r].Classes.Length; k++)
                {
                    int c = requests[r].Classes[k];
                    Seen.Add((requests[r].Image, requests[r].Sample, c));
                    result[r][k] = errors[requests[r].Image][requests[r].Sample][c];
                }
        }
    }

    private static double[][][] Matrix(int images, int samples, int classes, Func<int, int, int, double> f) =>
        Enumerable.Range(0, images).Select(i => Enumerable.Range(0, samples).Select(j =>
            Enumerable.Range(0, classes).Select(c => f(i, j, c)).ToArray()).ToArray()).ToArray();

    [Fact]
    public void PruningNeverDropsTheTrueClassWhenErrorsAreSeparated()
    {
        var rng = new Random(7);
        for (int trial = 0; trial < 300; trial++)
        {
            int classes = rng.Next(2, 12), n = rng.Next(1, 60), images = rng.Next(1, 5);
            var trueClass = Enumerable.Range(0, images).Select(_ => rng.Next(classes)).ToArray();
            // Per-sample noise in [0, 1) around class means at least 1 apart (the true class lowest) and a common
            // per-sample offset of up to +-50: the paired comparison must cancel it.
            var offsets = Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 100 - 50).ToArray();
            var means = Enumerable.Range(0, images).Select(i => Enumerable.Range(0, classes)
                .Select(c => c == trueClass[i] ? 10.0 : 11.0 + rng.NextDouble() * 5).ToArray()).ToArray();
            var errors = Matrix(images, n, classes, (i, j, c) => means[i][c] + offsets[j] + rng.NextDouble());
            int k1 = rng.Next(1, classes + 1), k2 = rng.Next(1, k1 + 1);
            var schedule = k2 < k1
                ? new PruningSchedule(new PruningStage(0.1 + 0.3 * rng.NextDouble(), k1), new PruningStage(0.5 + 0.4 * rng.NextDouble(), k2))
                : new PruningSchedule(new PruningStage(0.1 + 0.8 * rng.NextDouble(), k1));
            int chunk = rng.Next(1, 64);
            var tallies = StagedEvaluation.Run(images, n, classes, schedule.ResolveBoundaries(n), chunk, new MatrixEvaluator(errors, chunk), CancellationToken.None);
            for (int i = 0; i < images; i++)
            {
                var p = ClassPrediction.FromTally(tallies[i], n, BayesClassifierOptions.Default, PixelConfig(1), 1);
                Assert.Equal(trueClass[i], p.Label);
                Assert.DoesNotContain(trueClass[i], p.PrunedClasses);
                Assert.Equal(trueClass[i], Array.IndexOf(p.Probabilities.ToArray(), p.Probabilities.Max()));
            }
        }
    }

    [Fact]
    public void PruningKeepsTheBestMeansAndSpendsTheRestOnlyOnSurvivors()
    {
        // 10 classes, n = 50, stage (10, keep 2): classes 3 and 7 are best on the first 10 samples.
        int n = 50, classes = 10;
        var errors = Matrix(1, n, classes, (_, j, c) => c == 3 ? 1.0 : c == 7 ? (j < 10 ? 1.5 : 0.5) : 2.0 + c);
        var evaluator = new MatrixEvaluator(errors, 32);
        var t = StagedEvaluation.Run(1, n, classes, Boundaries((10, 2)), 32, evaluator, CancellationToken.None)[0];
        Assert.Equal(Enumerable.Range(0, classes).Select(c => c is 3 or 7 ? 50 : 10), t.Counts);
        Assert.Equal(Enumerable.Range(0, classes).Select(c => c is not (3 or 7)), t.Pruned);
        Assert.Equal(50, t.SamplesEvaluated);
        Assert.Equal(180, evaluator.Seen.Count);
        Assert.Equal(180, evaluator.Seen.Distinct().Count()); // no (sample, class) pair twice
        Assert.Equal(1.0 * 50, t.ErrorSums[3], 12);
        Assert.Equal(1.5 * 10 + 0.5 * 40, t.ErrorSums[7], 12);
        Assert.Equal(4.0 * 10, t.ErrorSums[2], 12);
        var p = ClassPrediction.FromTally(t, n, BayesClassifierOptions.Default, PixelConfig(4), 1);
        Assert.Equal(7, p.Label); // 35/50 = 0.7 < 1.0
        Assert.Equal(new[] { 0, 1, 2, 4, 5, 6, 8, 9 }, p.PrunedClasses);
        Assert.Equal(0.7 / 4, p.MeanErrors[7], 12);
        Assert.Equal(180, p.NetworkEvaluations);
        // Survivors: summed error per sample. Pruned: paired difference to the label on the first 10 samples + the label's score.
        Assert.Equal(0.7, p.Scores[7], 12);
        Assert.Equal(1.0, p.Scores[3], 12);
        Assert.Equal((4.0 * 10 - 1.5 * 10) / 10 + 0.7, p.Scores[2], 12);
        var expected = p.Scores.Select(x => Math.Exp(-x)).ToArray();
        for (int c = 0; c < classes; c++)
            Assert.Equal(expected[c] / expected.Sum(), p.Probabilities[c], 12);
    }

    [Fact]
    public void AMarginPrunesByTheMeanLogRatioToTheLeader()
    {
        // Sample 0 has large errors (low t), sample 1 small ones (high t). By error sums class 1 is closer to the
        // leader (11.5 / 10.1) than class 2 (12.12 / 10.1), but its errors are 10 times the leader's at sample 1.
        int n = 10, classes = 4;
        double[][] firstTwo =
        {
            new[] { 10.0, 10.5, 12.0, 30.0 },
            new[] { 0.1, 1.0, 0.12, 0.3 },
        };
        var errors = Matrix(1, n, classes, (_, j, c) => j < 2 ? firstTwo[j][c] : 1.0 + c);
        const double margin = 0.5;
        // The rule, computed here independently: mean over the 2 samples of ln(e_c / e_0).
        var logRatio = Enumerable.Range(0, classes).Select(c => (Math.Log(firstTwo[0][c] / firstTwo[0][0]) + Math.Log(firstTwo[1][c] / firstTwo[1][0])) / 2).ToArray();
        Assert.True(logRatio[1] > margin && logRatio[2] < margin && logRatio[3] > margin);
        var stages = new[] { new PruningBoundary(2, classes, margin) };
        var t = StagedEvaluation.Run(1, n, classes, stages, 32, new MatrixEvaluator(errors, 32), CancellationToken.None)[0];
        Assert.Equal(new[] { 10, 2, 10, 2 }, t.Counts);
        Assert.Equal(new[] { -1, 0, -1, 0 }, t.PrunedAfterStage);
        for (int c = 0; c < classes; c++)
            Assert.Equal(Enumerable.Range(0, t.Counts[c]).Sum(j => Math.Log(errors[0][j][c])), t.LogSums[c], 12);

        // Class 1's error sum on the shared samples (11.5) is below class 2's (12.12), and class 2 wins on the later
        // samples: the pruned class must still not outrank the label.
        var later = Matrix(1, n, classes, (_, j, c) => j < 2 ? firstTwo[j][c] : c == 2 ? 0.5 : 2.0 + c);
        var won = StagedEvaluation.Run(1, n, classes, stages, 32, new MatrixEvaluator(later, 32), CancellationToken.None)[0];
        var p = ClassPrediction.FromTally(won, n, BayesClassifierOptions.Default, PixelConfig(4), 1);
        Assert.Equal(2, p.Label);
        Assert.Equal(new[] { 1, 3 }, p.PrunedClasses);
        Assert.Equal(p.Scores[2], p.Scores[1], 12); // the paired difference, -0.31, floored at 0
        Assert.Equal((30.0 + 0.3 - 12.12) / 2 + p.Scores[2], p.Scores[3], 12);
        Assert.All(p.Probabilities, q => Assert.True(q <= p.Probabilities[2]));
        Assert.Equal(2, p.TopK(1)[0].Label); // the tie with class 1 goes to the label
        Assert.Equal(new[] { 2, 1 }, p.TopK(2).Select(x => x.Label));

        // A NaN loss makes every log ratio NaN: the leader must still survive, so the prediction has a label.
        var nan = Matrix(1, n, classes, (_, j, c) => j == 0 && c == 3 ? double.NaN : j < 2 ? firstTwo[j][c] : 1.0 + c);
        var withNaN = StagedEvaluation.Run(1, n, classes, stages, 32, new MatrixEvaluator(nan, 32), CancellationToken.None)[0];
        Assert.Contains(-1, withNaN.PrunedAfterStage);

        // The keep still caps the survivors, and a margin of 0 keeps only classes at least as good as the leader in log
        // terms: here the leader alone, which then needs no further samples.
        var capped = StagedEvaluation.Run(1, n, classes, new[] { new PruningBoundary(2, 1, 100.0) }, 32, new MatrixEvaluator(errors, 32), CancellationToken.None)[0];
        var zero = StagedEvaluation.Run(1, n, classes, new[] { new PruningBoundary(2, classes, 0.0) }, 32, new MatrixEvaluator(errors, 32), CancellationToken.None)[0];
        foreach (var alone in new[] { capped, zero })
        {
            Assert.Equal(StopReason.OneSurvivor, alone.Stop);
            Assert.Equal(new[] { 2, 2, 2, 2 }, alone.Counts);
            Assert.Equal(new[] { -1, 0, 0, 0 }, alone.PrunedAfterStage);
        }
    }

    [Fact]
    public void AClassLeftAloneGetsNoFurtherSamples()
    {
        int n = 50, classes = 10;
        var errors = Matrix(2, n, classes, (i, j, c) => c == i ? 0.0 : 1.0 + c);
        var evaluator = new MatrixEvaluator(errors, 7);
        var tallies = StagedEvaluation.Run(2, n, classes, Boundaries((10, 2), (30, 1)), 7, evaluator, CancellationToken.None);
        foreach (var t in tallies)
        {
            Assert.Equal(10 * 10 + 20 * 2, t.Counts.Sum());
            Assert.Equal(30, t.SamplesEvaluated);
        }
        Assert.Equal(30, tallies[0].Counts[0]);
        Assert.Equal(30, tallies[0].Counts[1]);
        Assert.Equal(280, evaluator.Seen.Count);
    }

    [Fact]
    public void SamplesAreRequestedInOrderPerImageAndNeverSplitAcrossChunks()
    {
        int n = 13, classes = 10;
        var evaluator = new MatrixEvaluator(Matrix(3, n, classes, (i, j, c) => (i * 31 + j * 7 + c * 3) % 11), 25);
        StagedEvaluation.Run(3, n, classes, Boundaries((4, 6), (9, 2)), 25, evaluator, CancellationToken.None);
        foreach (var group in evaluator.Seen.GroupBy(s => s.Image))
        {
            var samples = group.Select(s => s.Sample).ToArray();
            Assert.Equal(samples.Order(), samples);
        }
    }

    [Fact]
    public void CancellationStopsTheLoop()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var evaluator = new MatrixEvaluator(Matrix(1, 5, 3, (_, _, _) => 1), 8);
        Assert.Throws<OperationCanceledException>(() => StagedEvaluation.Run(1, 5, 3, Array.Empty<PruningBoundary>(), 8, evaluator, cts.Token));
    }

    /// <summary>An architecture whose images have <paramref name="pixels"/> values (FromTally's mean errors divide by it).</summary>
    private static DiffusionClassifier.Modules.ConditionalUNetConfig PixelConfig(int pixels) => new(1, 16, 10, 1, pixels);
}
