using DiffusionClassifier.Classification;

namespace DiffusionClassifier.Tests.Classification;

public class PruningScheduleTests
{
    [Fact]
    public void FromSampleCountsUsesFractionsOfTheLastCount()
    {
        var s = PruningSchedule.FromSampleCounts(new[] { 10, 50 }, new[] { 2, 1 });
        Assert.Equal(new[] { new PruningStage(0.2, 2), new PruningStage(1.0, 1) }, s.Stages);
        Assert.Equal(new[] { (10, 2) }, s.Resolve(50));
        Assert.Equal(new[] { (4, 2) }, s.Resolve(20));
        Assert.Equal(new[] { (20, 2) }, s.Resolve(100));
        Assert.Empty(s.Resolve(1)); // round(0.2) clamps to 1 = n: nothing to prune before the end
    }

    [Fact]
    public void StagesThatRoundToTheSameCountKeepTheSmallerKeep()
    {
        var s = new PruningSchedule(new PruningStage(0.2, 3), new PruningStage(0.25, 2), new PruningStage(0.5, 1));
        Assert.Equal(new[] { (1, 2), (2, 1) }, s.Resolve(4)); // 0.8 -> 1, 1.0 -> 1, 2.0 -> 2
        Assert.Equal(new[] { (4, 3), (5, 2), (10, 1) }, s.Resolve(20));
    }

    [Fact]
    public void InvalidSchedulesThrow()
    {
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(Array.Empty<PruningStage>()));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(0, 2)));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(1.5, 2)));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(double.NaN, 2)));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(0.5, 0)));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(0.5, 2), new PruningStage(0.4, 1)));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(0.2, 2), new PruningStage(0.4, 2)));
        Assert.Throws<ArgumentException>("keep", () => PruningSchedule.FromSampleCounts(new[] { 10, 50 }, new[] { 2 }));
        Assert.Throws<ArgumentException>("cumulativeSamples", () => PruningSchedule.FromSampleCounts(new[] { 50, 10 }, new[] { 2, 1 }));
        Assert.Throws<ArgumentException>("cumulativeSamples", () => PruningSchedule.FromSampleCounts(Array.Empty<int>(), Array.Empty<int>()));
        var e = Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(0.5, -3)));
        Assert.Contains("-3", e.Message);
    }

    [Theory]
    [InlineData("0.2:3,0.5:2")]
    [InlineData(" 0.25 : 2 ")]
    [InlineData("1:1")]
    public void TheTextFormRoundTrips(string text)
    {
        var schedule = PruningSchedule.Parse(text);
        var again = PruningSchedule.Parse(schedule.ToSpec());
        Assert.Equal(schedule.Stages, again.Stages);
        Assert.Equal(BayesClassifierOptions.DefaultPruning.Stages, PruningSchedule.Parse("0.2:3,0.5:2").Stages);
        var converter = System.ComponentModel.TypeDescriptor.GetConverter(typeof(PruningSchedule));
        Assert.Equal(schedule.Stages, ((PruningSchedule)converter.ConvertFromInvariantString(text)!).Stages);
        Assert.Null(converter.ConvertFromInvariantString(PruningSchedule.None));
        Assert.Equal(schedule.ToSpec(), converter.ConvertToInvariantString(schedule));
    }

    [Theory]
    [InlineData("0.2-3", typeof(FormatException), "'0.2-3' is not 'fraction:keep'")]
    [InlineData("0.2:3,", typeof(FormatException), "'' is not 'fraction:keep'")]
    [InlineData("0.2:x", typeof(FormatException), "'0.2:x'")]
    [InlineData("0.5:2,0.2:1", typeof(ArgumentException), "must exceed the previous stage's 0.5")]
    [InlineData("0.2:0", typeof(ArgumentException), "Keep must be at least 1 but is 0")]
    public void BadTextSaysWhatIsWrong(string text, Type type, string expected)
    {
        var e = Assert.Throws(type, () => PruningSchedule.Parse(text));
        Assert.Contains(expected, e.Message);
    }
}
