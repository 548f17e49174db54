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
        Assert.Equal("cpu", o.Device);
        Assert.Null(o.CheckpointPath);
        Assert.Equal(0, o.CheckpointEverySteps);
        Assert.Equal(TimeSpan.FromMinutes(10), o.CheckpointInterval);
        Assert.Equal(0.999, o.EmaDecay);
        Assert.Equal(0, o.GradientClipNorm);
        Assert.Null(o.NumThreads);
        o.Validate();
    }

    public static TheoryData<string, Action<TrainingOptions>, string> InvalidOptions => new()
    {
        { "Epochs", o => o.Epochs = 0, "0" },
        { "Epochs", o => o.Epochs = -3, "-3" },
        { "BatchSize", o => o.BatchSize = 0, "0" },
        { "LearningRate", o => o.LearningRate = 0, "0" },
        { "LearningRate", o => o.LearningRate = -1e-4, "-0.0001" },
        { "LearningRate", o => o.LearningRate = double.NaN, "NaN" },
        { "LearningRate", o => o.LearningRate = double.PositiveInfinity, "Infinity" },
        { "LearningRateSchedule", o => o.LearningRateSchedule = (LearningRateSchedule)7, "7" },
        { "LabelDropProbability", o => o.LabelDropProbability = -0.1, "-0.1" },
        { "LabelDropProbability", o => o.LabelDropProbability = 1.5, "1.5" },
        { "LabelDropProbability", o => o.LabelDropProbability = double.NaN, "NaN" },
        { "Device", o => o.Device = "", "''" },
        { "Device", o => o.Device = "tpu", "tpu" },
        { "CheckpointPath", o => o.CheckpointPath = "  ", "'  '" },
        { "CheckpointEverySteps", o => o.CheckpointEverySteps = -1, "-1" },
        { "CheckpointInterval", o => o.CheckpointInterval = TimeSpan.FromSeconds(-1), "-00:00:01" },
        { "EmaDecay", o => o.EmaDecay = 1, "1" },
        { "EmaDecay", o => o.EmaDecay = -0.5, "-0.5" },
        { "GradientClipNorm", o => o.GradientClipNorm = -1, "-1" },
        { "GradientClipNorm", o => o.GradientClipNorm = double.NaN, "NaN" },
        { "NumThreads", o => o.NumThreads = 0, "0" },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void ValidateNamesTheOptionAndItsValue(string name, Action<TrainingOptions> spoil, string shownValue)
    {
        var o = new TrainingOptions();
        spoil(o);
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
    public void CloneIsIndependent()
    {
        var o = new TrainingOptions { Epochs = 3 };
        var c = o.Clone();
        c.Epochs = 9;
        Assert.Equal(3, o.Epochs);
    }
}
