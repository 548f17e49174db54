using DiffusionClassifier.Modules;

namespace DiffusionClassifier.Classification;

/// <summary>
/// The result of classifying one image with <see cref="BayesClassifier"/>: the label, the posterior over all classes
/// and what it cost. Plain .NET data: no native memory.
/// </summary>
/// <remarks>
/// <para>For class c with error sum S_c (the per-image loss summed over pixels, summed over the n_c samples c
/// received): <c>MeanErrors[c] = S_c / (n_c * pixels)</c> and, without pruning, <c>Scores[c] = S_c / n_c</c> and
/// <c>PaperProbabilities = softmax(-Scores)</c>: the softmax of minus the summed (not per-pixel) error averaged over
/// samples, the published posterior (docs/estimators.md). <see cref="Probabilities"/> divides the scores by the
/// classifier's <see cref="Temperature"/> first; a temperature fitted on held-out data (docs/calibration.md) makes
/// the probabilities match the observed accuracy. The label is the same under every temperature.</para>
/// <para>A pruned class was scored on fewer samples than the label. Its raw mean is not comparable with the label's
/// (the per-sample error varies far more with t than between classes), so its score is its paired difference to the
/// label on the samples both received plus the label's score (see <see cref="Scores"/>): small but non-zero
/// probability, never above the label's. The most probable class is therefore always <see cref="Label"/>.</para>
/// <para>Thread safety: immutable plain data; safe to share.</para>
/// </remarks>
public sealed record ClassPrediction
{
    /// <summary>The predicted class: the surviving class with the lowest mean error (ties: lowest index).</summary>
    public required int Label { get; init; }

    /// <summary>
    /// p(class | image) for every class under a uniform prior, <c>softmax(-Scores / Temperature)</c>; sums to 1. Equal to
    /// <see cref="PaperProbabilities"/> when <see cref="Temperature"/> is 1.
    /// </summary>
    public required IReadOnlyList<double> Probabilities { get; init; }

    /// <summary>
    /// The paper's posterior <c>softmax(-Scores)</c> (temperature 1), whatever the classifier's temperature. Its scale
    /// is the summed error's, not a log-likelihood's: on MNIST it is far less confident than the classifier is right.
    /// </summary>
    public required IReadOnlyList<double> PaperProbabilities { get; init; }

    /// <summary>The temperature <see cref="Probabilities"/> were computed with (1: the paper's posterior).</summary>
    public required double Temperature { get; init; }

    /// <summary>
    /// Per class: the estimated expected loss summed over the image (lower is more likely);
    /// <see cref="Probabilities"/> is <c>softmax(-Scores)</c>. For a class that was not pruned, the summed loss averaged
    /// over its samples (<c>MeanErrors[c] x pixels</c>). For a pruned class, its mean paired difference to
    /// <see cref="Label"/> on the samples they share plus the label's score, so it never ranks above the label.
    /// </summary>
    public required IReadOnlyList<double> Scores { get; init; }

    /// <summary>Per class: the loss per pixel, averaged over the samples the class received.</summary>
    public required IReadOnlyList<double> MeanErrors { get; init; }

    /// <summary>Per class: how many (t, eps) samples it was scored on (n for survivors of the last stage).</summary>
    public required IReadOnlyList<int> SamplesPerClass { get; init; }

    /// <summary>The classes removed by pruning, ascending (empty without pruning).</summary>
    public required IReadOnlyList<int> PrunedClasses { get; init; }

    /// <summary>The sample count n requested.</summary>
    public required int Samples { get; init; }

    /// <summary>Distinct (t, eps) samples spent on the image: n unless pruning left one class or the early exit stopped it.</summary>
    public required int SamplesSpent { get; init; }

    /// <summary>Why the classifier stopped spending samples on the image.</summary>
    public required StopReason StopReason { get; init; }

    /// <summary>Per sample, in draw order, per class: the loss summed over pixels (NaN where the class did not receive
    /// the sample), when the classifier records them (<see cref="BayesClassifier.RecordSampleErrors"/>); empty
    /// otherwise. For analysing estimators offline (the CLI's <c>evaluate --sample-errors</c>).</summary>
    internal IReadOnlyList<double[]> SampleErrors { get; init; } = [];

    /// <summary>The timestep of each sample, in draw order.</summary>
    internal IReadOnlyList<int> Timesteps { get; init; } = [];

    /// <summary>
    /// Noise predictions made for this image: one per (sample, class) pair, the sum of <see cref="SamplesPerClass"/>.
    /// Without trunk sharing each is a full network forward (the reference counts n x classes of these); with trunk
    /// sharing each is a head evaluation.
    /// </summary>
    public required long NetworkEvaluations { get; init; }

    /// <summary>
    /// Trunk evaluations: one per sample with trunk sharing, one per noise prediction without it.
    /// </summary>
    public required long TrunkEvaluations { get; init; }

