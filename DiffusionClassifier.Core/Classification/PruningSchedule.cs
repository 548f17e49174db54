using System.ComponentModel;
using System.Globalization;

namespace DiffusionClassifier.Classification;

/// <summary>
/// Adaptive pruning in stages (Li et al. 2023): all classes are scored on the first samples, the best few survive,
/// and the remaining samples are spent only on the survivors. Stages are fractions of the sample count n passed to
/// <see cref="BayesClassifier.Predict(TorchSharp.torch.Tensor, int, long?, System.Threading.CancellationToken)"/>,
/// so one schedule serves every n. Immutable and thread-safe.
/// </summary>
/// <remarks>
/// <para>Example: <c>FromSampleCounts([10, 50], [2, 1])</c> (the paper's notation) is the stages
/// (0.2, keep 2), (1.0, keep 1). For n = 50 every class gets samples 1..10, the best 2 get samples 11..50, and the
/// label is the better of the two: 10 x 10 + 40 x 2 = 180 noise predictions instead of 500 (for 10 classes).</para>
/// <para>Ranking uses each survivor's mean error over all samples it received (all survivors have received the same
/// samples, a paired comparison); ties go to the lower class index. When a stage leaves one class, no further samples
/// are spent. A stage whose keep is not below the number of survivors prunes nothing. A stage that ends at n prunes
/// nothing either: after the last sample the label is the survivor with the lowest mean error anyway.</para>
/// </remarks>
[TypeConverter(typeof(PruningScheduleConverter))]
public sealed class PruningSchedule
{
    /// <summary>The text that means "no pruning" to <see cref="TypeConverter"/>-based readers such as configuration
    /// binding (a null schedule).</summary>
    public const string None = "none";

    private readonly PruningStage[] stages;

    /// <summary>Creates a schedule.</summary>
    /// <param name="stages">The stages, by increasing <see cref="PruningStage.SampleFraction"/> (in (0, 1]) and strictly
    /// decreasing <see cref="PruningStage.Keep"/> (at least 1; a stage with a <see cref="PruningStage.Margin"/> may
    /// keep as many as the previous one). At least one.</param>
    /// <exception cref="ArgumentNullException"><paramref name="stages"/> or a stage is null.</exception>
    /// <exception cref="ArgumentException">The stages are empty, out of range or out of order.</exception>
    public PruningSchedule(IEnumerable<PruningStage> stages)
    {
        ArgumentNullException.ThrowIfNull(stages);
        this.stages = stages.ToArray();
        if (this.stages.Length == 0)
            throw new ArgumentException("A pruning schedule needs at least one stage.", nameof(stages));
        for (int i = 0; i < this.stages.Length; i++)
        {
            var s = this.stages[i] ?? throw new ArgumentNullException(nameof(stages), $"Stage {i} is null.");
            if (!(s.SampleFraction > 0 && s.SampleFraction <= 1))
                throw new ArgumentException($"Stage {i}: SampleFraction must lie in (0, 1] but is {s.SampleFraction}.", nameof(stages));
            if (s.Keep < 1)
                throw new ArgumentException($"Stage {i}: Keep must be at least 1 but is {s.Keep}.", nameof(stages));
            if (s.Margin is double margin && !(margin >= 0 && double.IsFinite(margin)))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Stage {i}: Margin must be finite and at least 0 but is {margin}."), nameof(stages));
            if (i > 0 && !(s.SampleFraction > this.stages[i - 1].SampleFraction))
                throw new ArgumentException($"Stage {i}: SampleFraction {s.SampleFraction} must exceed the previous stage's {this.stages[i - 1].SampleFraction}.", nameof(stages));
            // A stage with a margin may keep as many as the previous one: the margin is what prunes.
            if (i > 0 && (s.Keep > this.stages[i - 1].Keep || (s.Keep == this.stages[i - 1].Keep && s.Margin is null)))
                throw new ArgumentException($"Stage {i}: Keep {s.Keep} must be below the previous stage's {this.stages[i - 1].Keep} (or equal to it with a Margin).", nameof(stages));
        }
    }

    /// <summary>Creates a schedule from stages.</summary>
    /// <param name="stages">See <see cref="PruningSchedule(IEnumerable{PruningStage})"/>.</param>
    public PruningSchedule(params PruningStage[] stages) : this((IEnumerable<PruningStage>)stages)
    {
    }

    /// <summary>The stages, by increasing sample fraction.</summary>
    public IReadOnlyList<PruningStage> Stages => stages;

