using DiffusionClassifier.Classification;
using static DiffusionClassifier.Tests.Classification.PruningBoundaries;

namespace DiffusionClassifier.Tests.Classification;

public class EarlyExitTests
{
    /// <summary>Errors from a fixed matrix [image][sample][class].</summary>
    private sealed class MatrixEvaluator(double[][][] errors) : ISampleErrorEvaluator
    {
        public int Rows { get; private set; }

        public void Evaluate(IReadOnlyList<SampleRequest> requests, double[][] result)
        {
            for (int r = 0; r < requests.Count; r++)
                for (int k = 0; k < requests[r].Classes.Length; k++)
                {
                    result[r][k] = errors[requests[r].Image][requests[r].Sample][requests[r].Classes[k]];
                    Rows++;
                }
        }
    }

    private static double[][][] Matrix(int images, int samples, int classes, Func<int, int, int, double> f) =>
        Enumerable.Range(0, images).Select(i => Enumerable.Range(0, samples).Select(j =>
            Enumerable.Range(0, classes).Select(c => f(i, j, c)).ToArray()).ToArray()).ToArray();

    [Fact]
    public void LooksGrowGeometricallyBelowN()
    {
        var exit = new EarlyExit();
        Assert.Equal(new[] { 4, 6, 9, 14 }, exit.Looks(20));
        Assert.Equal(new[] { 4, 6, 9, 14, 21, 32, 48, 72 }, exit.Looks(100));
        Assert.Empty(exit.Looks(4));
        Assert.Equal(new[] { 2, 3, 4 }, (exit with { FirstLook = 2, LookGrowth = 1 }).Looks(5));
    }

    [Fact]
    public void TheDefaultEstimatorHasTheExitAndTheReferenceHasNone()
    {
        // Chosen on the validation split (docs/early-exit.md): error rate 0.05, looks from 4 growing 1.5x.
        Assert.Equal(new EarlyExit { ErrorRate = 0.05, FirstLook = 4, LookGrowth = 1.5 }, BayesClassifierOptions.Default.EarlyExit);
        Assert.Null(BayesClassifierOptions.Reference.EarlyExit);
    }

    [Theory]
    [InlineData("0.05", 0.05, 4, 1.5)]
    [InlineData(" 0.01:6 ", 0.01, 6, 1.5)]
    [InlineData("0.2:2:1", 0.2, 2, 1.0)]
    public void ParseReadsWhatToSpecWrites(string text, double rate, int first, double growth)
    {
        var exit = EarlyExit.Parse(text);
        Assert.Equal(new EarlyExit { ErrorRate = rate, FirstLook = first, LookGrowth = growth }, exit);
        Assert.Equal(exit, EarlyExit.Parse(exit.ToSpec()));
    }

    [Fact]
    public void ParseRejectsBadTextWithTheSetting()
    {
        Assert.Contains("'often' is not 'rate[:first[:growth]]'", Assert.Throws<FormatException>(() => EarlyExit.Parse("often")).Message);
        Assert.Throws<FormatException>(() => EarlyExit.Parse("0.01:4:1.5:2"));
        Assert.Throws<FormatException>(() => EarlyExit.Parse(EarlyExit.None));
        Assert.Equal("ErrorRate", Assert.Throws<ArgumentOutOfRangeException>(() => EarlyExit.Parse("0.7")).ParamName);
        Assert.Equal("FirstLook", Assert.Throws<ArgumentOutOfRangeException>(() => EarlyExit.Parse("0.01:1")).ParamName);
    }

    [Fact]
    public void TheCriticalValueIsABonferroniBoundOverTheComparisons() =>
        // 1 - 0.05 / 36 (the default error rate), 5 degrees of freedom.
        Assert.Equal(StudentT.Quantile(1 - 0.05 / 36, 5), new EarlyExit().CriticalValue(6, 36), 12);

    [Fact]
    public void TheComparisonsCountTheRivalsLeftAtEachLook()
    {
        // n = 20, looks 4, 6, 9, 14; no pruning: 4 looks x 9 rivals.
        var looks = new EarlyExit().Looks(20);
        Assert.Equal(36, EarlyExit.Comparisons(looks, Array.Empty<PruningBoundary>(), 10));
        // Default pruning at n = 20 (after 4 keep 3, after 10 keep 2): the look at 4 sees 2 rivals (pruning at the
        // same boundary runs first), 6 and 9 see 2, 14 sees 1.
        Assert.Equal(2 + 2 + 2 + 1, EarlyExit.Comparisons(looks, Boundaries((4, 3), (10, 2)), 10));
        // A look before the first stage sees every class.
        Assert.Equal(9 + 1, EarlyExit.Comparisons(new[] { 2, 8 }, Boundaries((4, 2)), 10));
        // Down to one class: nothing left to compare, but never a zero divisor.
        Assert.Equal(1, EarlyExit.Comparisons(new[] { 6 }, Boundaries((4, 1)), 10));
    }

