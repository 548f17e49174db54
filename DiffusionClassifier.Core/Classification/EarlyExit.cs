using System.ComponentModel;
using System.Globalization;

namespace DiffusionClassifier.Classification;

/// <summary>
/// A sequential early exit for <see cref="BayesClassifier"/>: at a few looks during the n samples, an image stops as
/// soon as a paired t-test on the per-sample error differences says the leading class beats every other surviving
/// class, at an overall error rate of at most <see cref="ErrorRate"/> (docs/early-exit.md). Immutable and thread-safe.
/// </summary>
/// <remarks>
/// <para>At a look after m samples (every surviving class has received all m, at the same (t, eps)), let a be the
/// survivor with the lowest error sum and, for every other survivor b, d_j = e_b(j) - e_a(j). The image stops when
/// for every b the t statistic mean(d) / (sd(d) / sqrt(m)) exceeds the Student t quantile with m - 1 degrees of
/// freedom at 1 - ErrorRate / C, where C counts the comparisons over all looks: at each look below n, the classes
/// left by the pruning stages up to it, less the leader. That is a Bonferroni bound over the looks and the rivals
/// actually tested, so the chance that the exit picks another class than the
/// estimator's limit stays below <see cref="ErrorRate"/> whatever the stopping time. The looks do not change the draw
/// (only pruning stages are its boundaries), so an image that is not stopped gets exactly the samples, and the label,
/// it gets without the exit; the stratified sample's variance overstates the variance of its mean, which keeps the
/// test conservative.</para>
/// <para>Looks happen after <see cref="FirstLook"/> samples and then at counts growing by <see cref="LookGrowth"/>
/// (rounded, at least one more each time), below n. Pruning still applies at its own stage boundaries.</para>
/// </remarks>
[TypeConverter(typeof(EarlyExitConverter))]
public sealed record EarlyExit
{
    /// <summary>The text that means "no early exit" to <see cref="TypeConverter"/>-based readers such as configuration
    /// binding (a null <see cref="BayesClassifierOptions.EarlyExit"/>).</summary>
    public const string None = "none";

    /// <summary>The overall probability that the exit decides differently from spending all samples would in the limit.
    /// Default 0.05, chosen on the validation split (docs/early-exit.md).</summary>
    public double ErrorRate { get; init; } = 0.05;

    /// <summary>The first look, in samples (at least 2: the test needs a variance). Default 4.</summary>
    public int FirstLook { get; init; } = 4;

    /// <summary>Each look's sample count is the previous one times this, rounded (at least one more). Default 1.5.</summary>
    public double LookGrowth { get; init; } = 1.5;

    /// <summary>Throws when a setting is out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="ErrorRate"/> is not in (0, 0.5),
    /// <see cref="FirstLook"/> is below 2 or <see cref="LookGrowth"/> is not a finite number of at least 1.</exception>
    public void Validate()
    {
        if (!(ErrorRate > 0 && ErrorRate < 0.5))
            throw new ArgumentOutOfRangeException(nameof(ErrorRate), ErrorRate, "ErrorRate must lie in (0, 0.5).");
        if (FirstLook < 2)
            throw new ArgumentOutOfRangeException(nameof(FirstLook), FirstLook, "FirstLook must be at least 2 samples.");
        if (!(LookGrowth >= 1 && double.IsFinite(LookGrowth)))
            throw new ArgumentOutOfRangeException(nameof(LookGrowth), LookGrowth, "LookGrowth must be a finite number of at least 1.");
    }

    /// <summary>The sample counts after which the test runs for <paramref name="n"/> samples: ascending, below n.</summary>
    /// <param name="n">Samples per class; at least 1.</param>
    public IReadOnlyList<int> Looks(int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        var looks = new List<int>();
        for (double m = FirstLook; m < n; m = Math.Max(Math.Round(m * LookGrowth, MidpointRounding.AwayFromZero), m + 1))
            looks.Add((int)m);
        return looks;
    }

    /// <summary>
    /// The number of paired comparisons the test can make over all looks: at each look, the classes that survive the
    /// pruning stages up to it, less the leader. The Bonferroni bound divides <see cref="ErrorRate"/> among them. A stage
    /// with a margin may leave fewer classes than its keep; the count uses the keep, an upper bound, so the bound holds.
    /// </summary>
    /// <param name="looks">The looks (see <see cref="Looks"/>).</param>
    /// <param name="stages">Pruning boundaries with their keeps (cumulative samples, classes kept); empty = no pruning.</param>
    /// <param name="classes">K, the class count.</param>
    internal static int Comparisons(IReadOnlyList<int> looks, IReadOnlyList<PruningBoundary> stages, int classes)
    {
        int total = 0;
        foreach (int m in looks)
        {
            // Pruning at the look's own boundary runs before the test, so its keep counts.
            int survivors = stages.Where(s => s.CumulativeSamples <= m).Select(s => s.Keep).Append(classes).Min();
            total += Math.Max(0, survivors - 1);
        }
        return Math.Max(1, total);
    }

    /// <summary>The t statistic every rival must exceed at a look after <paramref name="samples"/> samples.</summary>
    /// <param name="samples">m, at least 2.</param>
    /// <param name="comparisons">The comparisons over all looks (see <see cref="Comparisons"/>), at least 1.</param>
    internal double CriticalValue(int samples, int comparisons) =>
        StudentT.Quantile(1 - ErrorRate / comparisons, samples - 1);

    /// <summary>Reads <c>rate[:first[:growth]]</c>, e.g. <c>0.05</c> or <c>0.01:4:1.5</c>; omitted parts keep their
    /// defaults. The result is validated.</summary>
    /// <param name="text">The settings.</param>
    /// <returns>The early exit.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException">The text is not <c>rate[:first[:growth]]</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range (see <see cref="Validate"/>).</exception>
    public static EarlyExit Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var pieces = text.Trim().Split(':', StringSplitOptions.TrimEntries);
        var defaults = new EarlyExit();
        double rate = 0, growth = defaults.LookGrowth;
        int first = defaults.FirstLook;
        if (pieces.Length > 3
            || !double.TryParse(pieces[0], NumberStyles.Float, CultureInfo.InvariantCulture, out rate)
            || (pieces.Length >= 2 && !int.TryParse(pieces[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out first))
            || (pieces.Length == 3 && !double.TryParse(pieces[2], NumberStyles.Float, CultureInfo.InvariantCulture, out growth)))
            throw new FormatException($"'{text.Trim()}' is not 'rate[:first[:growth]]' (e.g. 0.05:4:1.5); use '{None}' to turn it off.");
        var exit = new EarlyExit { ErrorRate = rate, FirstLook = first, LookGrowth = growth };
        exit.Validate();
        return exit;
    }

    /// <summary>The settings in the form <see cref="Parse"/> reads, e.g. <c>0.05:4:1.5</c>.</summary>
    /// <returns>The text.</returns>
    public string ToSpec() => string.Create(CultureInfo.InvariantCulture, $"{ErrorRate:R}:{FirstLook}:{LookGrowth:R}");

    /// <inheritdoc />
    public override string ToString() =>
        FormattableString.Invariant($"error rate {ErrorRate:G4}, looks from {FirstLook} x{LookGrowth:0.###}");
}
