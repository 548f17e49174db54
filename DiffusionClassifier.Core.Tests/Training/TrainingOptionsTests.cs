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
        Assert.Equal(0, o.WarmupSteps);
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
        { "WarmupSteps", o => o with { WarmupSteps = -1 }, "-1" },
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
    [InlineData(LearningRateSchedule.Cosine)]
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
                    LearningRateSchedule.Cosine => 3e-4 * (1 + Math.Cos(Math.PI * g / total)) / 2,
                    _ => 3e-4,
                };
                Assert.Equal(expected, o.LearningRateAt(e, g, total), 15);
            }
        Assert.Throws<ArgumentOutOfRangeException>("epoch", () => o.LearningRateAt(5, 0, total));
        Assert.Throws<ArgumentOutOfRangeException>("globalStep", () => o.LearningRateAt(0, total, total));
    }

    [Fact]
    public void CosineHitsItsLandmarks()
    {
        // Independent of the formula above: full rate at the start, half at the middle, the mirror image around it.
        var o = new TrainingOptions { Epochs = 1, LearningRate = 1e-3, LearningRateSchedule = LearningRateSchedule.Cosine };
        Assert.Equal(1e-3, o.LearningRateAt(0, 0, 100), 15);
        Assert.Equal(0.5e-3, o.LearningRateAt(0, 50, 100), 15);
        for (int s = 1; s < 50; s++)
            Assert.Equal(1e-3, o.LearningRateAt(0, 50 - s, 100) + o.LearningRateAt(0, 50 + s, 100), 15);
        Assert.True(o.LearningRateAt(0, 99, 100) is > 0 and < 1e-6);
    }

    [Theory]
    [InlineData(LearningRateSchedule.LinearPerEpoch)]
    [InlineData(LearningRateSchedule.LinearPerStep)]
    [InlineData(LearningRateSchedule.Constant)]
    [InlineData(LearningRateSchedule.Cosine)]
    public void WarmupRampsLinearlyThenHandsOverToTheSchedule(LearningRateSchedule schedule)
    {
        const int warmup = 8, total = 40;
        var plain = new TrainingOptions { Epochs = 2, LearningRate = 2e-4, LearningRateSchedule = schedule };
        var warm = plain with { WarmupSteps = warmup };
        for (int g = 0; g < total; g++)
        {
            int e = g / (total / 2);
            double rate = warm.LearningRateAt(e, g, total);
            if (g < warmup)
            {
                // The schedule's own rate, computed as if the cosine started after the warm-up, scaled by (g + 1) / W.
                double baseRate = schedule == LearningRateSchedule.Cosine ? 2e-4 : plain.LearningRateAt(e, g, total);
                Assert.Equal(baseRate * (g + 1) / warmup, rate, 15);
            }
            else if (schedule == LearningRateSchedule.Cosine)
            {
                Assert.Equal(2e-4 * (1 + Math.Cos(Math.PI * (g - warmup) / (total - warmup))) / 2, rate, 15);
            }
            else
            {
                Assert.Equal(plain.LearningRateAt(e, g, total), rate, 15);
            }
        }
        // The last warm-up step reaches the full rate of a cosine; a warm-up longer than the run never does.
        if (schedule == LearningRateSchedule.Cosine)
            Assert.Equal(2e-4, warm.LearningRateAt(0, warmup - 1, total), 15);
        var endless = plain with { WarmupSteps = 1000 };
        double lastBase = schedule == LearningRateSchedule.Cosine ? 2e-4 : plain.LearningRateAt(1, total - 1, total);
        Assert.Equal(lastBase * total / 1000, endless.LearningRateAt(1, total - 1, total), 15);
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