    [Fact]
    public void InvalidSettingsThrowNamingTheSetting()
    {
        Assert.Throws<ArgumentOutOfRangeException>("ErrorRate", () => new EarlyExit { ErrorRate = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>("ErrorRate", () => new EarlyExit { ErrorRate = 0.5 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>("ErrorRate", () => new EarlyExit { ErrorRate = double.NaN }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>("FirstLook", () => new EarlyExit { FirstLook = 1 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>("LookGrowth", () => new EarlyExit { LookGrowth = 0.9 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>("LookGrowth", () => new EarlyExit { LookGrowth = double.PositiveInfinity }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>("ErrorRate", () => (BayesClassifierOptions.Default with { EarlyExit = new EarlyExit { ErrorRate = -1 } }).Validate());
    }

    [Fact]
    public void AClearWinnerStopsAtTheFirstLook()
    {
        // Class 2 is better by 5 +- 0.5 on every sample, under a common per-sample offset of +-50.
        int n = 20, classes = 10;
        var rng = new Random(3);
        var offsets = Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 100 - 50).ToArray();
        var errors = Matrix(1, n, classes, (_, j, c) => offsets[j] + (c == 2 ? 0 : 5 + c) + rng.NextDouble() * 0.5);
        var evaluator = new MatrixEvaluator(errors);
        var t = StagedEvaluation.Run(1, n, classes, Array.Empty<PruningBoundary>(), 64, evaluator, CancellationToken.None, new EarlyExit(), recordSamples: true)[0];
        Assert.Equal(StopReason.Decided, t.Stop);
        Assert.Equal(4, t.SamplesEvaluated);
        Assert.Equal(40, evaluator.Rows);
        var p = ClassPrediction.FromTally(t, n, BayesClassifierOptions.Default, PixelConfig(1), 1);
        Assert.Equal(2, p.Label);
        Assert.Equal(StopReason.Decided, p.StopReason);
        Assert.Equal(4, p.SamplesSpent);
        Assert.All(p.SamplesPerClass, count => Assert.Equal(4, count));
        Assert.Equal(errors[0][3][7], t.SampleErrors![3][7]);
        Assert.True(double.IsNaN(t.SampleErrors[4][0]));
    }

    [Fact]
    public void TheTestFromRunningProductsEqualsTheTextbookPairedTTest()
    {
        var rng = new Random(17);
        for (int trial = 0; trial < 200; trial++)
        {
            int m = rng.Next(2, 30), classes = rng.Next(2, 8);
            var means = Enumerable.Range(0, classes).Select(_ => rng.NextDouble()).ToArray();
            var errors = Matrix(1, m, classes, (_, j, c) => 20 + 10 * Math.Sin(j) + means[c] + 0.3 * Gaussian(rng));
            var t = StagedEvaluation.Run(1, m, classes, Array.Empty<PruningBoundary>(), 64, new MatrixEvaluator(errors), CancellationToken.None, recordSamples: true)[0];
            var survivors = Enumerable.Range(0, classes).ToArray();
            int leader = survivors.OrderBy(c => errors[0].Sum(row => row[c])).First();
            double smallest = survivors.Where(b => b != leader).Min(b =>
            {
                var d = errors[0].Select(row => row[b] - row[leader]).ToArray();
                double mean = d.Average(), sd = Math.Sqrt(d.Sum(x => (x - mean) * (x - mean)) / (m - 1));
                return mean / (sd / Math.Sqrt(m));
            });
            Assert.True(StagedEvaluation.IsDecided(t, m, survivors, smallest * 0.999));
            Assert.False(StagedEvaluation.IsDecided(t, m, survivors, smallest * 1.001));
        }
    }

    [Fact]
    public void WithoutADifferenceTheTestRarelyStopsAndNeverMoreOftenThanTheErrorRate()
    {
        // The null: every class has the same error distribution, so a stop picks a class the limit would not prefer.
        // Heavy-tailed, skewed noise (exponential) makes the t-test's normality assumption wrong on purpose.
        int images = 2000, n = 20, classes = 10;
        var rng = new Random(11);
        var errors = Matrix(images, n, classes, (_, _, _) => -Math.Log(1 - rng.NextDouble()));
        var exit = new EarlyExit { ErrorRate = 0.05, FirstLook = 3, LookGrowth = 1.3 };
        var tallies = StagedEvaluation.Run(images, n, classes, Array.Empty<PruningBoundary>(), 256, new MatrixEvaluator(errors), CancellationToken.None, exit);
        int stopped = tallies.Count(t => t.Stop == StopReason.Decided);
        Assert.True(stopped <= 0.05 * images, $"{stopped} of {images} stopped under the null");
    }

    [Fact]
    public void EarlyDecisionsAgreeWithTheFullRunAtLeastAsOftenAsTheErrorRateSays()
    {
        // A small true advantage (0.6 on unit noise) for class 0 among 10 classes, with pruning: the exit must pick
        // the class that all n samples pick in at least 1 - ErrorRate of the images where it stops.
        int images = 1500, n = 100, classes = 10;
        var rng = new Random(5);
        var errors = Matrix(images, n, classes, (_, _, c) => (c == 0 ? 0 : 0.6) + Gaussian(rng));
        var stages = BayesClassifierOptions.DefaultPruning.ResolveBoundaries(n);
        var full = StagedEvaluation.Run(images, n, classes, stages, 256, new MatrixEvaluator(errors), CancellationToken.None);
        var early = StagedEvaluation.Run(images, n, classes, stages, 256, new MatrixEvaluator(errors), CancellationToken.None, new EarlyExit { ErrorRate = 0.05 });
        int decided = 0, disagree = 0;
        for (int i = 0; i < images; i++)
        {
            if (early[i].Stop != StopReason.Decided)
                continue;
            decided++;
            var a = ClassPrediction.FromTally(early[i], n, BayesClassifierOptions.Default, PixelConfig(1), 1).Label;
            var b = ClassPrediction.FromTally(full[i], n, BayesClassifierOptions.Default, PixelConfig(1), 1).Label;
            disagree += a != b ? 1 : 0;
        }
        Assert.True(decided > 100, $"only {decided} decided"); // the test has power: this cannot pass vacuously
        Assert.True(disagree <= 0.05 * decided, $"{disagree} of {decided} early decisions differ from the full run");
    }

    private static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>An architecture whose images have <paramref name="pixels"/> values (FromTally's mean errors divide by it).</summary>
    private static DiffusionClassifier.Modules.ConditionalUNetConfig PixelConfig(int pixels) => new(1, 16, 10, 1, pixels);
}
