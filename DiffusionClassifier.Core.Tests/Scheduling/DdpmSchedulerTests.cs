using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Scheduling;

/// <summary><see cref="DdpmScheduler"/> against the closed forms of docs/algorithm.md §2, computed here in float64.</summary>
public class DdpmSchedulerTests
{
    /// <summary>The closed form, written independently: alphabar_t as a running product (not exp of a log-sum).</summary>
    private sealed record Closed(int T, double B1, double B2)
    {
        public double Beta(int t) => B1 + (B2 - B1) * t / T;
        public double Alpha(int t) => 1 - Beta(t);
        public double AlphaBar(int t)
        {
            double p = 1;
            for (int s = 0; s <= t; s++) p *= Alpha(s);
            return p;
        }
    }

    [Theory]
    [InlineData(400, 1e-4, 0.02)]
    [InlineData(5, 1e-3, 0.2)]
    [InlineData(1, 0.01, 0.5)]
    [InlineData(10, 0.05, 0.05)]
    public void Tables_MatchTheClosedForm(int T, double b1, double b2)
    {
        var s = new DdpmScheduler(T, b1, b2);
        var c = new Closed(T, b1, b2);
        Assert.Equal(T, s.NumTrainTimesteps);
        Assert.Equal(b1, s.BetaStart);
        Assert.Equal(b2, s.BetaEnd);
        foreach (var table in new[] { s.Betas, s.Alphas, s.AlphaBars, s.SqrtAlphaBars, s.SqrtOneMinusAlphaBars, s.OneOverSqrtAlphas, s.SqrtBetas, s.MabOverSqrtMab })
            Assert.Equal(T + 1, table.Count);
        for (int t = 0; t <= T; t++)
        {
            double ab = c.AlphaBar(t);
            Close(c.Beta(t), s.Betas[t]);
            Close(c.Alpha(t), s.Alphas[t]);
            Close(ab, s.AlphaBars[t]);
            Close(Math.Sqrt(ab), s.SqrtAlphaBars[t]);
            Close(Math.Sqrt(1 - ab), s.SqrtOneMinusAlphaBars[t]);
            Close(1 / Math.Sqrt(c.Alpha(t)), s.OneOverSqrtAlphas[t]);
            Close(Math.Sqrt(c.Beta(t)), s.SqrtBetas[t]);
            Close((1 - c.Alpha(t)) / Math.Sqrt(1 - ab), s.MabOverSqrtMab[t]);
        }
        // alphabar_0 = 1 - beta1, not 1; the ends of the linear schedule are exact.
        Close(1 - b1, s.AlphaBars[0]);
        Assert.Equal(b1, s.Betas[0]);
        Close(b2, s.Betas[T]);
    }

    private static bool BitEqual(Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.eq(b).all().item<bool>();

    private static void Close(double expected, double actual) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-12 * Math.Max(1, Math.Abs(expected)), $"expected {expected:R}, got {actual:R}");

    [Fact]
    public void DefaultSchedule_IsTheReferenceOne()
    {
        var s = new DdpmScheduler();
        Assert.Equal(400, s.NumTrainTimesteps);
        Assert.Equal(1e-4, s.BetaStart);
        Assert.Equal(0.02, s.BetaEnd);
        Close(new Closed(400, 1e-4, 0.02).AlphaBar(400), s.AlphaBars[400]);
        // Nearly all signal is gone at T.
        Assert.InRange(s.AlphaBars[400], 1e-3, 2e-2);
    }