    /// <summary>
    /// A schedule in the paper's notation: cumulative sample counts (e.g. [10, 50]) and how many classes survive
    /// each (e.g. [2, 1]). The counts are relative to the last one: [10, 50] means "after a fifth of n, then at n".
    /// </summary>
    /// <param name="cumulativeSamples">Strictly increasing positive counts.</param>
    /// <param name="keep">Strictly decreasing positive survivor counts, one per stage.</param>
    /// <exception cref="ArgumentException">The lists are empty, of different lengths, or out of order.</exception>
    public static PruningSchedule FromSampleCounts(IReadOnlyList<int> cumulativeSamples, IReadOnlyList<int> keep)
    {
        ArgumentNullException.ThrowIfNull(cumulativeSamples);
        ArgumentNullException.ThrowIfNull(keep);
        if (cumulativeSamples.Count == 0)
            throw new ArgumentException("At least one stage is needed.", nameof(cumulativeSamples));
        if (keep.Count != cumulativeSamples.Count)
            throw new ArgumentException($"keep has {keep.Count} entries but cumulativeSamples has {cumulativeSamples.Count}.", nameof(keep));
        for (int i = 0; i < cumulativeSamples.Count; i++)
        {
            if (cumulativeSamples[i] < 1 || (i > 0 && cumulativeSamples[i] <= cumulativeSamples[i - 1]))
                throw new ArgumentException($"cumulativeSamples must be positive and strictly increasing: [{string.Join(", ", cumulativeSamples)}].", nameof(cumulativeSamples));
        }
        double last = cumulativeSamples[^1];
        return new PruningSchedule(cumulativeSamples.Select((c, i) => new PruningStage(i == cumulativeSamples.Count - 1 ? 1.0 : c / last, keep[i])));
    }

    /// <summary>
    /// The stages that prune for <paramref name="n"/> samples: for each, the cumulative sample count after which it
    /// prunes (<c>round(fraction * n)</c>, clamped to 1..n) and how many classes survive it. Stages that end at n
    /// are left out (they cannot change the label); when two stages round to the same count the later (smaller or
    /// equal) keep applies.
    /// </summary>
    /// <param name="n">Samples per class without pruning; at least 1.</param>
    /// <returns>Boundaries strictly increasing and below n, with non-increasing keeps (equal only where a stage has a
    /// margin).</returns>
    public IReadOnlyList<(int CumulativeSamples, int Keep)> Resolve(int n) =>
        ResolveBoundaries(n).Select(b => (b.CumulativeSamples, b.Keep)).ToArray();

    /// <summary>As <see cref="Resolve"/>, with each stage's margin: when two stages round to the same count the later
    /// keep applies with the smaller of their margins (no margin counts as none), as if both ran in turn.</summary>
    internal IReadOnlyList<PruningBoundary> ResolveBoundaries(int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        var result = new List<PruningBoundary>();
        foreach (var s in stages)
        {
            int end = (int)Math.Clamp(Math.Round(s.SampleFraction * n, MidpointRounding.AwayFromZero), 1, n);
            if (end >= n)
                break;
            if (result.Count > 0 && result[^1].CumulativeSamples == end)
                result[^1] = new PruningBoundary(end, s.Keep, MinMargin(result[^1].Margin, s.Margin));
            else
                result.Add(new PruningBoundary(end, s.Keep, s.Margin));
        }
        return result;
    }

    private static double? MinMargin(double? a, double? b) => a is null ? b : b is null ? a : Math.Min(a.Value, b.Value);

    /// <summary>
    /// Reads stages written <c>fraction:keep[:margin],...</c>, e.g. <c>0.2:3,0.5:2</c> (after 20% of n samples keep the
    /// best 3 classes, after 50% the best 2) or <c>0.1:10:0.3,0.5:2</c> (after 10% keep the classes whose mean log
    /// error ratio to the leader is at most 0.3, see <see cref="PruningStage.Margin"/>): the form of the CLI's
    /// <c>--pruning</c> and of configuration files, where <see cref="None"/> means a null schedule. Numbers use the
    /// invariant culture.
    /// </summary>
    /// <param name="text">The stages.</param>
    /// <returns>The schedule.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException">A stage is not <c>fraction:keep</c> or <c>fraction:keep:margin</c>.</exception>
    /// <exception cref="ArgumentException">The stages are out of range or out of order (see the constructor).</exception>
    public static PruningSchedule Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var stages = new List<PruningStage>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var pieces = part.Split(':', StringSplitOptions.TrimEntries);
            double margin = 0;
            if (pieces.Length is < 2 or > 3
                || !double.TryParse(pieces[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double fraction)
                || !int.TryParse(pieces[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int keep)
                || (pieces.Length == 3 && !double.TryParse(pieces[2], NumberStyles.Float, CultureInfo.InvariantCulture, out margin)))
                throw new FormatException($"'{part}' is not 'fraction:keep' or 'fraction:keep:margin' (e.g. 0.2:3 or 0.1:10:0.3); use '{None}' to turn pruning off.");
            stages.Add(new PruningStage(fraction, keep) { Margin = pieces.Length == 3 ? margin : null });
        }
        return new PruningSchedule(stages);
    }

    /// <summary>The stages in the form <see cref="Parse"/> reads, e.g. <c>0.2:3,0.5:2</c>.</summary>
    /// <returns>The text.</returns>
    public string ToSpec() => string.Join(",", stages.Select(s => s.Margin is double m
        ? string.Create(CultureInfo.InvariantCulture, $"{s.SampleFraction:R}:{s.Keep}:{m:R}")
        : string.Create(CultureInfo.InvariantCulture, $"{s.SampleFraction:R}:{s.Keep}")));

    /// <inheritdoc />
    public override string ToString() => string.Join(", ", stages.Select(s => s.Margin is double m
        ? $"{s.SampleFraction:0.###}n: keep {s.Keep} within {m:0.###}"
        : $"{s.SampleFraction:0.###}n: keep {s.Keep}"));
}
