using System.Text.Json.Serialization;

namespace DiffusionClassifier.Cli.Evaluation;

/// <summary>Totals of one sample count N over the evaluated items (one row of the evaluation table).</summary>
internal sealed class EvaluationSummary
{
    private EvaluationSummary(int n, int classes)
    {
        N = n;
        Confusion = new int[classes][];
        for (int i = 0; i < classes; i++)
            Confusion[i] = new int[classes];
    }

    /// <summary>Monte Carlo samples per class.</summary>
    [JsonPropertyName("n")]
    public int N { get; }

    /// <summary>Items evaluated.</summary>
    [JsonPropertyName("images")]
    public int Images { get; private set; }

    /// <summary>Items classified correctly.</summary>
    [JsonPropertyName("correct")]
    public int Correct { get; private set; }

    /// <summary>Correct / images.</summary>
    [JsonPropertyName("accuracy")]
    public double Accuracy => Images == 0 ? 0 : (double)Correct / Images;

    /// <summary>Classification wall time summed over the items (from the cache for reused items).</summary>
    [JsonPropertyName("seconds")]
    public double Seconds { get; private set; }

    /// <summary>Images / seconds.</summary>
    [JsonPropertyName("images_per_second")]
    public double ImagesPerSecond => Seconds > 0 ? Images / Seconds : 0;

    /// <summary>
    /// Median of the per-image times (each image's share of its batch's wall time): unlike <see cref="Seconds"/>, not
    /// moved by a few batches that were slowed or paused (a long evaluation in the background on a shared machine).
    /// </summary>
    [JsonPropertyName("median_seconds_per_image")]
    public double MedianSecondsPerImage { get; private set; }

    /// <summary>Mean noise predictions per image.</summary>
    [JsonPropertyName("evaluations_per_image")]
    public double EvaluationsPerImage => Images == 0 ? 0 : (double)evaluations / Images;

    /// <summary>Mean cost per image in full network forwards (by FLOPs).</summary>
    [JsonPropertyName("full_equivalents_per_image")]
    public double FullEquivalentsPerImage => Images == 0 ? 0 : fullEquivalents / Images;

    /// <summary>Results computed in this run.</summary>
    [JsonPropertyName("computed")]
    public int Computed { get; private set; }

    /// <summary>Results reused from the cache.</summary>
    [JsonPropertyName("cached")]
    public int Cached { get; private set; }

    /// <summary>The temperature of the probabilities behind <see cref="ExpectedCalibrationError"/> and
    /// <see cref="NegativeLogLikelihood"/>.</summary>
    [JsonPropertyName("temperature")]
    public double Temperature { get; private set; } = 1;

    /// <summary>Top-1 ECE (15 bins) at <see cref="Temperature"/>; null when an item's cache line has no scores.</summary>
    [JsonPropertyName("ece")]
    public double? ExpectedCalibrationError { get; private set; }

    /// <summary>Mean negative log-likelihood of the true labels at <see cref="Temperature"/>; null without scores.</summary>
    [JsonPropertyName("nll")]
    public double? NegativeLogLikelihood { get; private set; }

    /// <summary>Mean top-1 probability at <see cref="Temperature"/>; null without scores.</summary>
    [JsonPropertyName("mean_confidence")]
    public double? MeanConfidence { get; private set; }

    /// <summary>ECE of the paper's posterior (temperature 1), from the stored confidences.</summary>
    [JsonPropertyName("paper_ece")]
    public double PaperExpectedCalibrationError { get; private set; }

    /// <summary>Confusion[true][predicted] counts.</summary>
    [JsonPropertyName("confusion")]
    public int[][] Confusion { get; }

    private long evaluations;
    private double fullEquivalents;

    /// <summary>Totals of <paramref name="results"/>, all for sample count <paramref name="n"/>, with the calibration
    /// metrics of the probabilities at <paramref name="temperature"/>.</summary>
    public static EvaluationSummary From(int n, int classes, IEnumerable<(ImageResult Result, bool FromCache)> results, double temperature = 1)
    {
        var summary = new EvaluationSummary(n, classes) { Temperature = temperature };
        var times = new List<double>();
        var paper = new List<(double Confidence, bool Correct)>();
        var scored = new List<(double[] Scores, int Label, int Predicted)>();
        bool allScored = true;
        foreach (var (r, fromCache) in results)
        {
            paper.Add((r.Confidence, r.Correct));
            if (r.Scores is { } scores && scores.Length == classes)
                scored.Add((scores, r.Label, r.Predicted));
            else
                allScored = false;
            times.Add(r.Seconds);
            summary.Images++;
            if (r.Correct) summary.Correct++;
            summary.Seconds += r.Seconds;
            summary.evaluations += r.Evaluations;
            summary.fullEquivalents += r.FullEquivalents;
            summary.Confusion[r.Label][r.Predicted]++;
            if (fromCache) summary.Cached++;
            else summary.Computed++;
        }
        summary.MedianSecondsPerImage = Statistics.Median(times);
        summary.PaperExpectedCalibrationError = CalibrationMetrics.ExpectedCalibrationError(paper);
        if (allScored && scored.Count > 0)
        {
            var outcomes = CalibrationMetrics.TopOne(scored, temperature);
            summary.ExpectedCalibrationError = CalibrationMetrics.ExpectedCalibrationError(outcomes);
            summary.NegativeLogLikelihood = CalibrationMetrics.NegativeLogLikelihood(scored.Select(s => (s.Scores, s.Label)).ToList(), temperature);
            summary.MeanConfidence = outcomes.Average(o => o.Confidence);
        }
        return summary;
    }
}
