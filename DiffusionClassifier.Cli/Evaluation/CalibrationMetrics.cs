using DiffusionClassifier.Classification;

namespace DiffusionClassifier.Cli.Evaluation;

/// <summary>
/// How well probabilities match outcomes, at a temperature applied to stored class scores: the top-1 expected
/// calibration error (Guo et al. 2017, equal-width bins), the negative log-likelihood of the true labels, and the fit of
/// the temperature that minimises that likelihood.
/// </summary>
internal static class CalibrationMetrics
{
    /// <summary>The bin count of the reported ECE (as in Guo et al. 2017 and issue 14).</summary>
    public const int DefaultBins = 15;

    /// <summary>One reliability bin: confidence range, items, mean confidence and accuracy.</summary>
    public sealed record Bin(double Lower, double Upper, int Count, double MeanConfidence, double Accuracy);

    /// <summary>
    /// Top-1 confidence and correctness of every item at <paramref name="temperature"/>: the probability of the
    /// classifier's own label (<c>Predicted</c>, as <see cref="ClassPrediction.Confidence"/>), not of an argmax of the
    /// scores. A class pruned by a margin can tie the label's score (the classifier breaks the tie for the label), and
    /// margin pruning can even leave a pruned class's score below it; an argmax would count such items wrong.
    /// </summary>
    /// <exception cref="ArgumentException">A predicted class outside the scores.</exception>
    public static (double Confidence, bool Correct)[] TopOne(IReadOnlyList<(double[] Scores, int Label, int Predicted)> items, double temperature) =>
        items.Select(item =>
        {
            if (item.Predicted < 0 || item.Predicted >= item.Scores.Length)
                throw new ArgumentException($"Predicted class {item.Predicted} is outside the {item.Scores.Length} scores.", nameof(items));
            // p(top) = 1 / sum_c exp((s_top - s_c) / T).
            double top = item.Scores[item.Predicted];
            double sum = 0;
            foreach (double s in item.Scores)
                sum += Math.Exp((top - s) / temperature);
            return (1 / sum, item.Predicted == item.Label);
        }).ToArray();

    /// <summary>Equal-width bins over (0, 1]: bin b holds confidences in (b/B, (b+1)/B] (bin 0 also holds 0).</summary>
    public static Bin[] Bins(IReadOnlyList<(double Confidence, bool Correct)> outcomes, int bins = DefaultBins)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 1);
        var count = new int[bins];
        var confidence = new double[bins];
        var correct = new int[bins];
        foreach (var (c, ok) in outcomes)
        {
            int b = Math.Clamp((int)Math.Ceiling(c * bins) - 1, 0, bins - 1);
            count[b]++;
            confidence[b] += c;
            if (ok) correct[b]++;
        }
        return Enumerable.Range(0, bins).Select(b => new Bin((double)b / bins, (double)(b + 1) / bins, count[b],
            count[b] == 0 ? 0 : confidence[b] / count[b], count[b] == 0 ? 0 : (double)correct[b] / count[b])).ToArray();
    }

    /// <summary>Expected calibration error: the item-weighted mean of |accuracy - confidence| over the bins.</summary>
    public static double ExpectedCalibrationError(IReadOnlyList<(double Confidence, bool Correct)> outcomes, int bins = DefaultBins)
    {
        if (outcomes.Count == 0) return 0;
        return Bins(outcomes, bins).Sum(b => b.Count * Math.Abs(b.Accuracy - b.MeanConfidence)) / outcomes.Count;
    }

    /// <summary>Mean of -log p(true label) at <paramref name="temperature"/>, computed stably in log space.</summary>
    public static double NegativeLogLikelihood(IReadOnlyList<(double[] Scores, int Label)> items, double temperature)
    {
        if (items.Count == 0) return 0;
        double total = 0;
        foreach (var (scores, label) in items)
        {
            // -log softmax(-s/T)_y = s_y/T + log sum_c exp(-s_c/T), shifted by the minimum score.
            double min = scores.Min(), sum = 0;
            foreach (double s in scores)
                sum += Math.Exp((min - s) / temperature);
            total += (scores[label] - min) / temperature + Math.Log(sum);
        }
        return total / items.Count;
    }

    /// <summary>
    /// The temperature that minimises <see cref="NegativeLogLikelihood"/>: golden-section search on log(1/T) over
    /// [1e-6, 1e6] (the likelihood is convex in 1/T, so the search finds the global minimum).
    /// </summary>
    /// <exception cref="ArgumentException">No items, or a label outside the scores.</exception>
    public static double FitTemperature(IReadOnlyList<(double[] Scores, int Label)> items)
    {
        if (items.Count == 0)
            throw new ArgumentException("Fitting a temperature needs at least one item.", nameof(items));
        foreach (var (scores, label) in items)
            if (label < 0 || label >= scores.Length)
                throw new ArgumentException($"Label {label} is outside the {scores.Length} scores.", nameof(items));
        double Loss(double logBeta) => NegativeLogLikelihood(items, Math.Exp(-logBeta));
        double lo = Math.Log(ProbabilityCalibration.MinTemperature), hi = Math.Log(ProbabilityCalibration.MaxTemperature);
        double ratio = (Math.Sqrt(5) - 1) / 2;
        double a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo);
        double fa = Loss(a), fb = Loss(b);
        while (hi - lo > 1e-9)
        {
            if (fa <= fb)
            {
                hi = b; b = a; fb = fa;
                a = hi - ratio * (hi - lo); fa = Loss(a);
            }
            else
            {
                lo = a; a = b; fa = fb;
                b = lo + ratio * (hi - lo); fb = Loss(b);
            }
        }
        return Math.Exp(-(lo + hi) / 2);
    }
}