    [Fact]
    public void Equality_IsTheConfiguration()
    {
        var a = new DdpmScheduler(400, 1e-4, 0.02);
        var b = new DdpmScheduler();
        Assert.True(a == b);
        Assert.False(a != b);
        Assert.True(a.Equals((object)b));
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, new DdpmScheduler(300, 1e-4, 0.02));
        Assert.NotEqual(a, new DdpmScheduler(400, 2e-4, 0.02));
        Assert.NotEqual(a, new DdpmScheduler(400, 1e-4, 0.03));
        Assert.False(a == null);
        Assert.True((DdpmScheduler?)null == null);
        Assert.False(a.Equals(null));
        Assert.Equal("DdpmScheduler(T = 300, betas 0.0001..0.02)", new DdpmScheduler(300).ToString());
    }

    [Theory]
    [InlineData(0, 1e-4, 0.02, "numTrainTimesteps")]
    [InlineData(-5, 1e-4, 0.02, "numTrainTimesteps")]
    [InlineData(400, 0, 0.02, "betaStart")]
    [InlineData(400, -1e-4, 0.02, "betaStart")]
    [InlineData(400, 1, 1, "betaStart")]
    [InlineData(400, double.NaN, 0.02, "betaStart")]
    [InlineData(400, 1e-4, double.NaN, "betaEnd")]
    [InlineData(400, 1e-4, double.PositiveInfinity, "betaEnd")]
    [InlineData(400, 0.02, 1e-4, "betaEnd")]
    [InlineData(400, 1e-4, 1, "betaEnd")]
    public void InvalidConfig_Throws(int T, double b1, double b2, string parameter)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new DdpmScheduler(T, b1, b2));
        Assert.Equal(parameter, ex.ParamName);
    }

    [Theory]
    [InlineData(ScalarType.Float64, 1e-14)]
    [InlineData(ScalarType.Float32, 1e-6)]
    public void AddNoise_MatchesAHandComputation(ScalarType dtype, double tolerance)
    {
        var s = new DdpmScheduler();
        var c = new Closed(400, 1e-4, 0.02);
        var g = new Generator(3);
        using var scope = NewDisposeScope();
        var x0 = rand(new long[] { 4, 1, 3, 2 }, float64, generator: g);
        var eps = randn(new long[] { 4, 1, 3, 2 }, float64, generator: g);
        long[] ts = { 0, 1, 200, 400 };
        var xt = s.AddNoise(x0.to(dtype), eps.to(dtype), tensor(ts));
        Assert.Equal(dtype, xt.dtype);
        Assert.Equal(x0.shape, xt.shape);
        var a = x0.data<double>().ToArray();
        var e = eps.data<double>().ToArray();
        var actual = xt.to(float64).data<double>().ToArray();
        for (int i = 0; i < a.Length; i++)
        {
            double ab = c.AlphaBar((int)ts[i / 6]);
            double expected = Math.Sqrt(ab) * a[i] + Math.Sqrt(1 - ab) * e[i];
            Assert.True(Math.Abs(expected - actual[i]) <= tolerance * Math.Max(1, Math.Abs(expected)), $"element {i}: {expected} vs {actual[i]}");
        }
    }

    [Fact]
    public void AddNoise_AcceptsInt32Timesteps_And2DSamples()
    {
        var s = new DdpmScheduler(10, 0.01, 0.1);
        using var scope = NewDisposeScope();
        var x0 = ones(2, 3);
        var eps = ones(2, 3);
        var xt = s.AddNoise(x0, eps, tensor(new int[] { 3, 10 }));
        Assert.Equal((float)(s.SqrtAlphaBars[3] + s.SqrtOneMinusAlphaBars[3]), xt[0, 1].item<float>(), 6);
        Assert.Equal((float)(s.SqrtAlphaBars[10] + s.SqrtOneMinusAlphaBars[10]), xt[1, 2].item<float>(), 6);
    }

    [Fact]
    public void AddNoise_BadInput_Throws()
    {
        var s = new DdpmScheduler();
        using var scope = NewDisposeScope();
        var x0 = zeros(2, 1, 4, 4);
        var eps = zeros(2, 1, 4, 4);

        var range = Assert.Throws<ArgumentOutOfRangeException>(() => s.AddNoise(x0, eps, tensor(new long[] { 1, 401 })));
        Assert.Equal("timesteps", range.ParamName);
        Assert.Contains("401", range.Message);
        range = Assert.Throws<ArgumentOutOfRangeException>(() => s.AddNoise(x0, eps, tensor(new long[] { -1, 5 })));
        Assert.Contains("-1", range.Message);
        // 0 and T are accepted.
        s.AddNoise(x0, eps, tensor(new long[] { 0, 400 })).Dispose();

        Assert.Equal("timesteps", Assert.Throws<ArgumentException>(() => s.AddNoise(x0, eps, tensor(new long[] { 1 }))).ParamName);
        Assert.Equal("timesteps", Assert.Throws<ArgumentException>(() => s.AddNoise(x0, eps, tensor(new long[] { 1, 2 }).reshape(2, 1))).ParamName);
        Assert.Equal("timesteps", Assert.Throws<ArgumentException>(() => s.AddNoise(x0, eps, tensor(new float[] { 1, 2 }))).ParamName);
        Assert.Equal("noise", Assert.Throws<ArgumentException>(() => s.AddNoise(x0, zeros(2, 1, 4, 3), tensor(new long[] { 1, 2 }))).ParamName);
        Assert.Equal("noise", Assert.Throws<ArgumentException>(() => s.AddNoise(x0, eps.to(float64), tensor(new long[] { 1, 2 }))).ParamName);
        Assert.Equal("originalSamples", Assert.Throws<ArgumentException>(() => s.AddNoise(x0.to(int64), eps.to(int64), tensor(new long[] { 1, 2 }))).ParamName);
        Assert.Equal("originalSamples", Assert.Throws<ArgumentException>(() => s.AddNoise(tensor(1f), tensor(1f), tensor(new long[] { 1 }))).ParamName);
        Assert.Throws<ArgumentNullException>(() => s.AddNoise(null!, eps, tensor(new long[] { 1, 2 })));
    }

    [Theory]
    [InlineData(ScalarType.Float64, 1e-14)]
    [InlineData(ScalarType.Float32, 1e-6)]
    public void Step_MatchesTheFormula(ScalarType dtype, double tolerance)
    {
        var s = new DdpmScheduler();
        var c = new Closed(400, 1e-4, 0.02);
        var g = new Generator(4);
        using var scope = NewDisposeScope();
        var x = randn(new long[] { 2, 1, 2, 2 }, float64, generator: g);
        var epsHat = randn(new long[] { 2, 1, 2, 2 }, float64, generator: g);
        var z = randn(new long[] { 2, 1, 2, 2 }, float64, generator: g);
        foreach (int t in new[] { 400, 57, 2, 1 })
        {
            var result = s.Step(epsHat.to(dtype), t, x.to(dtype), z.to(dtype));
            Assert.Equal(dtype, result.dtype);
            double alpha = c.Alpha(t), ab = c.AlphaBar(t), beta = c.Beta(t);
            var xs = x.data<double>().ToArray();
            var es = epsHat.data<double>().ToArray();
            var zs = z.data<double>().ToArray();
            var actual = result.to(float64).data<double>().ToArray();
            for (int i = 0; i < xs.Length; i++)
            {
                double noise = t > 1 ? Math.Sqrt(beta) * zs[i] : 0; // z = 0 at t = 1
                double expected = (xs[i] - es[i] * (1 - alpha) / Math.Sqrt(1 - ab)) / Math.Sqrt(alpha) + noise;
                Assert.True(Math.Abs(expected - actual[i]) <= tolerance * Math.Max(1, Math.Abs(expected)), $"t={t} element {i}: {expected} vs {actual[i]}");
            }
        }
    }

    [Fact]
    public void Step_AtTimestepOne_IgnoresTheNoise()
    {
        var s = new DdpmScheduler();
        using var scope = NewDisposeScope();
        var x = randn(2, 3);
        var eps = randn(2, 3);
        var withNull = s.Step(eps, 1, x, (Tensor?)null);
        var withNoise = s.Step(eps, 1, x, randn(2, 3));
        var withGenerator = s.Step(eps, 1, x, new Generator(1));
        Assert.True(BitEqual(withNull, withNoise));
        Assert.True(BitEqual(withNull, withGenerator));
    }

    [Fact]
    public void Step_WithALiteralNull_DrawsFromTheGlobalGenerator()
    {
        var s = new DdpmScheduler();
        using var scope = NewDisposeScope();
        var x = randn(2, 3);
        var eps = randn(2, 3);
        manual_seed(5);
        var withNull = s.Step(eps, 100, x, null);
        manual_seed(5);
        var withGlobal = s.Step(eps, 100, x, (Generator?)null);
        var withoutNoise = s.Step(eps, 1, x, (Tensor?)null);
        Assert.True(BitEqual(withNull, withGlobal));
        Assert.False(BitEqual(withNull, s.Step(eps, 100, x, zeros(2, 3))));
        Assert.Equal(withoutNoise.shape, withNull.shape);
    }

    [Fact]
    public void Step_WithGenerator_IsDeterministicForASeed_AndUsesTheNoise()
    {
        var s = new DdpmScheduler();
        using var scope = NewDisposeScope();
        var x = randn(3, 1, 4, 4);
        var eps = randn(3, 1, 4, 4);
        var a = s.Step(eps, 100, x, new Generator(77));
        var b = s.Step(eps, 100, x, new Generator(77));
        var other = s.Step(eps, 100, x, new Generator(78));
        Assert.True(BitEqual(a, b));
        Assert.False(BitEqual(a, other));
        // The same as the explicit-noise overload with the generator's first draw.
        var z = randn(new long[] { 3, 1, 4, 4 }, generator: new Generator(77));
        Assert.True(a.allclose(s.Step(eps, 100, x, z), rtol: 0, atol: 0));
    }

    [Fact]
    public void Step_BadInput_Throws()
    {
        var s = new DdpmScheduler();
        using var scope = NewDisposeScope();
        var x = zeros(2, 1, 4, 4);
        var eps = zeros(2, 1, 4, 4);
        foreach (int t in new[] { 0, -1, 401 })
        {
            var ex = Assert.Throws<ArgumentOutOfRangeException>(() => s.Step(eps, t, x, eps));
            Assert.Equal("timestep", ex.ParamName);
            Assert.Equal(t, ex.ActualValue);
            Assert.Equal("timestep", Assert.Throws<ArgumentOutOfRangeException>(() => s.Step(eps, t, x, new Generator(1))).ParamName);
        }
        Assert.Equal("noise", Assert.Throws<ArgumentNullException>(() => s.Step(eps, 5, x, (Tensor?)null)).ParamName);
        Assert.Equal("noise", Assert.Throws<ArgumentException>(() => s.Step(eps, 5, x, zeros(2, 1, 4, 3))).ParamName);
        Assert.Equal("noise", Assert.Throws<ArgumentException>(() => s.Step(eps, 5, x, eps.to(float64))).ParamName);
        Assert.Equal("modelOutput", Assert.Throws<ArgumentException>(() => s.Step(zeros(2, 1, 4, 3), 5, x, eps)).ParamName);
        Assert.Equal("modelOutput", Assert.Throws<ArgumentException>(() => s.Step(eps.to(float64), 5, x, eps)).ParamName);
        Assert.Equal("sample", Assert.Throws<ArgumentException>(() => s.Step(eps.to(int64), 5, x.to(int64), eps.to(int64))).ParamName);
        Assert.Throws<ArgumentNullException>(() => s.Step(null!, 5, x, eps));
        Assert.Throws<ArgumentNullException>(() => s.Step(null!, 5, x, new Generator(1)));
    }

    [Theory]
    [InlineData(400)]
    [InlineData(7)]
    [InlineData(1)]
    public void EvenlySpacedTimesteps_AreStrictlyIncreasingWithinRange(int T)
    {
        var s = new DdpmScheduler(T);
        for (int count = 1; count <= T; count++)
        {
            var ts = s.EvenlySpacedTimesteps(count);
            Assert.Equal(count, ts.Length);
            Assert.InRange(ts[0], 1, T);
            Assert.InRange(ts[^1], 1, T);
            for (int i = 1; i < count; i++)
                Assert.True(ts[i] > ts[i - 1], $"count {count}: not increasing at {i}");
        }
        Assert.Equal(Enumerable.Range(1, T), s.EvenlySpacedTimesteps(T));
        Assert.Equal(T / 2 + 1, s.EvenlySpacedTimesteps(1).Single());
        Assert.Equal("count", Assert.Throws<ArgumentOutOfRangeException>(() => s.EvenlySpacedTimesteps(0)).ParamName);
        Assert.Equal(T + 1, Assert.Throws<ArgumentOutOfRangeException>(() => s.EvenlySpacedTimesteps(T + 1)).ActualValue);
    }

    [Fact]
    public void EvenlySpacedTimesteps_AreStratumCentres()
    {
        // 4 strata of 1..400 of 100 steps each: centres 50.5, 150.5, ... -> 51, 151, 251, 351.
        Assert.Equal(new[] { 51, 151, 251, 351 }, new DdpmScheduler().EvenlySpacedTimesteps(4));
        Assert.Equal(201, new DdpmScheduler().EvenlySpacedTimesteps(1).Single());
    }

    [Fact]
    public void NormalizeTimesteps_IsTOverT()
    {
        var s = new DdpmScheduler();
        using var scope = NewDisposeScope();
        var t = tensor(new long[] { 0, 1, 123, 400 });
        var n = s.NormalizeTimesteps(t);
        Assert.Equal(ScalarType.Float32, n.dtype);
        Assert.Equal(new[] { 0f, 1f / 400, 123f / 400, 1f }, n.data<float>().ToArray());
        var n64 = s.NormalizeTimesteps(t, ScalarType.Float64);
        Assert.Equal(new[] { 0.0, 1.0 / 400, 123.0 / 400, 1.0 }, n64.data<double>().ToArray());
    }

    [Fact]
    public void SampleTimesteps_AreUniformOn1ToT_AndSeeded()
    {
        var s = new DdpmScheduler(5);
        using var scope = NewDisposeScope();
        var a = s.SampleTimesteps(5000, new Generator(9));
        var b = s.SampleTimesteps(5000, new Generator(9));
        Assert.True(BitEqual(a, b));
        Assert.Equal(ScalarType.Int64, a.dtype);
        Assert.Equal(1, a.min().item<long>());
        Assert.Equal(5, a.max().item<long>());
        var counts = a.bincount(null).data<long>().ToArray();
        Assert.Equal(0, counts[0]);
        Assert.All(counts.Skip(1), n => Assert.InRange(n, 900, 1100));
        Assert.Equal("count", Assert.Throws<ArgumentOutOfRangeException>(() => s.SampleTimesteps(-1)).ParamName);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    public void AddNoiseUnchecked_EqualsAddNoiseBitForBit(ScalarType dtype)
    {
        var s = new DdpmScheduler(400);
        using var scope = NewDisposeScope();
        var x0 = rand(new long[] { 6, 1, 5, 5 }, dtype, generator: new Generator(2));
        var eps = randn(new long[] { 6, 1, 5, 5 }, dtype, generator: new Generator(3));
        var t = tensor(new long[] { 1, 17, 200, 399, 400, 17 });
        for (int repeat = 0; repeat < 2; repeat++) // the second call uses the cached tables
            Assert.True(s.AddNoise(x0, eps, t).eq(s.AddNoiseUnchecked(x0, eps, t)).all().item<bool>());
    }
}
