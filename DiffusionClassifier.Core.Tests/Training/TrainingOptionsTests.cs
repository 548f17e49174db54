using DiffusionClassifier.Training;

namespace DiffusionClassifier.Tests.Training;

public class TrainingOptionsTests
{
    [Fact]
    public void DefaultsAreTheDocumentedOnesAndValid()
    {
        var o = new TrainingOptions();
        Assert.Equal(20, o.Epochs);
        Assert.Equal(128, o.BatchSize);
        Assert.Equal(1e-4, o.LearningRate);
        Assert.Equal(LearningRateSchedule.LinearPerEpoch, o.LearningRateSchedule);
        Assert.Equal(0.1, o.LabelDropProbability);
        Assert.Equal(0, o.Seed);
        Assert.Null(o.Device);
        Assert.Null(o.CheckpointPath);
        Assert.Equal(0, o.CheckpointEverySteps);
        Assert.Equal(TimeSpan.FromMinutes(10), o.CheckpointInterval);
        Assert.Equal(0.999, o.EmaDecay);
        Assert.Equal(0, o.GradientClipNorm);
        Assert.Null(o.NumThreads);
        Assert.Null(o.MinSnrGamma);
        Assert.Equal(0, o.DiscriminativeWeight);
        Assert.Equal(1, o.DiscriminativeScale);
        Assert.Equal(1, o.DiscriminativeSamples);
        o.Validate();
    }

    public static TheoryData<string, Func<TrainingOptions, TrainingOptions>, string> InvalidOptions => new()
    {
        { "Epochs", o => o with { Epochs = 0 }, "0" },
        { "Epochs", o => o with { Epochs = -3 }, "-3" },
        { "BatchSize", o => o with { BatchSize = 0 }, "0" },
        { "LearningRate", o => o with { LearningRate = 0 }, "0" },
        { "LearningRate", o => o with { LearningRate = -1e-4 }, "-0.0001" },
        { "LearningRate", o => o with { LearningRate = double.NaN }, "NaN" },
        { "LearningRate", o => o with { LearningRate = double.PositiveInfinity }, "Infinity" },
        { "LearningRateSchedule", o => o with { LearningRateSchedule = (LearningRateSchedule)7 }, "7" },
        { "LabelDropProbability", o => o with { LabelDropProbability = -0.1 }, "-0.1" },
        { "LabelDropProbability", o => o with { LabelDropProbability = 1.5 }, "1.5" },
        { "LabelDropProbability", o => o with { LabelDropProbability = double.NaN }, "NaN" },
        { "Device", o => o with { Device = "" }, "''" },
        { "Device", o => o with { Device = "tpu" }, "tpu" },
        { "CheckpointPath", o => o with { CheckpointPath = "  " }, "'  '" },
        { "CheckpointEverySteps", o => o with { CheckpointEverySteps = -1 }, "-1" },
        { "CheckpointInterval", o => o with { CheckpointInterval = TimeSpan.FromSeconds(-1) }, "-00:00:01" },
        { "EmaDecay", o => o with { EmaDecay = 1 }, "1" },
        { "EmaDecay", o => o with { EmaDecay = -0.5 }, "-0.5" },
        { "GradientClipNorm", o => o with { GradientClipNorm = -1 }, "-1" },
        { "GradientClipNorm", o => o with { GradientClipNorm = double.NaN }, "NaN" },
        { "NumThreads", o => o with { NumThreads = 0 }, "0" },
        { "MinSnrGamma", o => o with { MinSnrGamma = 0 }, "0" },
        { "MinSnrGamma", o => o with { MinSnrGamma = -5 }, "-5" },
        { "MinSnrGamma", o => o with { MinSnrGamma = double.NaN }, "NaN" },
        { "MinSnrGamma", o => o with { MinSnrGamma = double.PositiveInfinity }, "Infinity" },
        { "DiscriminativeWeight", o => o with { DiscriminativeWeight = -0.01 }, "-0.01" },
        { "DiscriminativeWeight", o => o with { DiscriminativeWeight = double.NaN }, "NaN" },
        { "DiscriminativeWeight", o => o with { DiscriminativeWeight = double.PositiveInfinity }, "Infinity" },
        { "DiscriminativeScale", o => o with { DiscriminativeScale = 0 }, "0" },
        { "DiscriminativeScale", o => o with { DiscriminativeScale = -1 }, "-1" },
        { "DiscriminativeScale", o => o with { DiscriminativeScale = double.NaN }, "NaN" },
        { "DiscriminativeSamples", o => o with { DiscriminativeSamples = 0 }, "0" },
        { "DiscriminativeSamples", o => o with { DiscriminativeSamples = -2 }, "-2" },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void ValidateNamesTheOptionAndItsValue(string name, Func<TrainingOptions, TrainingOptions> spoil, string shownValue)
    {
        var o = spoil(new TrainingOptions());
        var ex = Assert.ThrowsAny<ArgumentException>(o.Validate);
        Assert.Equal(name, ex.ParamName);
        Assert.Contains(shownValue, ex.Message);
    }

    [Theory]
    [InlineData(LearningRateSchedule.LinearPerEpoch)]
    [InlineData(LearningRateSchedule.LinearPerStep)]
    [InlineData(LearningRateSchedule.Constant)]
    public void LearningRateFollowsTheFormula(LearningRateSchedule schedule)
    {
        var o = new TrainingOptions { Epochs = 5, LearningRate = 3e-4, LearningRateSchedule = schedule };
        const int stepsPerEpoch = 7;
        long total = 5 * stepsPerEpoch;
        for (int e = 0; e < 5; e++)
            for (int s = 0; s < stepsPerEpoch; s++)
            {
                long g = e * stepsPerEpoch + s;
                double expected = schedule switch
                {
                    LearningRateSchedule.LinearPerEpoch => 3e-4 * (1 - e / 5.0),
                    LearningRateSchedule.LinearPerStep => 3e-4 * (1 - g / (double)total),
                    _ => 3e-4,
                };
                Assert.Equal(expected, o.LearningRateAt(e, g, total), 15);
            }
        Assert.Throws<ArgumentOutOfRangeException>("epoch", () => o.LearningRateAt(5, 0, total));
        Assert.Throws<ArgumentOutOfRangeException>("globalStep", () => o.LearningRateAt(0, total, total));
    }

    [Fact]
    public void OptionsAreImmutableValues()
    {
        var o = new TrainingOptions { Epochs = 3 };
        var c = o with { Epochs = 9 };
        Assert.Equal(3, o.Epochs);
        Assert.Equal(9, c.Epochs);
        Assert.Equal(o, c with { Epochs = 3 });
        Assert.Equal(new DiffusionClassifier.Sampling.GuidedSamplerOptions { Seed = 4 }, new DiffusionClassifier.Sampling.GuidedSamplerOptions { Seed = 4 });
    }
}
