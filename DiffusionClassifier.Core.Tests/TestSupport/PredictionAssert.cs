using DiffusionClassifier.Classification;

namespace DiffusionClassifier.Tests.TestSupport;

/// <summary>Assertions on <see cref="ClassPrediction"/>s shared by the classifier tests.</summary>
internal static class PredictionAssert
{
    /// <summary>Every field of the two predictions is bit-for-bit equal.</summary>
    public static void Identical(ClassPrediction expected, ClassPrediction actual)
    {
        Assert.Equal(expected.Label, actual.Label);
        Assert.Equal(expected.Scores, actual.Scores);
        Assert.Equal(expected.MeanErrors, actual.MeanErrors);
        Assert.Equal(expected.Probabilities, actual.Probabilities);
        Assert.Equal(expected.PaperProbabilities, actual.PaperProbabilities);
        Assert.Equal(expected.Temperature, actual.Temperature);
        Assert.Equal(expected.SamplesPerClass, actual.SamplesPerClass);
        Assert.Equal(expected.PrunedClasses, actual.PrunedClasses);
        Assert.Equal(expected.NetworkEvaluations, actual.NetworkEvaluations);
        Assert.Equal(expected.TrunkEvaluations, actual.TrunkEvaluations);
    }
}
