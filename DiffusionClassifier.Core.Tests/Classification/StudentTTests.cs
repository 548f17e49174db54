using DiffusionClassifier.Classification;

namespace DiffusionClassifier.Tests.Classification;

public class StudentTTests
{
    [Theory]
    // Published quantiles (e.g. NIST/SEMATECH e-Handbook table 1.3.6.7.2; R's qt()).
    [InlineData(0.975, 1, 12.706204736)]
    [InlineData(0.975, 3, 3.182446305)]
    [InlineData(0.995, 10, 3.169272673)]
    [InlineData(0.9995, 9, 4.780912586)]
    [InlineData(0.95, 30, 1.697260887)]
    [InlineData(0.975, 1e7, 1.959963985)]
    public void QuantilesMatchPublishedValues(double p, double degrees, double expected) =>
        Assert.Equal(expected, StudentT.Quantile(p, degrees), 6);

    [Theory]
    [InlineData(1)]
    [InlineData(2.5)]
    [InlineData(7)]
    [InlineData(40)]
    public void TheCdfMatchesTheIntegratedDensity(double degrees)
    {
        // Independent computation: Simpson's rule on the density from 0 to t, plus one half.
        double logNorm = StudentT.LogGamma((degrees + 1) / 2) - StudentT.LogGamma(degrees / 2) - 0.5 * Math.Log(degrees * Math.PI);
        double Density(double x) => Math.Exp(logNorm - (degrees + 1) / 2 * Math.Log(1 + x * x / degrees));
        foreach (double t in new[] { 0.1, 0.7, 1.5, 3.0, 6.0 })
        {
            const int steps = 20_000;
            double h = t / steps, sum = Density(0) + Density(t);
            for (int i = 1; i < steps; i++)
                sum += Density(i * h) * (i % 2 == 1 ? 4 : 2);
            Assert.Equal(0.5 + sum * h / 3, StudentT.Cdf(t, degrees), 9);
            Assert.Equal(1 - StudentT.Cdf(t, degrees), StudentT.Cdf(-t, degrees), 12);
        }
    }

    [Fact]
    public void TheQuantileInvertsTheCdfFarIntoTheTail()
    {
        foreach (double degrees in new[] { 1.0, 3, 19, 99 })
            foreach (double p in new[] { 0.6, 0.99, 0.9999, 1 - 1e-7 })
                Assert.Equal(1 - p, 1 - StudentT.Cdf(StudentT.Quantile(p, degrees), degrees), 1e-9 * (1 - p) + 1e-15);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(1.0)]
    [InlineData(double.NaN)]
    public void QuantileRejectsProbabilitiesOutsideTheUpperHalf(double p) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => StudentT.Quantile(p, 3));
}