    /// <summary>
    /// Cost in full network forwards, by FLOPs: <c>(TrunkEvaluations x TrunkFlops + NetworkEvaluations x HeadFlops)
    /// / ForwardFlops</c> (see <see cref="Modules.ConditionalUNetConfig.TrunkFlops"/>).
    /// </summary>
    public required double EquivalentFullEvaluations { get; init; }

    /// <summary>The probability of <see cref="Label"/>.</summary>
    public double Confidence => Probabilities[Label];

    /// <summary>The <paramref name="k"/> most probable classes, most probable first (ties: the label first, then the
    /// lowest index; a class pruned by a margin can tie the label).</summary>
    /// <param name="k">How many; at least 1 (more than the class count returns all).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> &lt; 1.</exception>
    public IReadOnlyList<(int Label, double Probability)> TopK(int k)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        return Enumerable.Range(0, Probabilities.Count)
            .OrderByDescending(c => Probabilities[c]).ThenBy(c => c != Label).ThenBy(c => c)
            .Take(k).Select(c => (c, Probabilities[c])).ToArray();
    }

    /// <summary>Builds a prediction from the totals of <see cref="StagedEvaluation"/>.</summary>
    /// <param name="tally">Per-stage error sums, counts and pruned classes of one image.</param>
    /// <param name="samples">n requested.</param>
    /// <param name="options">The estimator (for the cost: <see cref="PredictionCost"/>).</param>
    /// <param name="config">The architecture (pixels per image, FLOPs).</param>
    /// <param name="temperature">Divides the scores before the softmax of <see cref="Probabilities"/>.</param>
    internal static ClassPrediction FromTally(StagedEvaluation.Tally tally, int samples, BayesClassifierOptions options, ConditionalUNetConfig config,
        double temperature)
    {
        int pixels = config.InChannels * config.Height * config.Width;
        var counts = tally.Counts;
        var sums = tally.ErrorSums;
        int k = counts.Length;
        var pruned = tally.Pruned;
        var mean = new double[k];
        var pruneList = new List<int>();
        int label = -1;
        long evaluations = 0;
        for (int c = 0; c < k; c++)
        {
            mean[c] = sums[c] / counts[c] / pixels;
            evaluations += counts[c];
            if (pruned[c])
                pruneList.Add(c);
            else if (label < 0 || sums[c] / counts[c] < sums[label] / counts[label])
                label = c;
        }
        if (label < 0)
            throw new InvalidOperationException("Every class was pruned.");
        long trunks = PredictionCost.Trunks(options, tally.SamplesEvaluated, evaluations);

        // Scores: the summed error averaged over samples. A pruned class is compared with the label on the samples
        // they share (a paired difference) and offset by the label's full average: the per-sample variance cancels
        // as it does between survivors. A pruned class never outranks the label: a keep prunes only classes behind
        // every survivor, but a margin (log ratios) can prune one whose error sum is below the eventual label's, so
        // the difference is floored at 0.
        var scores = new double[k];
        for (int c = 0; c < k; c++)
        {
            if (!pruned[c])
            {
                scores[c] = sums[c] / counts[c];
                continue;
            }
            double own = 0, labels = 0;
            for (int s = 0; s <= tally.PrunedAfterStage[c]; s++)
            {
                own += tally.StageSums[s][c];
                labels += tally.StageSums[s][label];
            }
            scores[c] = Math.Max(0, own - labels) / counts[c] + sums[label] / counts[label];
        }

        return new ClassPrediction
        {
            Label = label,
            Probabilities = Softmax(scores, temperature),
            PaperProbabilities = Softmax(scores, 1),
            Temperature = temperature,
            Scores = scores,
            MeanErrors = mean,
            SamplesPerClass = (int[])counts.Clone(),
            PrunedClasses = pruneList.ToArray(),
            Samples = samples,
            SamplesSpent = tally.SamplesEvaluated,
            StopReason = tally.Stop,
            SampleErrors = tally.SampleErrors ?? [],
            NetworkEvaluations = evaluations,
            TrunkEvaluations = trunks,
            EquivalentFullEvaluations = PredictionCost.FullEquivalents(config, trunks, evaluations),
        };
    }

    /// <summary>softmax(-scores / temperature), shifted by the minimum for stability.</summary>
    internal static double[] Softmax(IReadOnlyList<double> scores, double temperature)
    {
        double min = scores.Min();
        var probabilities = new double[scores.Count];
        double total = 0;
        for (int c = 0; c < probabilities.Length; c++)
            total += probabilities[c] = Math.Exp((min - scores[c]) / temperature);
        for (int c = 0; c < probabilities.Length; c++)
            probabilities[c] /= total;
        return probabilities;
    }
}
