namespace DiffusionClassifier.Classification;

/// <summary>Student's t distribution: the CDF through the regularized incomplete beta function, and its inverse.</summary>
internal static class StudentT
{
    /// <summary>P(T &lt;= t) for <paramref name="degrees"/> degrees of freedom.</summary>
    public static double Cdf(double t, double degrees)
    {
        if (double.IsNaN(t) || !(degrees > 0))
            return double.NaN;
        if (double.IsPositiveInfinity(t))
            return 1;
        if (double.IsNegativeInfinity(t))
            return 0;
        double tail = 0.5 * RegularizedBeta(degrees / (degrees + t * t), degrees / 2, 0.5);
        return t >= 0 ? 1 - tail : tail;
    }

    /// <summary>The t with <c>Cdf(t) = p</c>, for p in (0.5, 1): bisection to about 1e-12 relative.</summary>
    public static double Quantile(double p, double degrees)
    {
        if (!(p > 0.5 && p < 1) || !(degrees > 0))
            throw new ArgumentOutOfRangeException(nameof(p), p, "Quantile needs p in (0.5, 1) and positive degrees of freedom.");
        // The upper tail is computed directly so that p close to 1 keeps its precision.
        double tail = 1 - p, lo = 0, hi = 1;
        while (UpperTail(hi, degrees) > tail)
            hi *= 2;
        for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; i++)
        {
            double mid = 0.5 * (lo + hi);
            if (UpperTail(mid, degrees) > tail)
                lo = mid;
            else
                hi = mid;
        }
        return 0.5 * (lo + hi);
    }

    private static double UpperTail(double t, double degrees) => 0.5 * RegularizedBeta(degrees / (degrees + t * t), degrees / 2, 0.5);

    /// <summary>I_x(a, b) by its continued fraction (modified Lentz), using the symmetry for fast convergence.</summary>
    internal static double RegularizedBeta(double x, double a, double b)
    {
        if (x <= 0)
            return 0;
        if (x >= 1)
            return 1;
        double front = Math.Exp(LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * Math.Log(x) + b * Math.Log(1 - x));
        return x < (a + 1) / (a + b + 2)
            ? front * ContinuedFraction(x, a, b) / a
            : 1 - front * ContinuedFraction(1 - x, b, a) / b;
    }

    private static double ContinuedFraction(double x, double a, double b)
    {
        const double tiny = 1e-300;
        double c = 1, d = 1 - (a + b) * x / (a + 1);
        d = 1 / (Math.Abs(d) < tiny ? tiny : d);
        double h = d;
        for (int m = 1; m <= 500; m++)
        {
            int m2 = 2 * m;
            double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
            d = 1 + aa * d;
            d = 1 / (Math.Abs(d) < tiny ? tiny : d);
            c = 1 + aa / c;
            c = Math.Abs(c) < tiny ? tiny : c;
            h *= d * c;
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
            d = 1 + aa * d;
            d = 1 / (Math.Abs(d) < tiny ? tiny : d);
            c = 1 + aa / c;
            c = Math.Abs(c) < tiny ? tiny : c;
            double delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < 1e-15)
                break;
        }
        return h;
    }

    /// <summary>ln Gamma(x) for x &gt; 0 (Lanczos, g = 7, 9 terms: about 1e-15 relative).</summary>
    internal static double LogGamma(double x)
    {
        ReadOnlySpan<double> c =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        if (x < 0.5)
            return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        x -= 1;
        double sum = c[0], t = x + 7.5;
        for (int i = 1; i < 9; i++)
            sum += c[i] / (x + i);
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(sum);
    }
}
