using DiffusionClassifier.Modules;

namespace DiffusionClassifier.Classification;

/// <summary>
/// The network work of classifying one image, counted in one place: <see cref="ClassPrediction"/>'s cost fields and
/// the benchmarks' FLOP columns both come from here.
/// </summary>
/// <remarks>
/// A noise prediction is one head evaluation (or one full forward without trunk sharing). With a shared trunk the trunk
/// runs once per sample spent. A full-network equivalent weighs trunks and heads by their FLOPs
/// (<see cref="ConditionalUNetConfig.TrunkFlops"/>, <see cref="ConditionalUNetConfig.HeadFlops"/>).
/// </remarks>
internal static class PredictionCost
{
    /// <summary>
    /// The planned work at <paramref name="n"/> samples: every pruning stage scores the classes that survived the
    /// previous one on its new samples. Exact without an early exit or pruning margins; with them, the most an image
    /// can cost.
    /// </summary>
    public static (long Evaluations, long Trunks) Planned(int classes, int n, BayesClassifierOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        long evaluations = 0;
        int done = 0, alive = classes;
        foreach (var stage in SamplingPlan.Resolve(options, n).Stages)
        {
            evaluations += (long)(stage.CumulativeSamples - done) * alive;
            done = stage.CumulativeSamples;
            alive = Math.Min(alive, stage.Keep);
        }
        evaluations += (long)(n - done) * alive;
        return (evaluations, Trunks(options, n, evaluations));
    }

    /// <summary>Trunk evaluations of an image that spent <paramref name="samplesSpent"/> samples and
    /// <paramref name="evaluations"/> noise predictions.</summary>
    public static long Trunks(BayesClassifierOptions options, int samplesSpent, long evaluations) =>
        options.ShareTrunk ? samplesSpent : evaluations;

    /// <summary>FLOPs of <paramref name="trunks"/> trunk and <paramref name="evaluations"/> head evaluations.</summary>
    public static double Flops(ConditionalUNetConfig config, double trunks, double evaluations) =>
        trunks * config.TrunkFlops() + evaluations * config.HeadFlops();

    /// <summary>The same work in full forward passes.</summary>
    public static double FullEquivalents(ConditionalUNetConfig config, double trunks, double evaluations) =>
        Flops(config, trunks, evaluations) / config.ForwardFlops();
}
