using System.Text.Json.Serialization;

namespace DiffusionClassifier.Cli.Evaluation;

/// <summary>
/// The outcome of classifying one dataset item at one sample count: one line of the evaluation cache, and the unit
/// the summaries are built from.
/// </summary>
/// <param name="Key">The run key: model, data and estimator options (see <see cref="EvaluationCache.ComputeKey"/>).</param>
/// <param name="Index">The item's index in the dataset.</param>
/// <param name="N">Monte Carlo samples per class.</param>
/// <param name="Label">The true class.</param>
/// <param name="Predicted">The predicted class.</param>
/// <param name="Confidence">The predicted class's probability under the paper's posterior (temperature 1), so that it
/// does not depend on the calibration in effect.</param>
/// <param name="Evaluations">Noise predictions spent (head evaluations when the trunk is shared).</param>
/// <param name="FullEquivalents">Cost in full network forwards, by FLOPs.</param>
/// <param name="Seconds">Wall time spent on this item (its share of its batch).</param>
/// <param name="Scores">Per-class scores (<see cref="Classification.ClassPrediction.Scores"/>), from which the
/// probabilities at any temperature follow; null in caches written before they were stored.</param>
/// <param name="SamplesSpent">Distinct (t, eps) samples spent; null in older caches.</param>
/// <param name="Stop">Why sampling stopped (<see cref="Classification.StopReason"/>); null in older caches.</param>
internal sealed record ImageResult(
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("n")] int N,
    [property: JsonPropertyName("label")] int Label,
    [property: JsonPropertyName("predicted")] int Predicted,
    [property: JsonPropertyName("confidence")] double Confidence,
    [property: JsonPropertyName("evaluations")] long Evaluations,
    [property: JsonPropertyName("full_equivalents")] double FullEquivalents,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("scores")] double[]? Scores = null,
    [property: JsonPropertyName("samples_spent")] int? SamplesSpent = null,
    [property: JsonPropertyName("stop")] string? Stop = null)
{
    /// <summary>The result line of one prediction.</summary>
    public static ImageResult From(string key, int index, int n, int label, Classification.ClassPrediction prediction, double seconds) =>
        new(key, index, n, label, prediction.Label, prediction.PaperProbabilities[prediction.Label], prediction.NetworkEvaluations,
            prediction.EquivalentFullEvaluations, seconds, prediction.Scores.ToArray(), prediction.SamplesSpent, prediction.StopReason.ToString());

    /// <summary>Whether the prediction is right.</summary>
    [JsonIgnore]
    public bool Correct => Label == Predicted;
}
